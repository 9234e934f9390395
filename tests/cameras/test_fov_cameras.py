"""FoV cameras and look-at against independent numpy pinhole math written here."""
import math

import numpy as np
import pytest
import torch

from diffras.cameras import (
    FoVOrthographicCameras,
    FoVPerspectiveCameras,
    look_at_rotation,
    look_at_view_transform,
)


def _np_view(R, T, X):
    # Row-vector world -> view, written independently: X_view = X R + T.
    return X @ R + T


def _np_fov_persp(Xv, fov_deg, aspect, znear, zfar):
    t = math.tan(math.radians(fov_deg) / 2)
    x, y, z = Xv[:, 0], Xv[:, 1], Xv[:, 2]
    return np.stack([x / (z * t * aspect), y / (z * t), zfar * (z - znear) / ((zfar - znear) * z)], 1)


def _random_pose(n, dtype=torch.float64):
    R, T = look_at_view_transform(
        dist=torch.rand(n, dtype=dtype) * 3 + 2, elev=torch.rand(n, dtype=dtype) * 120 - 60,
        azim=torch.rand(n, dtype=dtype) * 360, at=torch.randn(n, 3, dtype=dtype) * 0.3,
    )
    return R, T


def test_fov_perspective_matches_numpy_pinhole():
    R, T = _random_pose(3)
    fov = torch.tensor([30.0, 60.0, 95.0], dtype=torch.float64)
    aspect = torch.tensor([1.0, 1.5, 0.7], dtype=torch.float64)
    cams = FoVPerspectiveCameras(znear=0.5, zfar=[10.0, 20.0, 30.0], aspect_ratio=aspect, fov=fov, R=R, T=T)
    X = torch.randn(3, 11, 3, dtype=torch.float64) * 0.5
    out = cams.transform_points(X)
    for n in range(3):
        Xv = _np_view(R[n].numpy(), T[n].numpy(), X[n].numpy())
        ref = _np_fov_persp(Xv, fov[n].item(), aspect[n].item(), 0.5, [10.0, 20.0, 30.0][n])
        np.testing.assert_allclose(out[n].numpy(), ref, rtol=1e-10, atol=1e-10)
    # The rasterizer's path: transform_points_ndc is the same for NDC cameras, any image size.
    torch.testing.assert_close(cams.transform_points_ndc(X, image_size=(20, 50)), out)


def test_fov_radians_equals_degrees_and_depth_range():
    X = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 100.0], [0.3, -0.2, 4.0]])
    a = FoVPerspectiveCameras(fov=60.0)
    b = FoVPerspectiveCameras(fov=math.pi / 3, degrees=False)
    torch.testing.assert_close(a.transform_points(X), b.transform_points(X))
    z = a.transform_points(X)[:, 2]
    torch.testing.assert_close(z[:2], torch.tensor([0.0, 1.0]))  # znear -> 0, zfar -> 1


def test_fov_orthographic_matches_numpy():
    R, T = _random_pose(2)
    cams = FoVOrthographicCameras(
        znear=0.1, zfar=5.0, max_y=2.0, min_y=-1.0, max_x=[1.5, 3.0], min_x=-1.0,
        scale_xyz=((1.0, 2.0, 0.5), (0.5, 1.0, 1.0)), R=R, T=T,
    )
    X = torch.randn(2, 5, 3, dtype=torch.float64)
    out = cams.transform_points(X)
    for n, (mx, s) in enumerate([(1.5, (1.0, 2.0, 0.5)), (3.0, (0.5, 1.0, 1.0))]):
        v = _np_view(R[n].numpy(), T[n].numpy(), X[n].numpy())
        ref = np.stack(
            [
                2 * s[0] * v[:, 0] / (mx + 1) - (mx - 1) / (mx + 1),
                2 * s[1] * v[:, 1] / 3.0 - 1.0 / 3.0,
                s[2] * v[:, 2] / 4.9 - 0.1 / 4.9,
            ],
            1,
        )
        np.testing.assert_allclose(out[n].numpy(), ref, rtol=1e-10, atol=1e-10)
    assert not cams.is_perspective() and cams.in_ndc()


