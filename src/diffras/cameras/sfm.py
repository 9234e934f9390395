"""Pinhole cameras defined by focal length and principal point ("SfM" cameras), as PyTorch3D's.

In NDC (``in_ndc=True``, the default) a view-space point (x, y, z) projects to
``x_ndc = fx * x / z + px``, ``y_ndc = fy * y / z + py`` (perspective; orthographic drops the ``/ z``),
with the projected depth ``1 / z`` (perspective) or ``z`` (orthographic).

In screen space (``in_ndc=False``) focal length and principal point are in pixels, the principal point
in image axes (x right, y down, origin at the top-left image corner, pixel centres at half-integers);
with the image size (given at construction or per call) ``transform_points_ndc`` gives
``x_ndc = (fx * x / z - px + W / 2) * 2 / S``, ``S = min(H, W)``, so the equivalent NDC camera has
``fx_ndc = 2 fx / S`` and ``px_ndc = -(px - W / 2) * 2 / S`` (PyTorch3D's docs/notes/cameras.md).
"""
from __future__ import annotations

import torch

from .._validation import _describe
from ..transforms import Transform3d
from .base import CamerasBase, parse_image_size
from .fov import _row_vector_transform

__all__ = ["OrthographicCameras", "PerspectiveCameras"]


def _focal_pairs(focal_length):
    """PyTorch3D's focal forms -> (N, 2) (fx, fy): a number, an (N,) or (N, 1) value means fx = fy.

    Numbers and sequences come back as nested lists so that, like every other plain-number
    parameter, they never decide the cameras' dtype.
    """
    if isinstance(focal_length, torch.Tensor):
        t = focal_length
    else:
        if isinstance(focal_length, (bool, str)):
            raise TypeError(f"focal_length: expected a number, sequence or tensor, got {_describe(focal_length)}")
        try:
            t = torch.as_tensor(focal_length, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError) as e:
            raise TypeError(f"focal_length: expected a number, sequence or tensor, got {_describe(focal_length)}") from e
    if t.dim() == 0:
        t = t.reshape(1, 1)
    elif t.dim() == 1:
        t = t[:, None]
    if t.dim() == 2 and t.shape[1] == 1:
        t = t.expand(t.shape[0], 2)
    return t if isinstance(focal_length, torch.Tensor) else t.tolist()


class _SfMCameras(CamerasBase):
    _BATCHED = ("focal_length", "principal_point")
    _orthographic = False

    def __init__(self, focal_length=1.0, principal_point=((0.0, 0.0),), R=None, T=None, device=None,
                 in_ndc: bool = True, image_size=None):
        if not isinstance(in_ndc, bool):
            raise TypeError(f"in_ndc: expected a bool, got {_describe(in_ndc)}")
        self._init_batch(
            device,
            {"focal_length": (_focal_pairs(focal_length), (2,)), "principal_point": (principal_point, (2,))},
            R,
            T,
        )
        self._in_ndc = in_ndc
        if bool((self.focal_length == 0).any()):
            raise ValueError("focal_length: expected non-zero focal lengths, got a zero")
        if image_size is None:
            # As PyTorch3D: screen-space cameras may get their image size later, per call.
            self.image_size = None
        else:
            size = parse_image_size(image_size, "image_size", self.device, self.dtype)
            if size.shape[0] not in (1, len(self)):
                raise ValueError(f"image_size: expected 1 or {len(self)} sizes (the batch of the cameras), got {size.shape[0]}")
            self.image_size = size.expand(len(self), 2)

    def is_perspective(self) -> bool:
        return not self._orthographic

    def get_znear(self):
        return None

    def get_projection_transform(self) -> Transform3d:
        """View -> NDC (or -> screen-space intrinsics' output for ``in_ndc=False``)."""
        fx, fy = self.focal_length.unbind(1)
        px, py = self.principal_point.unbind(1)
        zero, one = torch.zeros_like(fx), torch.ones_like(fx)
        if self._orthographic:
            rows = (fx, zero, zero, px, zero, fy, zero, py, zero, zero, one, zero, zero, zero, zero, one)
        else:
            # Column-vector K: (fx x + px z, fy y + py z, 1, z) -> divide by z.
            rows = (fx, zero, px, zero, zero, fy, py, zero, zero, zero, zero, one, zero, zero, one, zero)
        return _row_vector_transform(rows)

    def ndc_intrinsics(self, image_size=None):
        """(focal (N, 2), principal point (N, 2)) of the equivalent NDC camera."""
        if self.in_ndc():
            return self.focal_length, self.principal_point
        size = self._image_size_or_own(image_size).expand(len(self), 2)
        wh = size.flip(1)
        half_s = size.min(dim=1, keepdim=True).values / 2
        return self.focal_length / half_s, -(self.principal_point - wh / 2) / half_s


class PerspectiveCameras(_SfMCameras):
    """Perspective pinhole cameras, as PyTorch3D's ``PerspectiveCameras``.

    Args:
        focal_length: a number, (N,), (N, 1) or (N, 2) (fx, fy); stored as (N, 2). Non-zero.
        principal_point: (N, 2) (px, py).
        R: (N, 3, 3) world-to-view rotation (default identity); T: (N, 3) (default zeros).
        device: where to put the parameters (default: the device of the tensor arguments).
        in_ndc: True if focal length and principal point are in NDC units; False for pixels.
        image_size: (H, W), an int, or (N, 2); the default size for ``transform_points_screen``
            and, for ``in_ndc=False``, for ``transform_points_ndc`` (otherwise pass it per call).

    Module docstring: the projection formulas. Every parameter is differentiable.
    """

    _orthographic = False


class OrthographicCameras(_SfMCameras):
    """Orthographic cameras, as PyTorch3D's ``OrthographicCameras``: ``x_ndc = fx * x + px``,
    ``y_ndc = fy * y + py``, depth ``z``. Arguments as :class:`PerspectiveCameras`."""

    _orthographic = True
