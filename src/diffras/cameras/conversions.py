"""Conversions between diffras (PyTorch3D) cameras and OpenCV / OpenGL camera conventions.

diffras / PyTorch3D: row vectors, ``X_view = X_world @ R + T``; view +X left, +Y up, +Z forward; NDC
with the shorter image side spanning [-1, 1]; pixel (i, j) centred at NDC
``((W - 2j - 1) / S, (H - 2i - 1) / S)``, ``S = min(H, W)``.

OpenCV: column vectors, ``x_cam = R @ X_world + tvec``; +X right, +Y down, +Z forward; intrinsics
``K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]`` in pixels with **pixel centres at integer
coordinates** (pixel (i, j) is centred at u = j, v = i). Note: PyTorch3D's
``cameras_from_opencv_projection`` puts pixel centres at half-integers instead (it maps cx = W / 2 to
the image centre); here cx = (W - 1) / 2 is the image centre, as in OpenCV itself.

OpenGL: column vectors, ``x_eye = V @ [X_world, 1]``; eye +X right, +Y up, looking down -Z; a
``glFrustum`` / ``gluPerspective`` / ``glOrtho`` projection ``P`` to clip space with NDC x, y in
[-1, 1] over the full width / height and z in [-1, 1] from near to far; the image is taken top row
first (NDC y = +1 at row 0), i.e. as it is normally saved, not as ``glReadPixels`` returns it.

``image_size`` is always (H, W): an int, a pair, or an (N, 2) tensor (PyTorch3D's order).
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch

from .._validation import _describe, check_tensor
from .base import CamerasBase, parse_image_size
from .fov import FoVOrthographicCameras, FoVPerspectiveCameras
from .sfm import OrthographicCameras, PerspectiveCameras, _SfMCameras

__all__ = ["cameras_from_opencv", "cameras_from_opengl", "opencv_from_cameras", "opengl_from_cameras"]


def _batched_matrix(x, name: str, size: int) -> torch.Tensor:
    check_tensor(x, name, dtype="float", finite=True)
    if x.dim() == 2:
        x = x[None]
    if x.dim() != 3 or x.shape[1:] != (size, size) or x.shape[0] == 0:
        raise ValueError(f"{name}: expected shape (N, {size}, {size}), got {tuple(x.shape)}")
    return x


def _common_batch(**named: torch.Tensor) -> int:
    n, first = 1, None
    for name, t in named.items():
        if t.shape[0] != 1 and t.shape[0] != n:
            if first is not None:
                raise ValueError(f"{name}: expected batch size 1 or {n} (the batch of {first}), got {t.shape[0]}")
            n, first = t.shape[0], name
    return n


def _size(image_size, n: int, ref: torch.Tensor) -> torch.Tensor:
    size = parse_image_size(image_size, "image_size", ref.device, ref.dtype)
    if size.shape[0] not in (1, n):
        raise ValueError(f"image_size: expected 1 or {n} sizes (the batch of the cameras), got {size.shape[0]}")
    return size.expand(n, 2)


def _small(x: torch.Tensor, scale: torch.Tensor) -> bool:
    """All of ``x`` negligible relative to the per-camera ``scale`` (N,) (or >= 1 in absolute)."""
    scale = scale.reshape(scale.shape + (1,) * (x.dim() - scale.dim()))
    # Loose enough for finite-difference perturbations, tight enough to catch real skew.
    return bool((x.abs() <= 1e-4 * scale.abs().clamp(min=1.0)).all())


# --- OpenCV ------------------------------------------------------------------------------------
def cameras_from_opencv(R: torch.Tensor, tvec: torch.Tensor, camera_matrix: torch.Tensor, image_size) -> PerspectiveCameras:
    """OpenCV extrinsics/intrinsics -> NDC ``PerspectiveCameras`` (with ``image_size`` set).

    Args:
        R: (N, 3, 3) world-to-camera rotation (column vectors); tvec: (N, 3).
        camera_matrix: (N, 3, 3) ``K`` in pixels, pixel centres at integers, no skew.
        image_size: (H, W) or (N, 2).

    A world point lands on the same pixel: OpenCV's (u, v) equals ``transform_points_screen`` minus
    0.5 (screen space puts pixel centres at half-integers). Differentiable in all inputs.
    """
    R = _batched_matrix(R, "R", 3)
    K = _batched_matrix(camera_matrix, "camera_matrix", 3)
    check_tensor(tvec, "tvec", dtype="float", finite=True)
    if tvec.dim() == 1:
        tvec = tvec[None]
    if tvec.dim() != 2 or tvec.shape[1] != 3:
        raise ValueError(f"tvec: expected shape (N, 3), got {tuple(tvec.shape)}")
    n = _common_batch(R=R, tvec=tvec, camera_matrix=K)
    fx, fy = K[:, 0, 0], K[:, 1, 1]
    if not (_small(K[:, 0, 1], fx) and _small(K[:, 1, 0], fy) and _small(K[:, 2, :2], fx)
            and bool(((K[:, 2, 2] - 1).abs() <= 1e-4).all())):
        raise ValueError("camera_matrix: expected [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] (no skew), got other entries")
    if bool((fx == 0).any()) or bool((fy == 0).any()):
        raise ValueError("camera_matrix: expected non-zero focal lengths fx, fy, got a zero")
    size = _size(image_size, n, K)
    h, w = size.unbind(1)
    s = torch.minimum(h, w)
    # OpenCV (u right, v down, centres at integers) -> NDC (+X left, +Y up): x_ndc = (W - 1 - 2u) / S.
    focal = torch.stack((2 * fx / s, 2 * fy / s), 1)
    pp = torch.stack(((w - 1 - 2 * K[:, 0, 2]) / s, (h - 1 - 2 * K[:, 1, 2]) / s), 1)
    flip = R.new_tensor([-1.0, -1.0, 1.0])
    R3 = R.transpose(1, 2) * flip  # negate the view x and y axes (columns in row-vector form)
    T3 = tvec * flip
    return PerspectiveCameras(focal_length=focal, principal_point=pp, R=R3, T=T3, image_size=size)


def _ndc_pinhole(cameras: CamerasBase, image_size) -> Tuple[torch.Tensor, torch.Tensor]:
    """NDC (fx, fy) and (px, py), each (N, 2), of any camera without skew."""
    if isinstance(cameras, _SfMCameras):
        return cameras.ndc_intrinsics(image_size)
    if isinstance(cameras, FoVPerspectiveCameras):
        fov = cameras.fov * (torch.pi / 180.0) if cameras.degrees else cameras.fov
        t = torch.tan(fov / 2)
        f = torch.stack((1 / (t * cameras.aspect_ratio), 1 / t), 1)
        return f, torch.zeros_like(f)
    if isinstance(cameras, FoVOrthographicCameras):
        wx, wy = cameras.max_x - cameras.min_x, cameras.max_y - cameras.min_y
        f = torch.stack((2 * cameras.scale_xyz[:, 0] / wx, 2 * cameras.scale_xyz[:, 1] / wy), 1)
        p = torch.stack((-(cameras.max_x + cameras.min_x) / wx, -(cameras.max_y + cameras.min_y) / wy), 1)
        return f, p
    raise TypeError(f"cameras: expected a diffras camera, got {_describe(cameras)}")


def _camera_size(cameras: CamerasBase, image_size) -> torch.Tensor:
    if image_size is None:
        image_size = cameras.get_image_size()
        if image_size is None:
            raise ValueError("image_size: expected an image size (H, W) (the cameras have none), got None")
    return _size(image_size, len(cameras), cameras.R)


def opencv_from_cameras(cameras: CamerasBase, image_size=None) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Perspective cameras -> OpenCV ``(R (N, 3, 3), tvec (N, 3), camera_matrix (N, 3, 3))``.

    Accepts ``PerspectiveCameras`` (NDC or screen) and ``FoVPerspectiveCameras``. ``image_size``
    defaults to the cameras' own. Inverse of :func:`cameras_from_opencv`; differentiable.
    """
    if not isinstance(cameras, CamerasBase) or not cameras.is_perspective():
        raise TypeError(f"cameras: expected perspective cameras, got {_describe(cameras)}")
    size = _camera_size(cameras, image_size)
    h, w = size.unbind(1)
    s = torch.minimum(h, w)
    f, p = _ndc_pinhole(cameras, size)
    fx, fy = f[:, 0] * s / 2, f[:, 1] * s / 2
    cx, cy = (w - 1 - p[:, 0] * s) / 2, (h - 1 - p[:, 1] * s) / 2
    zero, one = torch.zeros_like(fx), torch.ones_like(fx)
    K = torch.stack((fx, zero, cx, zero, fy, cy, zero, zero, one), 1).reshape(-1, 3, 3)
    flip = cameras.R.new_tensor([-1.0, -1.0, 1.0])
    R = (cameras.R * flip).transpose(1, 2)
    tvec = cameras.T * flip
    return R, tvec, K