def test_look_at_default_puts_camera_on_plus_z():
    R, T = look_at_view_transform(dist=3.0)
    cams = FoVPerspectiveCameras(R=R, T=T)
    torch.testing.assert_close(cams.get_camera_center(), torch.tensor([[0.0, 0.0, 3.0]]))
    # The origin is straight ahead at depth 3; world +X appears on the image's right (view -X).
    v = cams.get_world_to_view_transform().transform_points(torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]))
    torch.testing.assert_close(v[0], torch.tensor([0.0, 0.0, 3.0]))
    assert v[1, 0] < 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_look_at_frames_orthonormal_right_handed_and_centre(dtype):
    n = 16
    dist = torch.rand(n, dtype=dtype) * 4 + 0.5
    elev = torch.rand(n, dtype=dtype) * 170 - 85
    azim = torch.rand(n, dtype=dtype) * 720 - 360
    at = torch.randn(n, 3, dtype=dtype)
    R, T = look_at_view_transform(dist, elev, azim, at=at)
    assert R.dtype == dtype
    eye = torch.eye(3, dtype=dtype).expand(n, 3, 3)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(R.transpose(1, 2) @ R, eye, atol=tol, rtol=0)
    torch.testing.assert_close(torch.linalg.det(R), torch.ones(n, dtype=dtype), atol=tol, rtol=0)
    # Independent spherical placement.
    e, a = np.radians(elev.numpy()), np.radians(azim.numpy())
    d = dist.numpy()
    C = np.stack([d * np.cos(e) * np.sin(a), d * np.sin(e), d * np.cos(e) * np.cos(a)], 1) + at.numpy()
    centre = FoVPerspectiveCameras(R=R, T=T).get_camera_center()
    np.testing.assert_allclose(centre.numpy(), C, atol=10 * tol)
    # The third column (view +Z) points from the camera to `at`; the up vector has no view-x part.
    fwd = (at.numpy() - C) / d[:, None]
    np.testing.assert_allclose(R[:, :, 2].numpy(), fwd, atol=10 * tol)
    assert np.all(np.abs((R[:, :, 0].numpy() * np.array([0, 1, 0])).sum(1)) < 10 * tol)
    assert np.all(R[:, 1, 1].numpy() > 0)  # camera up agrees with world up


def test_look_at_eye_matches_spherical():
    R1, T1 = look_at_view_transform(2.0, 30.0, 45.0)
    e = math.radians(30)
    a = math.radians(45)
    eye = [[2 * math.cos(e) * math.sin(a), 2 * math.sin(e), 2 * math.cos(e) * math.cos(a)]]
    R2, T2 = look_at_view_transform(eye=eye)
    torch.testing.assert_close(R1, R2)
    torch.testing.assert_close(T1, T2)


