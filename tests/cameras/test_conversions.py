"""OpenCV / OpenGL conversions: the same world point lands on the same pixel in both conventions,
with each convention's projection written out in numpy here."""

import numpy as np
import pytest
import torch

from diffras.cameras import (
    FoVOrthographicCameras,
    FoVPerspectiveCameras,
    OrthographicCameras,
    PerspectiveCameras,
    cameras_from_opencv,
    cameras_from_opengl,
    look_at_view_transform,
    opencv_from_cameras,
    opengl_from_cameras,
)
from diffras.transforms import random_rotations


def _opencv_scene(n, H, W):
    R = random_rotations(n, torch.float64)
    # Points about 4 units in front of every camera.
    Xc = torch.randn(n, 12, 3, dtype=torch.float64) * 0.5 + torch.tensor([0.0, 0.0, 4.0], dtype=torch.float64)
    tvec = torch.randn(n, 3, dtype=torch.float64) * 0.3
    Xw = (Xc - tvec[:, None]) @ R  # R^T (x_cam - t), batched, row form
    K = torch.zeros(n, 3, 3, dtype=torch.float64)
    K[:, 0, 0] = torch.rand(n, dtype=torch.float64) * 50 + 50
    K[:, 1, 1] = torch.rand(n, dtype=torch.float64) * 50 + 50
    K[:, 0, 2] = W / 2 + torch.randn(n, dtype=torch.float64) * 3
    K[:, 1, 2] = H / 2 + torch.randn(n, dtype=torch.float64) * 3
    K[:, 2, 2] = 1
    return R, tvec, K, Xw


def _np_opencv_project(R, t, K, X):
    xc = X @ R.T + t
    uvw = xc @ K.T
    return uvw[:, :2] / uvw[:, 2:]


@pytest.mark.parametrize("H, W", [(48, 64), (64, 48)])
def test_opencv_same_pixel_and_round_trip(H, W):
    R, tvec, K, Xw = _opencv_scene(3, H, W)
    size = torch.tensor([[H, W]] * 3)
    cams = cameras_from_opencv(R, tvec, K, size)
    scr = cams.transform_points_screen(Xw)
    for n in range(3):
        uv = _np_opencv_project(R[n].numpy(), tvec[n].numpy(), K[n].numpy(), Xw[n].numpy())
        # OpenCV centres pixel j at u = j; screen space at j + 0.5.
        np.testing.assert_allclose(scr[n, :, :2].numpy(), uv + 0.5, rtol=1e-10, atol=1e-9)
    R2, t2, K2 = opencv_from_cameras(cams)
    torch.testing.assert_close(R2, R)
    torch.testing.assert_close(t2, tvec)
    torch.testing.assert_close(K2, K)
    # Also through a screen-space (pixel) camera built from the same numbers.
    fx, fy = K[:, 0, 0], K[:, 1, 1]
    pp_screen = K[:, :2, 2] + 0.5  # integer-centred OpenCV -> half-integer screen convention
    scr_cam = PerspectiveCameras(focal_length=torch.stack((fx, fy), 1), principal_point=pp_screen,
                                 R=cams.R, T=cams.T, in_ndc=False, image_size=size)
    torch.testing.assert_close(scr_cam.transform_points_screen(Xw), scr)
    _, _, K3 = opencv_from_cameras(scr_cam)
    torch.testing.assert_close(K3, K)


def test_opencv_principal_point_at_image_centre():
    # cx = (W - 1) / 2 is the middle of the image in OpenCV: the optical axis hits NDC (0, 0).
    H, W = 30, 50
    K = torch.tensor([[[40.0, 0, (W - 1) / 2], [0, 40.0, (H - 1) / 2], [0, 0, 1]]])
    cams = cameras_from_opencv(torch.eye(3)[None], torch.zeros(1, 3), K, (H, W))
    torch.testing.assert_close(cams.transform_points_ndc(torch.tensor([[0.0, 0.0, 3.0]]))[:, :2], torch.zeros(1, 2))