# --- OpenGL ------------------------------------------------------------------------------------
_GL_FLIP = (-1.0, 1.0, -1.0)  # view (+X left, +Y up, +Z forward) <-> eye (+X right, +Y up, -Z forward)


def cameras_from_opengl(view_matrix: torch.Tensor, projection_matrix: torch.Tensor, image_size):
    """OpenGL view and projection matrices -> NDC ``PerspectiveCameras`` (for a ``glFrustum`` /
    ``gluPerspective`` matrix, bottom row (0, 0, -1, 0) up to scale) or ``OrthographicCameras``
    (for a ``glOrtho`` matrix, bottom row (0, 0, 0, 1)), with ``image_size`` set.

    Args:
        view_matrix: (N, 4, 4) rigid world-to-eye matrix, column vectors.
        projection_matrix: (N, 4, 4) eye-to-clip matrix, column vectors, off-centre frusta allowed.
        image_size: (H, W) or (N, 2) of the viewport.

    Every world point lands on the same pixel. The depth range (near/far) is not kept: pinhole
    cameras have none (pass it back to :func:`opengl_from_cameras`). Differentiable.
    """
    V = _batched_matrix(view_matrix, "view_matrix", 4)
    P = _batched_matrix(projection_matrix, "projection_matrix", 4)
    n = _common_batch(view_matrix=V, projection_matrix=P)
    if not bool(((V[:, 3] - V.new_tensor([0.0, 0.0, 0.0, 1.0])).abs() <= 1e-4).all()):
        raise ValueError("view_matrix: expected an affine matrix with bottom row (0, 0, 0, 1), got other values")
    size = _size(image_size, n, P)
    h, w = size.unbind(1)
    s = torch.minimum(h, w)
    bottom = P[:, 3]
    persp = bool((bottom[:, 2].abs() > 1e-12).all()) and _small(bottom[:, [0, 1, 3]], bottom[:, 2])
    ortho = _small(bottom[:, :3], bottom[:, 3]) and bool((bottom[:, 3].abs() > 1e-12).all())
    if persp:
        P = P / (-bottom[:, 2])[:, None, None]
        zeros = P[:, [0, 1, 2, 2], [1, 0, 0, 1]]
        if not (_small(zeros, P[:, 0, 0]) and _small(P[:, :2, 3], P[:, 0, 0])):
            raise ValueError("projection_matrix: expected a glFrustum-style matrix (no skew), got other entries")
        focal = torch.stack((w / s * P[:, 0, 0], h / s * P[:, 1, 1]), 1)
        pp = torch.stack((w / s * P[:, 0, 2], -h / s * P[:, 1, 2]), 1)
        cls = PerspectiveCameras
    elif ortho:
        P = P / bottom[:, 3][:, None, None]
        zeros = P[:, [0, 1, 2, 2, 0, 1], [1, 0, 0, 1, 2, 2]]
        if not _small(zeros, P[:, 0, 0]):
            raise ValueError("projection_matrix: expected a glOrtho-style matrix (no skew), got other entries")
        focal = torch.stack((w / s * P[:, 0, 0], h / s * P[:, 1, 1]), 1)
        pp = torch.stack((-w / s * P[:, 0, 3], h / s * P[:, 1, 3]), 1)
        cls = OrthographicCameras
    else:
        raise ValueError(
            "projection_matrix: expected a perspective (bottom row (0, 0, -1, 0)) or orthographic "
            "(bottom row (0, 0, 0, 1)) matrix, got other bottom rows"
        )
    flip = V.new_tensor(_GL_FLIP)
    R3 = V[:, :3, :3].transpose(1, 2) * flip
    T3 = V[:, :3, 3] * flip
    return cls(focal_length=focal, principal_point=pp, R=R3, T=T3, image_size=size)


