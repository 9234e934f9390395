"""Transform3d: row-vector convention, composition order, inverses, points/normals, batching."""
import math

import pytest
import torch

from diffras.transforms import Rotate, RotateAxisAngle, Scale, Transform3d, Translate, random_rotations

f64 = dict(dtype=torch.float64)


def test_row_vector_convention_and_compose_order():
    p = torch.randn(2, 5, 3, **f64)
    t = torch.randn(2, 3, **f64)
    s = torch.rand(2, 3, **f64) + 0.5
    R = random_rotations(2, torch.float64)
    tr = Translate(t).compose(Scale(s), Rotate(R))  # translate first, then scale, then rotate
    want = ((p + t[:, None]) * s[:, None]) @ R
    torch.testing.assert_close(tr.transform_points(p), want)
    torch.testing.assert_close(Transform3d(**f64).translate(t).scale(s).rotate(R).transform_points(p), want)
    m = tr.get_matrix()
    assert m.shape == (2, 4, 4)
    torch.testing.assert_close(m[:, :, 3], torch.tensor([0.0, 0, 0, 1], **f64).expand(2, 4))  # affine last column


def test_rotate_axis_angle_right_handed():
    out = RotateAxisAngle(90.0, "Z", dtype=torch.float64).transform_points(torch.tensor([[1.0, 0.0, 0.0]], **f64))
    torch.testing.assert_close(out, torch.tensor([[0.0, 1.0, 0.0]], **f64))
    out = RotateAxisAngle(math.pi / 2, "X", degrees=False, dtype=torch.float64).transform_points(torch.tensor([[0.0, 1.0, 0.0]], **f64))
    torch.testing.assert_close(out, torch.tensor([[0.0, 0.0, 1.0]], **f64))


def test_inverse_closed_form_and_general():
    R = random_rotations(3, torch.float64)
    tr = Rotate(R).compose(Translate(torch.randn(3, 3, **f64)), Scale(2.0, 3.0, 0.5, dtype=torch.float64))
    eye = torch.eye(4, **f64).expand(3, 4, 4)
    torch.testing.assert_close(tr.compose(tr.inverse()).get_matrix(), eye)
    M = torch.randn(3, 4, 4, **f64) + 3 * torch.eye(4, **f64)  # general (projective) matrices
    g = Transform3d(matrix=M)
    torch.testing.assert_close(g.inverse().get_matrix(), torch.linalg.inv(M))
    p = torch.randn(3, 6, 3, **f64)
    torch.testing.assert_close(g.inverse().transform_points(g.transform_points(p)), p)
    torch.testing.assert_close(g.inverse().inverse().get_matrix(), M)


def test_perspective_divide_and_eps():
    # w = z: a pinhole divide; a point at z = 0 gives inf without eps, a clamped finite value with it.
    M = torch.zeros(4, 4, **f64)
    M[0, 0] = M[1, 1] = M[3, 2] = 1.0
    M[2, 3] = 1.0  # w = z
    t = Transform3d(matrix=M)
    p = torch.tensor([[2.0, 4.0, 2.0], [1.0, 1.0, 0.0], [1.0, -1.0, -1e-9]], **f64)
    out = t.transform_points(p)
    torch.testing.assert_close(out[0], torch.tensor([1.0, 2.0, 0.5], **f64))
    assert torch.isinf(out[1, 0])
    out = t.transform_points(p, eps=1e-4)
    torch.testing.assert_close(out[1], torch.tensor([1e4, 1e4, 1e4], **f64))
    torch.testing.assert_close(out[2, :2], torch.tensor([-1e4, 1e4], **f64))  # negative w keeps its sign


def test_transform_normals_stay_perpendicular():
    tr = Scale(torch.tensor([[1.0, 4.0, 0.5]], **f64)).compose(Rotate(random_rotations(1, torch.float64)),
                                                           Translate(1.0, 2.0, 3.0, dtype=torch.float64))
    a, b = torch.randn(2, 10, 3, **f64)
    n = torch.linalg.cross(a, b)
    o = torch.zeros(10, 3, **f64)
    ta = tr.transform_points(a) - tr.transform_points(o)
    tb = tr.transform_points(b) - tr.transform_points(o)
    tn = tr.transform_normals(n)
    assert (tn * ta).sum(-1).abs().max() < 1e-10 and (tn * tb).sum(-1).abs().max() < 1e-10
    assert tn.shape == (10, 3)