def test_look_at_degenerate_raises():
    with pytest.raises(ValueError, match="up"):
        look_at_rotation([[0.0, 2.0, 0.0]])
    with pytest.raises(ValueError, match="camera_position"):
        look_at_rotation([[0.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match="at"):
        look_at_view_transform(at=torch.zeros(2, 3), dist=torch.ones(3))


def test_camera_batch_broadcast_and_getitem():
    R, T = _random_pose(4, torch.float32)
    cams = FoVPerspectiveCameras(fov=torch.tensor([40.0, 50.0, 60.0, 70.0]), R=R, T=T)
    assert len(cams) == 4 and cams.znear.shape == (4,)
    X = torch.randn(1, 6, 3)
    full = cams.transform_points(X)  # a batch of 1 points broadcast over 4 cameras
    assert full.shape == (4, 6, 3)
    torch.testing.assert_close(cams[2].transform_points(X)[0], full[2])
    torch.testing.assert_close(cams[[0, 3]].transform_points(X), full[[0, 3]])
    torch.testing.assert_close(cams[torch.tensor([True, False, True, False])].transform_points(X), full[[0, 2]])
    torch.testing.assert_close(cams[1:3].transform_points(X), full[1:3])
    one = FoVPerspectiveCameras(R=R[:1], T=T[:1])
    assert one.transform_points(torch.randn(5, 6, 3)).shape == (5, 6, 3)  # one camera over 5 batches
    assert one.transform_points(torch.randn(6, 3)).shape == (6, 3)


@pytest.mark.parametrize("cls", [FoVPerspectiveCameras, FoVOrthographicCameras])
def test_unproject_inverts_transform(cls):
    R, T = _random_pose(3)
    cams = cls(R=R, T=T, znear=0.5, zfar=20.0)
    X = torch.randn(3, 10, 3, dtype=torch.float64) * 0.5
    ndc = cams.transform_points(X)
    depth = cams.get_world_to_view_transform().transform_points(X)[..., 2:]
    xy_depth = torch.cat((ndc[..., :2], depth), -1)
    torch.testing.assert_close(cams.unproject_points(xy_depth), X)
    torch.testing.assert_close(cams.unproject_points(ndc, scaled_depth_input=True), X)
    view = cams.unproject_points(xy_depth, world_coordinates=False)
    torch.testing.assert_close(view, cams.get_world_to_view_transform().transform_points(X))


def test_dtype_device_follow_inputs_and_to_clone_detach():
    cams = FoVPerspectiveCameras(fov=torch.tensor([45.0], dtype=torch.float64))
    assert cams.R.dtype == torch.float64 and cams.znear.dtype == torch.float64
    assert FoVPerspectiveCameras().R.dtype == torch.get_default_dtype()
    f = torch.tensor([50.0], requires_grad=True)
    c = FoVPerspectiveCameras(fov=f)
    c2 = c.clone()
    assert c2.fov.requires_grad and not c.detach().fov.requires_grad
    c32 = c.to(dtype=torch.float64)
    assert c32.get_projection_transform().get_matrix().dtype == torch.float64
    assert c.get_znear().shape == (1,)


def test_gradcheck_fov_camera_params():
    X = torch.randn(2, 4, 3, dtype=torch.float64) * 0.3
    R0, T0 = _random_pose(2)

    def f(aa, T, fov, znear, aspect):
        from diffras.transforms import axis_angle_to_matrix

        cams = FoVPerspectiveCameras(znear=znear, zfar=30.0, aspect_ratio=aspect, fov=fov,
                                     R=axis_angle_to_matrix(aa) @ R0, T=T)
        return cams.transform_points(X)

    args = (
        (torch.randn(2, 3, dtype=torch.float64) * 0.1).requires_grad_(),
        T0.clone().requires_grad_(),
        torch.tensor([40.0, 70.0], dtype=torch.float64, requires_grad=True),
        torch.tensor([0.5], dtype=torch.float64, requires_grad=True),
        torch.tensor([1.0, 1.3], dtype=torch.float64, requires_grad=True),
    )
    assert torch.autograd.gradcheck(f, args)

    def g(R, T, mx):
        return FoVOrthographicCameras(max_x=mx, R=R, T=T).transform_points(X)

    assert torch.autograd.gradcheck(g, (R0.clone().requires_grad_(), T0.clone().requires_grad_(),
                                        torch.tensor([1.5], dtype=torch.float64, requires_grad=True)))


@pytest.mark.parametrize(
    "kwargs, err, name",
    [
        (dict(fov=0.0), ValueError, "fov"),
        (dict(fov=180.0), ValueError, "fov"),
        (dict(fov=3.2, degrees=False), ValueError, "fov"),
        (dict(znear=0.0), ValueError, "znear"),
        (dict(znear=5.0, zfar=5.0), ValueError, "zfar"),
        (dict(aspect_ratio=-1.0), ValueError, "aspect_ratio"),
        (dict(fov=float("nan")), ValueError, "fov"),
        (dict(T=[[0.0, 0.0, float("inf")]]), ValueError, "T"),
        (dict(R=torch.eye(3, dtype=torch.int64)), TypeError, "R"),
        (dict(fov="wide"), TypeError, "fov"),
        (dict(R=torch.zeros(2, 3, 4)), ValueError, "R"),
        (dict(T=torch.zeros(2, 2)), ValueError, "T"),
        (dict(R=torch.eye(3).expand(2, 3, 3), T=torch.zeros(3, 3)), ValueError, "T"),
        (dict(degrees=1), TypeError, "degrees"),
    ],
)
def test_fov_perspective_bad_input(kwargs, err, name):
    with pytest.raises(err, match=name):
        FoVPerspectiveCameras(**kwargs)


@pytest.mark.parametrize(
    "kwargs, name",
    [(dict(max_x=-2.0), "max_x"), (dict(max_y=-1.0), "max_y"), (dict(zfar=0.5), "zfar"),
     (dict(scale_xyz=((1.0, 0.0, 1.0),)), "scale_xyz"), (dict(scale_xyz=(1.0, 1.0)), "scale_xyz")],
)
def test_fov_orthographic_bad_input(kwargs, name):
    with pytest.raises(ValueError, match=name):
        FoVOrthographicCameras(**kwargs)


def test_method_bad_input():
    cams = FoVPerspectiveCameras(R=torch.eye(3).expand(2, 3, 3).clone())
    with pytest.raises(ValueError, match="points"):
        cams.transform_points(torch.zeros(2, 5, 2))
    with pytest.raises(TypeError, match="points"):
        cams.transform_points(torch.zeros(2, 5, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="points|transform"):
        cams.transform_points(torch.zeros(3, 5, 3))
    with pytest.raises(ValueError, match="image_size"):
        cams.transform_points_screen(torch.zeros(2, 5, 3))
    with pytest.raises(ValueError, match="image_size"):
        cams.transform_points_screen(torch.zeros(2, 5, 3), image_size=(0, 4))
    with pytest.raises(ValueError, match="xy_depth"):
        cams.unproject_points(torch.zeros(3, 5, 3))
    with pytest.raises(IndexError, match="index"):
        cams[5]
    with pytest.raises(TypeError, match="index"):
        cams[torch.tensor([0.5])]


def test_gradcheck_look_at_and_unproject():
    def f(dist, elev, azim, at):
        return look_at_view_transform(dist, elev, azim, at=at)

    args = (torch.tensor([2.0, 3.0], dtype=torch.float64, requires_grad=True),
            torch.tensor([10.0], dtype=torch.float64, requires_grad=True),
            torch.tensor([30.0, -50.0], dtype=torch.float64, requires_grad=True),
            torch.tensor([[0.1, 0.2, -0.1]], dtype=torch.float64, requires_grad=True))
    assert torch.autograd.gradcheck(f, args)
    eye = torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda e: look_at_view_transform(eye=e), (eye,))

    R, T = _random_pose(2)

    def g(xy_depth, fov, T):
        return FoVPerspectiveCameras(fov=fov, R=R, T=T).unproject_points(xy_depth)

    assert torch.autograd.gradcheck(g, (
        torch.tensor([[[0.1, -0.2, 2.0], [0.3, 0.1, 3.0]]], dtype=torch.float64, requires_grad=True),
        torch.tensor([55.0, 65.0], dtype=torch.float64, requires_grad=True), T.clone().requires_grad_()))
