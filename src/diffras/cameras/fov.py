"""OpenGL-style cameras defined by a field of view or a view box, projecting straight to NDC.

Both follow PyTorch3D exactly: view space +X left, +Y up, +Z into the screen; NDC x, y in [-1, 1]
on the shorter image side (for non-square images the longer side extends beyond 1); the projected z
maps ``znear -> 0`` and ``zfar -> 1``.
"""
from __future__ import annotations

import math

import torch

from ..transforms import Transform3d
from .base import CamerasBase, _check_positive

__all__ = ["FoVOrthographicCameras", "FoVPerspectiveCameras"]


def _column_matrix(rows) -> torch.Tensor:
    """(N, 4, 4) column-vector matrix from 16 (N,) tensors in row-major order."""
    return torch.stack(rows, 1).reshape(-1, 4, 4)


def _row_vector_transform(rows) -> Transform3d:
    """Transform3d from a column-vector 4x4 given as 16 (N,) tensors in row-major order."""
    return Transform3d._make(_column_matrix(rows).transpose(1, 2))


def _check_depth_range(znear: torch.Tensor, zfar: torch.Tensor) -> None:
    if bool((zfar <= znear).any()):
        i = int((zfar <= znear).nonzero()[0, 0])
        raise ValueError(f"zfar: expected zfar > znear, got zfar={zfar[i].item()} and znear={znear[i].item()}")


class FoVPerspectiveCameras(CamerasBase):
    """Perspective cameras given by a vertical field of view, as PyTorch3D's.

    Projection of a view-space point (x, y, z), with ``t = tan(fov / 2)``:
    ``x_ndc = x / (z * t * aspect_ratio)``, ``y_ndc = y / (z * t)``,
    ``z_ndc = zfar * (z - znear) / ((zfar - znear) * z)``.

    Args:
        znear, zfar: (N,) near/far plane depths, ``0 < znear < zfar``.
        aspect_ratio: (N,) > 0, the NDC x extent relative to y (1 for square pixels, since NDC already
            accounts for the image's aspect).
        fov: (N,) field of view spanned by NDC y in [-1, 1], in (0, 180) degrees: the vertical field
            of view of a landscape image, the horizontal one of a portrait image (whose shorter side
            is its width) when ``aspect_ratio = 1``.
        degrees: whether ``fov`` is in degrees (else radians).
        R: (N, 3, 3) world-to-view rotation (default identity); T: (N, 3) (default zeros).
        device: where to put the parameters (default: the device of the tensor arguments).

    Each parameter is a number, a sequence or a tensor; batch sizes 1 broadcast to N. Tensors keep
    their autograd graph, so every parameter is differentiable.

    Example::

        >>> R, T = look_at_view_transform(dist=2.7, elev=10.0, azim=torch.tensor([0.0, 90.0]))
        >>> cams = FoVPerspectiveCameras(fov=60.0, R=R, T=T)          # 2 cameras
        >>> cams.transform_points_screen(torch.zeros(1, 1, 3), (64, 96))[:, 0, :2]   # origin: image centre
        tensor([[48., 32.],
                [48., 32.]])
    """

    _BATCHED = ("znear", "zfar", "aspect_ratio", "fov")

    def __init__(self, znear=1.0, zfar=100.0, aspect_ratio=1.0, fov=60.0, degrees: bool = True, R=None, T=None, device=None):
        if not isinstance(degrees, bool):
            raise TypeError(f"degrees: expected a bool, got {type(degrees).__name__}")
        self._init_batch(
            device,
            {"znear": (znear, ()), "zfar": (zfar, ()), "aspect_ratio": (aspect_ratio, ()), "fov": (fov, ())},
            R,
            T,
        )
        self.degrees = degrees
        _check_positive(self.znear, "znear")
        _check_depth_range(self.znear, self.zfar)
        _check_positive(self.aspect_ratio, "aspect_ratio")
        limit = 180.0 if degrees else math.pi
        if bool(((self.fov <= 0) | (self.fov >= limit)).any()):
            unit = "degrees" if degrees else "radians"
            raise ValueError(f"fov: expected values in (0, {limit:g}) {unit}, got {self.fov.detach().tolist()}")

    def is_perspective(self) -> bool:
        return True

    def compute_projection_matrix(self, znear, zfar, fov, aspect_ratio, degrees: bool) -> torch.Tensor:
        """(N, 4, 4) projection matrix for **column** vectors from (N,) tensors, as PyTorch3D's
        method of the same name (``get_projection_transform`` uses its transpose)."""
        fov = fov * (math.pi / 180.0) if degrees else fov
        t = torch.tan(fov / 2)
        n, f = znear, zfar
        zero, one = torch.zeros_like(n), torch.ones_like(n)
        return _column_matrix(
            (
                1 / (t * aspect_ratio), zero, zero, zero,
                zero, 1 / t, zero, zero,
                zero, zero, f / (f - n), -f * n / (f - n),
                zero, zero, one, zero,
            )
        )

    def get_projection_transform(self) -> Transform3d:
        """View -> NDC (the OpenGL-style matrix, transposed for row vectors)."""
        k = self.compute_projection_matrix(self.znear, self.zfar, self.fov, self.aspect_ratio, self.degrees)
        return Transform3d._make(k.transpose(1, 2))