def test_batch_broadcasting_and_indexing():
    one = Translate(1.0, 2.0, 3.0)
    many = Translate(torch.randn(4, 3))
    assert one.transform_points(torch.randn(5, 7, 3)).shape == (5, 7, 3)
    assert many.transform_points(torch.randn(7, 3)).shape == (4, 7, 3)
    assert one.compose(many).get_matrix().shape == (4, 4, 4)
    torch.testing.assert_close(many[2].get_matrix(), many.get_matrix()[2:3])
    torch.testing.assert_close(many[[0, 3]].get_matrix(), many.get_matrix()[[0, 3]])
    torch.testing.assert_close(many[torch.tensor([True, False, True, False])].get_matrix(), many.get_matrix()[[0, 2]])
    assert len(one.stack(many)) == 5 and len(many) == 4
    assert many.to(dtype=torch.float64).dtype == torch.float64
    t = torch.randn(2, 3, requires_grad=True)
    tr = Translate(t)
    assert tr.clone().get_matrix().requires_grad and not tr.detach().get_matrix().requires_grad
    assert Transform3d().get_matrix().dtype == torch.get_default_dtype()
    torch.testing.assert_close(Scale(2.0).get_matrix()[0].diagonal(), torch.tensor([2.0, 2.0, 2.0, 1.0]))
    torch.testing.assert_close(Translate([1.0, 2.0, 3.0]).get_matrix()[0, 3], torch.tensor([1.0, 2.0, 3.0, 1.0]))


def test_gradcheck_transform_points():
    def f(M, p, t, s, R):
        tr = Transform3d(matrix=M).compose(Translate(t), Scale(s), Rotate(R))
        return tr.transform_points(p, eps=1e-6), tr.inverse().transform_points(p), tr.transform_normals(p)

    M = (torch.randn(2, 4, 4, **f64) * 0.1 + torch.eye(4, **f64)).requires_grad_()
    args = (M, torch.randn(2, 3, 3, **f64).requires_grad_(), torch.randn(2, 3, **f64).requires_grad_(),
            (torch.rand(1, 3, **f64) + 0.5).requires_grad_(), random_rotations(2, torch.float64).requires_grad_())
    assert torch.autograd.gradcheck(f, args)


@pytest.mark.parametrize(
    "make, err, name",
    [
        (lambda: Transform3d(matrix=torch.eye(3)), ValueError, "matrix"),
        (lambda: Transform3d(matrix=torch.full((4, 4), float("nan"))), ValueError, "matrix"),
        (lambda: Transform3d(matrix=torch.eye(4, dtype=torch.int64)), TypeError, "matrix"),
        (lambda: Transform3d(matrix=[[1.0]]), TypeError, "matrix"),
        (lambda: Translate(torch.zeros(2, 3)).transform_points(torch.zeros(3, 5, 3)), ValueError, "transform|points"),
        (lambda: Translate(torch.zeros(2, 3)).transform_points(torch.zeros(5, 4)), ValueError, "points"),
        (lambda: Translate(torch.zeros(2, 3)).transform_normals(torch.zeros(5, 3, dtype=torch.int64)), TypeError, "normals"),
        (lambda: Translate(torch.zeros(2, 3)).compose(Translate(torch.zeros(3, 3))), ValueError, "others"),
        (lambda: Translate(torch.zeros(2, 3)).compose("nope"), TypeError, "others"),
        (lambda: Scale(0.0), ValueError, "x"),
        (lambda: Translate(1.0), ValueError, "x"),
        (lambda: Translate([1.0, 2.0]), ValueError, "x"),
        (lambda: Translate(float("inf"), 0.0, 0.0), ValueError, "x"),
        (lambda: Translate([1.0, 2.0], [1.0, 2.0, 3.0], 0.0), ValueError, "y"),
        (lambda: Rotate(torch.eye(4)), ValueError, "R"),
        (lambda: RotateAxisAngle(30.0, axis="W"), ValueError, "axis"),
    ],
)
def test_bad_input(make, err, name):
    with pytest.raises(err, match=name):
        make()
