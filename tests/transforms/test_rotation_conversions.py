"""Rotation conversions against scipy (an independent implementation) and closed forms, round
trips (hypothesis), gradients (gradcheck, and finite at the singular-looking points)."""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from diffras.transforms import (
    axis_angle_to_matrix,
    axis_angle_to_quaternion,
    euler_angles_to_matrix,
    matrix_to_axis_angle,
    matrix_to_euler_angles,
    matrix_to_quaternion,
    matrix_to_rotation_6d,
    quaternion_apply,
    quaternion_invert,
    quaternion_multiply,
    quaternion_to_axis_angle,
    quaternion_to_matrix,
    random_quaternions,
    random_rotations,
    rotation_6d_to_matrix,
    standardize_quaternion,
)

CONVENTIONS = ["XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX", "XYX", "XZX", "YXY", "YZY", "ZXZ", "ZYZ"]
f64 = dict(dtype=torch.float64)
finite = st.floats(-1.0, 1.0, allow_nan=False)


def _rz(t):
    c, s = math.cos(t), math.sin(t)
    return torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], **f64)


def test_closed_forms_about_z():
    t = 0.7
    torch.testing.assert_close(axis_angle_to_matrix(torch.tensor([0.0, 0.0, t], **f64)), _rz(t))
    q = torch.tensor([math.cos(t / 2), 0.0, 0.0, math.sin(t / 2)], **f64)
    torch.testing.assert_close(quaternion_to_matrix(q), _rz(t))
    torch.testing.assert_close(euler_angles_to_matrix(torch.tensor([0.0, 0.0, t], **f64), "XYZ"), _rz(t))
    # Right-handed: +X turns to +Y under +90 degrees about Z (column vectors).
    torch.testing.assert_close(axis_angle_to_matrix(torch.tensor([0.0, 0.0, math.pi / 2], **f64)) @ torch.tensor([1.0, 0, 0], **f64),
                               torch.tensor([0.0, 1.0, 0.0], **f64))


def test_against_scipy():
    rot = Rotation.random(20, random_state=3)
    R = torch.tensor(rot.as_matrix())
    rv = torch.tensor(rot.as_rotvec())
    q_xyzw = rot.as_quat()
    q = torch.tensor(np.concatenate([q_xyzw[:, 3:], q_xyzw[:, :3]], 1))
    torch.testing.assert_close(axis_angle_to_matrix(rv), R)
    torch.testing.assert_close(quaternion_to_matrix(q), R)
    torch.testing.assert_close(matrix_to_quaternion(R), standardize_quaternion(q))
    torch.testing.assert_close(matrix_to_axis_angle(R), rv)  # scipy's rotvec angle is in [0, pi] too
    for conv in CONVENTIONS:
        ang = torch.tensor(rot.as_euler(conv))  # uppercase = intrinsic, R = R_a R_b R_c
        torch.testing.assert_close(euler_angles_to_matrix(ang, conv), R)
        torch.testing.assert_close(matrix_to_euler_angles(R, conv), ang)


@settings(max_examples=40, deadline=None)
@given(st.lists(finite, min_size=4, max_size=4).filter(lambda v: sum(x * x for x in v) > 1e-2))
def test_quaternion_round_trip(v):
    q = torch.tensor(v, **f64)
    q = q / q.norm()
    q2 = matrix_to_quaternion(quaternion_to_matrix(q))
    # q and -q are the same rotation; only w = 0 leaves the sign undecided.
    assert min((q2 - q).abs().max(), (q2 + q).abs().max()) < 1e-12
    assert q2[0] >= 0


@settings(max_examples=40, deadline=None)
@given(st.lists(finite, min_size=3, max_size=3), st.floats(0.0, math.pi - 1e-6))
def test_axis_angle_round_trip(axis, angle):
    a = torch.tensor(axis, **f64)
    if a.norm() < 1e-3:
        a = torch.tensor([0.0, 0.0, 1.0], **f64)
    aa = a / a.norm() * angle
    torch.testing.assert_close(matrix_to_axis_angle(axis_angle_to_matrix(aa)), aa, atol=1e-7, rtol=1e-7)
    torch.testing.assert_close(quaternion_to_axis_angle(axis_angle_to_quaternion(aa)), aa, atol=1e-9, rtol=1e-9)
    torch.testing.assert_close(quaternion_to_matrix(axis_angle_to_quaternion(aa)), axis_angle_to_matrix(aa))


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(CONVENTIONS), st.lists(st.floats(-3.1, 3.1), min_size=3, max_size=3))
def test_euler_round_trip(conv, angles):
    R = euler_angles_to_matrix(torch.tensor(angles, **f64), conv)
    back = matrix_to_euler_angles(R, conv)
    torch.testing.assert_close(euler_angles_to_matrix(back, conv), R, atol=1e-9, rtol=0)
    if conv[0] != conv[2]:
        assert abs(back[1]) <= math.pi / 2 + 1e-12
    else:
        assert 0 <= back[1] <= math.pi + 1e-12