def test_opencv_from_fov_camera():
    H, W = 40, 60
    R, T = look_at_view_transform(3.0, 20.0, 40.0, )
    fov = FoVPerspectiveCameras(fov=50.0, R=R, T=T)
    Rc, tc, K = opencv_from_cameras(fov, image_size=(H, W))
    X = torch.randn(10, 3) * 0.5
    uv = _np_opencv_project(Rc[0].numpy(), tc[0].numpy(), K[0].numpy(), X.numpy())
    np.testing.assert_allclose(fov.transform_points_screen(X, image_size=(H, W))[:, :2].numpy(), uv + 0.5, atol=1e-4)


def test_opencv_gradcheck():
    R, tvec, K, Xw = _opencv_scene(1, 20, 30)
    Xw = Xw[:, :3]

    def f(R, tvec, K):
        return cameras_from_opencv(R, tvec, K, (20, 30)).transform_points_screen(Xw)

    assert torch.autograd.gradcheck(f, (R.requires_grad_(), tvec.requires_grad_(), K.requires_grad_()))


def test_opencv_bad_input():
    R, tvec, K, _ = _opencv_scene(2, 20, 30)
    with pytest.raises(ValueError, match="camera_matrix"):
        skew = K.clone()
        skew[:, 0, 1] = 3.0
        cameras_from_opencv(R, tvec, skew, (20, 30))
    with pytest.raises(ValueError, match="tvec"):
        cameras_from_opencv(R, tvec[:, :2], K, (20, 30))
    with pytest.raises(ValueError, match="camera_matrix"):
        cameras_from_opencv(R, tvec, K.repeat(2, 1, 1), (20, 30))
    with pytest.raises(TypeError, match="R"):
        cameras_from_opencv(R.long(), tvec, K, (20, 30))
    with pytest.raises(ValueError, match="image_size"):
        cameras_from_opencv(R, tvec, K, (0, 30))
    with pytest.raises(ValueError, match="image_size"):
        opencv_from_cameras(PerspectiveCameras())
    with pytest.raises(TypeError, match="cameras"):
        opencv_from_cameras(OrthographicCameras(), image_size=(4, 4))


# --- OpenGL, with gluLookAt / glFrustum / glOrtho written out ---------------------------------
def _gl_look_at(eye, center, up):
    f = center - eye
    f = f / np.linalg.norm(f)
    s = np.cross(f, up)
    s = s / np.linalg.norm(s)
    u = np.cross(s, f)
    M = np.eye(4)
    M[0, :3], M[1, :3], M[2, :3] = s, u, -f
    M[:3, 3] = -M[:3, :3] @ eye
    return M


def _gl_frustum(l, r, b, t, n, f):
    return np.array([[2 * n / (r - l), 0, (r + l) / (r - l), 0], [0, 2 * n / (t - b), (t + b) / (t - b), 0],
                     [0, 0, -(f + n) / (f - n), -2 * f * n / (f - n)], [0, 0, -1, 0]])


def _gl_ortho(l, r, b, t, n, f):
    return np.array([[2 / (r - l), 0, 0, -(r + l) / (r - l)], [0, 2 / (t - b), 0, -(t + b) / (t - b)],
                     [0, 0, -2 / (f - n), -(f + n) / (f - n)], [0, 0, 0, 1]])


def _gl_pixels(V, P, X, H, W):
    clip = np.concatenate([X, np.ones((len(X), 1))], 1) @ (P @ V).T
    ndc = clip[:, :3] / clip[:, 3:]
    # Viewport: x from the left edge, y from the top row (image saved top row first).
    return np.stack([(ndc[:, 0] + 1) / 2 * W, (1 - ndc[:, 1]) / 2 * H], 1), ndc[:, 2]


