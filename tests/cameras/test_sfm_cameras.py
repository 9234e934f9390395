"""PerspectiveCameras / OrthographicCameras (NDC and screen), NDC and screen spaces, against
numpy pinhole math and pixel positions written out here."""

import numpy as np
import pytest
import torch

from diffras.cameras import (
    FoVPerspectiveCameras,
    OrthographicCameras,
    PerspectiveCameras,
    get_ndc_to_screen_transform,
    get_screen_to_ndc_transform,
    look_at_view_transform,
)


def _pose(n, dtype=torch.float64):
    return look_at_view_transform(
        dist=torch.rand(n, dtype=dtype) + 3, elev=torch.rand(n, dtype=dtype) * 60 - 30,
        azim=torch.rand(n, dtype=dtype) * 360,
    )


def test_perspective_ndc_matches_numpy():
    R, T = _pose(2)
    f = torch.tensor([[1.5, 2.0], [3.0, 2.5]], dtype=torch.float64)
    p = torch.tensor([[0.1, -0.2], [0.0, 0.3]], dtype=torch.float64)
    cams = PerspectiveCameras(focal_length=f, principal_point=p, R=R, T=T)
    X = torch.randn(2, 7, 3, dtype=torch.float64) * 0.5
    out = cams.transform_points(X)
    for n in range(2):
        v = X[n].numpy() @ R[n].numpy() + T[n].numpy()
        ref = np.stack([f[n, 0].item() * v[:, 0] / v[:, 2] + p[n, 0].item(),
                        f[n, 1].item() * v[:, 1] / v[:, 2] + p[n, 1].item(), 1 / v[:, 2]], 1)
        np.testing.assert_allclose(out[n].numpy(), ref, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(cams.transform_points_ndc(X), out)
    assert cams.is_perspective() and cams.in_ndc() and cams.get_znear() is None


def test_orthographic_matches_numpy():
    R, T = _pose(1)
    cams = OrthographicCameras(focal_length=[[0.5, 0.25]], principal_point=((0.1, 0.2),), R=R, T=T)
    X = torch.randn(9, 3, dtype=torch.float64)
    v = X.numpy() @ R[0].numpy() + T[0].numpy()
    ref = np.stack([0.5 * v[:, 0] + 0.1, 0.25 * v[:, 1] + 0.2, v[:, 2]], 1)
    np.testing.assert_allclose(cams.transform_points(X).numpy(), ref, rtol=1e-10, atol=1e-12)
    assert not cams.is_perspective()


@pytest.mark.parametrize("focal", [2.0, [2.0], torch.tensor([2.0]), torch.tensor([[2.0]]), ((2.0, 2.0),)])
def test_focal_length_forms(focal):
    cams = PerspectiveCameras(focal_length=focal)
    torch.testing.assert_close(cams.focal_length, torch.tensor([[2.0, 2.0]]))


def test_screen_space_camera_pixels_and_ndc_equivalence():
    # A screen-space camera (pixels) and the NDC camera PyTorch3D's notes give as its equivalent.
    H, W = 48, 80
    fx, fy, px, py = 60.0, 70.0, 35.0, 20.0
    R, T = _pose(1)
    scr = PerspectiveCameras(focal_length=((fx, fy),), principal_point=((px, py),), R=R, T=T,
                             in_ndc=False, image_size=((H, W),))
    s = min(H, W)
    ndc = PerspectiveCameras(focal_length=((fx * 2 / s, fy * 2 / s),),
                             principal_point=((-(px - W / 2) * 2 / s, -(py - H / 2) * 2 / s),), R=R, T=T)
    X = torch.randn(1, 20, 3, dtype=torch.float64) * 0.5
    torch.testing.assert_close(scr.transform_points_ndc(X), ndc.transform_points_ndc(X))
    # Screen pixels with x right / y down: u = px - fx * x_view / z (view +X is left).
    v = (X[0] @ R[0] + T[0]).numpy()
    u_ref = px - fx * v[:, 0] / v[:, 2]
    v_ref = py - fy * v[:, 1] / v[:, 2]
    got = scr.transform_points_screen(X)[0]
    np.testing.assert_allclose(got[:, 0].numpy(), u_ref, rtol=1e-10)
    np.testing.assert_allclose(got[:, 1].numpy(), v_ref, rtol=1e-10)
    torch.testing.assert_close(ndc.transform_points_screen(X, image_size=(H, W)), got.unsqueeze(0))
    # unproject inverts both the raw and the NDC projections.
    depth = v[:, 2:3]
    xy = scr.transform_points(X)[..., :2]
    torch.testing.assert_close(scr.unproject_points(torch.cat((xy, torch.from_numpy(depth)[None]), -1)), X)
    xy_ndc = scr.transform_points_ndc(X)[..., :2]
    torch.testing.assert_close(
        scr.unproject_points(torch.cat((xy_ndc, torch.from_numpy(depth)[None]), -1), from_ndc=True), X
    )


@pytest.mark.parametrize("H, W", [(4, 6), (6, 4), (5, 5), (1, 7)])
def test_non_square_ndc_range_and_pixel_centres(H, W):
    # A 90-degree FoV camera at the origin: NDC x = x/z, y = y/z. Put a point on every pixel centre,
    # using the documented formula, and check transform_points_screen lands on (j + .5, i + .5).
    cams = FoVPerspectiveCameras(fov=90.0)
    S = min(H, W)
    jj, ii = np.meshgrid(np.arange(W), np.arange(H))
    x_ndc = (W - 2 * jj - 1) / S
    y_ndc = (H - 2 * ii - 1) / S
    z = 2.0
    X = torch.tensor(np.stack([x_ndc * z, y_ndc * z, np.full_like(x_ndc, z)], -1).reshape(-1, 3), dtype=torch.float64)
    cams = cams.to(dtype=torch.float64)
    scr = cams.transform_points_screen(X, image_size=(H, W))
    np.testing.assert_allclose(scr[:, 0].numpy(), (jj + 0.5).reshape(-1), atol=1e-12)
    np.testing.assert_allclose(scr[:, 1].numpy(), (ii + 0.5).reshape(-1), atol=1e-12)
    ndc = cams.transform_points_ndc(X)
    # The shorter side spans [-1, 1] (pixel centres inside), the longer [-W/S, W/S].
    assert ndc[:, 0].abs().max() == pytest.approx((W - 1) / S)
    assert ndc[:, 1].abs().max() == pytest.approx((H - 1) / S)
    # Image corners: screen (0, 0) is NDC (+W/S, +H/S) (top-left is +X left, +Y up).
    corner = get_screen_to_ndc_transform(cams, with_xyflip=True, image_size=(H, W)).transform_points(
        torch.tensor([[0.0, 0.0, 1.0], [W, H, 1.0]], dtype=torch.float64))
    torch.testing.assert_close(corner[:, :2], torch.tensor([[W / S, H / S], [-W / S, -H / S]], dtype=torch.float64))


def test_screen_transform_batched_sizes():
    cams = PerspectiveCameras(R=torch.eye(3).expand(2, 3, 3))
    t = get_ndc_to_screen_transform(cams, with_xyflip=True, image_size=torch.tensor([[10, 20], [30, 10]]))
    out = t.transform_points(torch.zeros(2, 1, 3))
    torch.testing.assert_close(out[:, 0, :2], torch.tensor([[10.0, 5.0], [5.0, 15.0]]))


def test_gradcheck_sfm_params():
    X = torch.randn(2, 4, 3, dtype=torch.float64) * 0.3
    R0, T0 = _pose(2)

    def f(R, T, focal, pp):
        return PerspectiveCameras(focal_length=focal, principal_point=pp, R=R, T=T).transform_points_ndc(X)

    args = (R0.clone().requires_grad_(), T0.clone().requires_grad_(),
            torch.tensor([[1.5, 1.7], [2.0, 2.1]], dtype=torch.float64, requires_grad=True),
            torch.tensor([[0.1, -0.1]], dtype=torch.float64, requires_grad=True))
    assert torch.autograd.gradcheck(f, args)

    def g(focal, pp):  # screen-space intrinsics, through the NDC and screen transforms
        cams = PerspectiveCameras(focal_length=focal, principal_point=pp, R=R0, T=T0, in_ndc=False, image_size=(30, 40))
        return cams.transform_points_ndc(X), cams.transform_points_screen(X)

    assert torch.autograd.gradcheck(g, (torch.tensor([50.0], dtype=torch.float64, requires_grad=True),
                                        torch.tensor([[20.0, 15.0]], dtype=torch.float64, requires_grad=True)))

    def h(focal, pp):
        return OrthographicCameras(focal_length=focal, principal_point=pp, R=R0, T=T0).transform_points(X)

    assert torch.autograd.gradcheck(h, args[2:])


def test_getitem_keeps_image_size_and_flags():
    cams = PerspectiveCameras(focal_length=[10.0, 20.0, 30.0], in_ndc=False, image_size=[[10, 20], [30, 40], [50, 60]])
    sub = cams[1]
    assert not sub.in_ndc() and sub.image_size.tolist() == [[30.0, 40.0]] and sub.focal_length.tolist() == [[20.0, 20.0]]


@pytest.mark.parametrize(
    "kwargs, err, name",
    [
        (dict(focal_length=0.0), ValueError, "focal_length"),
        (dict(focal_length=float("nan")), ValueError, "focal_length"),
        (dict(focal_length="x"), TypeError, "focal_length"),
        (dict(focal_length=torch.tensor([1, 2])), TypeError, "focal_length"),
        (dict(principal_point=((0.0, 0.0, 0.0),)), ValueError, "principal_point"),
        (dict(in_ndc="no"), TypeError, "in_ndc"),
        (dict(image_size=(0, 5)), ValueError, "image_size"),
        (dict(image_size=(2.5, 5)), ValueError, "image_size"),
        (dict(image_size=[[4, 4], [5, 5]], focal_length=[1.0, 2.0, 3.0]), ValueError, "image_size"),
        (dict(focal_length=[1.0, 2.0], principal_point=torch.zeros(3, 2)), ValueError, "principal_point"),
    ],
)
def test_sfm_bad_input(kwargs, err, name):
    with pytest.raises(err, match=name):
        PerspectiveCameras(**kwargs)


def test_device_mismatch_raises():
    # "meta" is the only second device on a CPU-only machine; the device check runs before any value check.
    meta_T = torch.zeros(1, 3, device="meta")
    with pytest.raises(ValueError, match="T"):
        PerspectiveCameras(focal_length=torch.tensor([1.0]), T=meta_T)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_follows_input_device_cuda():
    cams = PerspectiveCameras(T=torch.zeros(1, 3, device="cuda"))
    assert cams.focal_length.is_cuda
    assert cams.transform_points_screen(torch.zeros(1, 2, 3, device="cuda") + 1, image_size=(4, 4)).is_cuda


def test_screen_camera_image_size_per_call():
    cams = PerspectiveCameras(focal_length=10.0, principal_point=((4.0, 3.0),), in_ndc=False)
    X = torch.tensor([[[0.5, -0.25, 2.0]]])
    with pytest.raises(ValueError, match="image_size"):
        cams.transform_points_ndc(X)
    with_size = PerspectiveCameras(focal_length=10.0, principal_point=((4.0, 3.0),), in_ndc=False, image_size=(6, 8))
    torch.testing.assert_close(cams.transform_points_ndc(X, image_size=(6, 8)), with_size.transform_points_ndc(X))
    torch.testing.assert_close(cams.transform_points_screen(X, (6, 8)), with_size.transform_points_screen(X))
    # u = px - fx * x / z, v = py - fy * y / z in pixels.
    torch.testing.assert_close(with_size.transform_points_screen(X)[0, 0, :2], torch.tensor([4.0 - 2.5, 3.0 + 1.25]))


def test_unproject_sfm_cameras_ndc():
    R, T = _pose(2)
    for cls in (PerspectiveCameras, OrthographicCameras):
        cams = cls(focal_length=[[1.2, 0.8]], principal_point=((0.1, -0.3),), R=R, T=T)
        X = torch.randn(2, 6, 3, dtype=torch.float64) * 0.4
        xy = cams.transform_points(X)[..., :2]
        z = cams.get_world_to_view_transform().transform_points(X)[..., 2:]
        torch.testing.assert_close(cams.unproject_points(torch.cat((xy, z), -1)), X)
        torch.testing.assert_close(cams.unproject_points(cams.transform_points(X), scaled_depth_input=True), X)


def test_screen_transform_agrees_with_raster_pixel_centres():
    # The rasterizer's one implementation of pixel centres in NDC must map to (j + .5, i + .5).
    from diffras.raster.pixels import pixel_centers_ndc

    for H, W in [(3, 5), (6, 4)]:
        cams = FoVPerspectiveCameras(R=torch.eye(3, dtype=torch.float64)[None])
        c = pixel_centers_ndc((H, W), dtype=torch.float64).reshape(-1, 2)
        pts = torch.cat((c, torch.ones(len(c), 1, dtype=torch.float64)), 1)
        scr = get_ndc_to_screen_transform(cams, with_xyflip=True, image_size=(H, W)).transform_points(pts)
        jj, ii = torch.meshgrid(torch.arange(W), torch.arange(H), indexing="xy")
        torch.testing.assert_close(scr[:, 0], (jj.reshape(-1) + 0.5).double())
        torch.testing.assert_close(scr[:, 1], (ii.reshape(-1) + 0.5).double())


def test_join_cameras_as_batch():
    from diffras.cameras import FoVOrthographicCameras, join_cameras_as_batch

    R, T = _pose(3)
    f = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64, requires_grad=True)
    a = PerspectiveCameras(focal_length=f[:2], R=R[:2], T=T[:2], image_size=(8, 10))
    b = PerspectiveCameras(focal_length=f[2:], R=R[2:], T=T[2:], image_size=(6, 4))
    ab = join_cameras_as_batch([a, b])
    X = torch.randn(3, 5, 3, dtype=torch.float64)
    want = torch.cat((a.transform_points_screen(X[:2]), b.transform_points_screen(X[2:])))
    torch.testing.assert_close(ab.transform_points_screen(X), want)
    assert len(ab) == 3 and ab.image_size.tolist()[2] == [6.0, 4.0]
    ab.transform_points(X).sum().backward()
    assert f.grad is not None and torch.all(f.grad != 0)
    with pytest.raises(TypeError, match=r"cameras_list\[1\]"):
        join_cameras_as_batch([a, FoVOrthographicCameras()])
    with pytest.raises(ValueError, match=r"cameras_list\[1\]"):
        join_cameras_as_batch([a, PerspectiveCameras()])
    with pytest.raises(ValueError, match="cameras_list"):
        join_cameras_as_batch([])