@settings(max_examples=30, deadline=None)
@given(st.lists(finite, min_size=6, max_size=6))
def test_rotation_6d(v):
    d6 = torch.tensor(v, **f64)
    a, b = d6[:3], d6[3:]
    if a.norm() < 1e-2 or torch.linalg.cross(a, b).norm() < 1e-2:
        return
    R = rotation_6d_to_matrix(d6)
    torch.testing.assert_close(R @ R.T, torch.eye(3, **f64))
    assert torch.linalg.det(R) == pytest.approx(1.0)
    torch.testing.assert_close(rotation_6d_to_matrix(matrix_to_rotation_6d(R)), R)
    torch.testing.assert_close(R[0], a / a.norm())  # first row is the normalised first vector


def test_random_rotations_and_quaternion_algebra():
    R = random_rotations(2000, torch.float64)
    torch.testing.assert_close(R @ R.transpose(1, 2), torch.eye(3, **f64).expand(2000, 3, 3))
    torch.testing.assert_close(torch.linalg.det(R), torch.ones(2000, **f64))
    # Haar measure: E[R] = 0 (each entry has variance 1/3, so the sample mean is ~N(0, 1/6000)).
    assert R.mean(0).abs().max() < 0.06
    a, b = random_quaternions(5, torch.float64), random_quaternions(5, torch.float64)
    torch.testing.assert_close(quaternion_to_matrix(quaternion_multiply(a, b)), quaternion_to_matrix(a) @ quaternion_to_matrix(b))
    p = torch.randn(5, 3, **f64)
    torch.testing.assert_close(quaternion_apply(a, p), (quaternion_to_matrix(a) @ p[..., None])[..., 0])
    torch.testing.assert_close(quaternion_to_matrix(quaternion_invert(a)), quaternion_to_matrix(a).transpose(1, 2))
    assert random_rotations(3).dtype == torch.get_default_dtype()


def test_leading_dims():
    aa = torch.randn(2, 3, 3, **f64)
    assert axis_angle_to_matrix(aa).shape == (2, 3, 3, 3)
    assert matrix_to_quaternion(axis_angle_to_matrix(aa)).shape == (2, 3, 4)
    assert matrix_to_euler_angles(axis_angle_to_matrix(aa), "ZYX").shape == (2, 3, 3)


def test_gradcheck_conversions():
    aa = (torch.randn(4, 3, **f64)).requires_grad_()
    assert torch.autograd.gradcheck(axis_angle_to_matrix, (aa,))
    assert torch.autograd.gradcheck(lambda x: matrix_to_axis_angle(axis_angle_to_matrix(x)),
                                    ((torch.randn(4, 3, **f64) * 0.5).requires_grad_(),))
    small = (torch.randn(3, 3, **f64) * 1e-4).requires_grad_()  # the series branches
    assert torch.autograd.gradcheck(axis_angle_to_matrix, (small,))
    assert torch.autograd.gradcheck(axis_angle_to_quaternion, (small,))
    assert torch.autograd.gradcheck(lambda x: matrix_to_axis_angle(axis_angle_to_matrix(x)), (small,))
    q = torch.randn(4, 4, **f64).requires_grad_()
    assert torch.autograd.gradcheck(quaternion_to_matrix, (q,))
    ang = torch.randn(4, 3, **f64).requires_grad_()
    assert torch.autograd.gradcheck(lambda x: euler_angles_to_matrix(x, "ZYX"), (ang,))
    d6 = torch.randn(4, 6, **f64).requires_grad_()
    assert torch.autograd.gradcheck(rotation_6d_to_matrix, (d6,))