class FoVOrthographicCameras(CamerasBase):
    """Orthographic cameras given by a view box, as PyTorch3D's.

    ``x_ndc = 2 * scale_x * x / (max_x - min_x) - (max_x + min_x) / (max_x - min_x)`` (y likewise),
    ``z_ndc = scale_z * z / (zfar - znear) - znear / (zfar - znear)``.

    Args:
        znear, zfar: (N,) depth range, ``znear < zfar``.
        max_y, min_y, max_x, min_x: (N,) view-box bounds in view units, ``max > min``.
        scale_xyz: (N, 3) non-zero scale factors.
        R, T, device: as :class:`FoVPerspectiveCameras`.
    """

    _BATCHED = ("znear", "zfar", "max_y", "min_y", "max_x", "min_x", "scale_xyz")

    def __init__(
        self, znear=1.0, zfar=100.0, max_y=1.0, min_y=-1.0, max_x=1.0, min_x=-1.0, scale_xyz=((1.0, 1.0, 1.0),),
        R=None, T=None, device=None,
    ):
        self._init_batch(
            device,
            {
                "znear": (znear, ()), "zfar": (zfar, ()), "max_y": (max_y, ()), "min_y": (min_y, ()),
                "max_x": (max_x, ()), "min_x": (min_x, ()), "scale_xyz": (scale_xyz, (3,)),
            },
            R,
            T,
        )
        _check_depth_range(self.znear, self.zfar)
        if bool((self.max_x <= self.min_x).any()):
            raise ValueError(f"max_x: expected max_x > min_x, got {self.max_x.detach().tolist()} and {self.min_x.detach().tolist()}")
        if bool((self.max_y <= self.min_y).any()):
            raise ValueError(f"max_y: expected max_y > min_y, got {self.max_y.detach().tolist()} and {self.min_y.detach().tolist()}")
        if bool((self.scale_xyz == 0).any()):
            raise ValueError("scale_xyz: expected non-zero scale factors, got a zero")

    def is_perspective(self) -> bool:
        return False

    def compute_projection_matrix(self, znear, zfar, max_x, min_x, max_y, min_y, scale_xyz) -> torch.Tensor:
        """(N, 4, 4) projection matrix for **column** vectors from (N,) tensors and (N, 3)
        ``scale_xyz``, as PyTorch3D's method of the same name."""
        n, f = znear, zfar
        sx, sy, sz = scale_xyz.unbind(1)
        wx, wy = max_x - min_x, max_y - min_y
        zero, one = torch.zeros_like(n), torch.ones_like(n)
        return _column_matrix(
            (
                2 * sx / wx, zero, zero, -(max_x + min_x) / wx,
                zero, 2 * sy / wy, zero, -(max_y + min_y) / wy,
                zero, zero, sz / (f - n), -n / (f - n),
                zero, zero, zero, one,
            )
        )

    def get_projection_transform(self) -> Transform3d:
        """View -> NDC (affine)."""
        k = self.compute_projection_matrix(
            self.znear, self.zfar, self.max_x, self.min_x, self.max_y, self.min_y, self.scale_xyz
        )
        return Transform3d._make(k.transpose(1, 2))