def opengl_from_cameras(
    cameras: CamerasBase, image_size=None, znear: Optional[float] = None, zfar: Optional[float] = None
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Cameras -> OpenGL ``(view_matrix (N, 4, 4), projection_matrix (N, 4, 4))``, column vectors.

    Args:
        cameras: any diffras camera (perspective -> glFrustum-style, orthographic -> glOrtho-style).
        image_size: (H, W) or (N, 2); defaults to the cameras' own.
        znear, zfar: the clip range (numbers or (N,) tensors); default the cameras' own (FoV
            cameras), required for pinhole cameras which have none.
    """
    if not isinstance(cameras, CamerasBase):
        raise TypeError(f"cameras: expected a diffras camera, got {_describe(cameras)}")
    size = _camera_size(cameras, image_size)
    h, w = size.unbind(1)
    s = torch.minimum(h, w)
    f, p = _ndc_pinhole(cameras, size)
    ref = cameras.R

    def depth(value, name, own):
        if value is None:
            if own is None:
                raise ValueError(f"{name}: expected a number for cameras without a depth range, got None")
            return own
        if isinstance(value, torch.Tensor):
            check_tensor(value, name, dtype="float", finite=True)
            return value.to(ref).reshape(-1).expand(len(cameras))
        try:
            t = torch.as_tensor(value, dtype=ref.dtype, device=ref.device).reshape(-1)
        except (TypeError, ValueError, RuntimeError) as e:
            raise TypeError(f"{name}: expected a number or tensor, got {_describe(value)}") from e
        check_tensor(t, name, finite=True)
        return t.expand(len(cameras))

    n_ = depth(znear, "znear", cameras.get_znear())
    f_ = depth(zfar, "zfar", getattr(cameras, "zfar", None))
    if bool((f_ <= n_).any()):
        raise ValueError("zfar: expected zfar > znear, got zfar <= znear")
    if cameras.is_perspective() and bool((n_ <= 0).any()):
        raise ValueError("znear: expected znear > 0 for a perspective projection, got a value <= 0")
    zero, one = torch.zeros_like(s), torch.ones_like(s)
    a, b = f[:, 0] * s / w, f[:, 1] * s / h
    if cameras.is_perspective():
        rows = (a, zero, p[:, 0] * s / w, zero,
                zero, b, -p[:, 1] * s / h, zero,
                zero, zero, -(f_ + n_) / (f_ - n_), -2 * f_ * n_ / (f_ - n_),
                zero, zero, -one, zero)
    else:
        rows = (a, zero, zero, -p[:, 0] * s / w,
                zero, b, zero, p[:, 1] * s / h,
                zero, zero, -2 / (f_ - n_), -(f_ + n_) / (f_ - n_),
                zero, zero, zero, one)
    P = torch.stack(rows, 1).reshape(-1, 4, 4)
    flip = ref.new_tensor(_GL_FLIP)
    lin = (cameras.R * flip).transpose(1, 2)
    t = cameras.T * flip
    top = torch.cat((lin, t[:, :, None]), 2)
    V = torch.cat((top, torch.cat((torch.zeros_like(t), torch.ones_like(t[:, :1])), 1)[:, None]), 1)
    return V, P