def test_gradients_at_zero_angle_are_exact():
    aa = torch.zeros(3, **f64, requires_grad=True)
    J = torch.autograd.functional.jacobian(axis_angle_to_matrix, aa)  # (3, 3, 3)
    gens = torch.tensor([[[0, 0, 0], [0, 0, -1], [0, 1, 0]], [[0, 0, 1], [0, 0, 0], [-1, 0, 0]],
                         [[0, -1, 0], [1, 0, 0], [0, 0, 0]]], **f64)
    torch.testing.assert_close(J.permute(2, 0, 1), gens)
    eye = torch.eye(3, **f64, requires_grad=True)
    g = torch.autograd.grad(matrix_to_axis_angle(eye).sum(), eye)[0]
    assert torch.isfinite(g).all()
    # d(axis-angle)/dR at identity on skew perturbations is the inverse of the generator map.
    Jm = torch.autograd.functional.jacobian(matrix_to_axis_angle, torch.eye(3, **f64))
    torch.testing.assert_close(torch.einsum("aij,bij->ab", Jm, gens), torch.eye(3, **f64))


@pytest.mark.parametrize("angle", [math.pi - 1e-3, math.pi - 1e-7, math.pi])
def test_near_180_degrees(angle):
    axis = torch.tensor([0.3, -0.5, 0.8], **f64)
    aa = axis / axis.norm() * angle
    R = axis_angle_to_matrix(aa).requires_grad_()
    out = matrix_to_axis_angle(R)
    # Same rotation (the sign of the axis is arbitrary at exactly pi).
    torch.testing.assert_close(axis_angle_to_matrix(out.detach()), R.detach(), atol=1e-9, rtol=0)
    g = torch.autograd.grad(out.sum(), R)[0]
    assert torch.isfinite(g).all()
    q = matrix_to_quaternion(R)
    assert torch.isfinite(torch.autograd.grad(q.sum(), R)[0]).all()
    if angle < math.pi - 1e-4:
        assert torch.autograd.gradcheck(matrix_to_quaternion, (R.detach().clone().requires_grad_(),))


@pytest.mark.parametrize(
    "fn, arg, err, name",
    [
        (quaternion_to_matrix, torch.zeros(3), ValueError, "quaternions"),
        (matrix_to_quaternion, torch.zeros(3, 4), ValueError, "matrix"),
        (axis_angle_to_matrix, torch.zeros(3, dtype=torch.int64), TypeError, "axis_angle"),
        (rotation_6d_to_matrix, torch.zeros(5), ValueError, "d6"),
        (matrix_to_axis_angle, [[1.0, 0, 0]] * 3, TypeError, "matrix"),
        (lambda x: euler_angles_to_matrix(x, "XXY"), torch.zeros(3), ValueError, "convention"),
        (lambda x: matrix_to_euler_angles(x, "XYW"), torch.eye(3), ValueError, "convention"),
        (lambda x: random_rotations(x), -1, ValueError, "n"),
        (lambda x: random_rotations(x), 2.5, TypeError, "n"),
    ],
)
def test_bad_input(fn, arg, err, name):
    with pytest.raises(err, match=name):
        fn(arg)


@pytest.mark.parametrize("conv", CONVENTIONS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_euler_gimbal_lock(conv, dtype):
    mid = [0.0, math.pi] if conv[0] == conv[2] else [math.pi / 2, -math.pi / 2]
    for b in mid:
        ang = torch.tensor([[0.4, b, -1.1], [0.0, b, 0.0]], dtype=dtype)
        R = euler_angles_to_matrix(ang, conv).requires_grad_()
        back = matrix_to_euler_angles(R, conv)
        tol = 1e-5 if dtype == torch.float32 else 1e-12
        torch.testing.assert_close(euler_angles_to_matrix(back.detach(), conv), R.detach(), atol=tol, rtol=0)
        assert torch.isfinite(torch.autograd.grad(back.sum(), R)[0]).all()


def test_float32_accuracy_across_angle_scales():
    axis = torch.tensor([0.48, -0.6, 0.64], **f64)
    for angle in [1e-8, 1e-5, 9e-4, 1.1e-3, 1e-2, 0.3, 2.0, 3.1]:
        aa64 = axis * angle
        R64 = axis_angle_to_matrix(aa64)
        R32 = axis_angle_to_matrix(aa64.float())
        assert R32.dtype == torch.float32
        assert (R32.double() - R64).abs().max() < 1e-6
        back = matrix_to_axis_angle(R64.float()).double()
        assert (back - aa64).abs().max() < 2e-6