@pytest.mark.parametrize("kind", ["frustum", "ortho"])
@pytest.mark.parametrize("H, W", [(40, 60), (50, 30)])
def test_opengl_same_pixel_and_round_trip(kind, H, W):
    rng = np.random.default_rng(0)
    eye = np.array([1.0, 2.0, 3.5])
    V = _gl_look_at(eye, np.array([0.1, -0.1, 0.0]), np.array([0.0, 1.0, 0.0]))
    n, f = 0.5, 20.0
    if kind == "frustum":
        P = _gl_frustum(-0.3, 0.2, -0.15, 0.25, n, f)  # off-centre on purpose
    else:
        P = _gl_ortho(-1.5, 1.2, -1.0, 1.3, n, f)
    X = rng.normal(size=(15, 3)) * 0.5
    px_ref, _ = _gl_pixels(V, P, X, H, W)
    Vt, Pt = torch.tensor(V)[None], torch.tensor(P)[None]
    cams = cameras_from_opengl(Vt, Pt, (H, W))
    assert isinstance(cams, PerspectiveCameras if kind == "frustum" else OrthographicCameras)
    got = cams.transform_points_screen(torch.tensor(X))
    np.testing.assert_allclose(got[:, :2].numpy(), px_ref, rtol=1e-10, atol=1e-9)
    V2, P2 = opengl_from_cameras(cams, znear=n, zfar=f)
    torch.testing.assert_close(V2, Vt)
    torch.testing.assert_close(P2, Pt)


def test_opengl_from_fov_cameras_pixels_and_depth():
    H, W = 32, 48
    R, T = look_at_view_transform(4.0, 15.0, -30.0)
    X = np.random.default_rng(1).normal(size=(10, 3)) * 0.5
    for cams in (FoVPerspectiveCameras(znear=0.3, zfar=9.0, fov=55.0, R=R, T=T).to(dtype=torch.float64),
                 FoVOrthographicCameras(znear=0.3, zfar=9.0, max_x=2.0, min_x=-1.0, R=R, T=T).to(dtype=torch.float64)):
        V, P = opengl_from_cameras(cams, image_size=(H, W))
        px, zgl = _gl_pixels(V[0].numpy(), P[0].numpy(), X, H, W)
        got = cams.transform_points_screen(torch.tensor(X), image_size=(H, W))
        np.testing.assert_allclose(got[:, :2].numpy(), px, rtol=1e-10, atol=1e-9)
        # The camera's own depth range maps to [-1, 1] in GL.
        near_pt = cams.unproject_points(torch.tensor([[0.0, 0.0, 0.3], [0.0, 0.0, 9.0]], dtype=torch.float64))
        _, z = _gl_pixels(V[0].numpy(), P[0].numpy(), near_pt.numpy(), H, W)
        np.testing.assert_allclose(z, [-1.0, 1.0], atol=1e-9)


def test_opengl_bad_input():
    V = torch.eye(4, dtype=torch.float64)[None]
    P = torch.tensor(_gl_frustum(-1, 1, -1, 1, 1, 10))[None]
    bad = P.clone()
    bad[:, 3] = torch.tensor([0.0, 0.5, 0.0, 1.0], dtype=torch.float64)
    with pytest.raises(ValueError, match="projection_matrix"):
        cameras_from_opengl(V, bad, (8, 8))
    skew = P.clone()
    skew[:, 0, 1] = 0.2
    with pytest.raises(ValueError, match="projection_matrix"):
        cameras_from_opengl(V, skew, (8, 8))
    Vb = V.clone()
    Vb[:, 3, 0] = 1.0
    with pytest.raises(ValueError, match="view_matrix"):
        cameras_from_opengl(Vb, P, (8, 8))
    with pytest.raises(ValueError, match="view_matrix"):
        cameras_from_opengl(V[:, :3], P, (8, 8))
    with pytest.raises(ValueError, match="znear"):
        opengl_from_cameras(PerspectiveCameras(), image_size=(8, 8))
    with pytest.raises(ValueError, match="zfar"):
        opengl_from_cameras(PerspectiveCameras(), image_size=(8, 8), znear=2.0, zfar=1.0)
    with pytest.raises(TypeError, match="cameras"):
        opengl_from_cameras("camera", image_size=(8, 8))
