"""``PointsRasterizationSettings``: every knob of the point rasterizer, with PyTorch3D's names and defaults."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple, Union

import torch

from .._validation import check_choice, check_float, check_image_size, check_int, check_tensor
from .visibility import BACKENDS

__all__ = ["PointsRasterizationSettings"]


@dataclass(frozen=True)
class PointsRasterizationSettings:
    """Settings of :class:`diffras.points.PointsRasterizer` (PyTorch3D's ``PointsRasterizationSettings``).

    Args:
        image_size: an int (square image) or ``(H, W)``; stored as the ``(H, W)`` tuple. Each side in
            ``[1, 16384]``. NDC spans [-1, 1] on the shorter side (docs/conventions.md).
        radius: disk radius of every point in NDC units (>= 0), or a per-point tensor / list of shape
            ``(N, max P_i)`` (PyTorch3D's form) or ``(sum P,)`` (packed). Not differentiable.
        points_per_pixel: K in ``[1, 1024]``, points kept per pixel, nearest first.
        bin_size: tile side in pixels of the numba backend; ``None`` chooses, ``0`` asks for no binning.
            Never changes the result, only the speed.
        max_points_per_bin: accepted for PyTorch3D compatibility; never makes a backend drop points
            (bins grow when needed), so it has no effect.
        backend: visibility backend, one of ``"auto"``, ``"numba"``, ``"torch"``, ``"reference"``.
    """

    image_size: Union[int, Tuple[int, int]] = 256
    radius: Union[float, torch.Tensor] = 0.01
    points_per_pixel: int = 8
    bin_size: Optional[int] = None
    max_points_per_bin: Optional[int] = None
    backend: str = "auto"

    def __post_init__(self) -> None:
        # frozen dataclass: normalise through object.__setattr__ so the stored values are canonical.
        put = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        put("image_size", check_image_size(self.image_size, "image_size"))
        if isinstance(self.radius, (list, tuple)):
            put("radius", torch.as_tensor(self.radius, dtype=torch.get_default_dtype()))
        if isinstance(self.radius, torch.Tensor):
            check_tensor(self.radius, "radius", dtype="float", finite=True)
            if self.radius.numel() and bool((self.radius < 0).any()):
                raise ValueError(f"radius: expected values >= 0, got min {float(self.radius.min())}")
        else:
            put("radius", check_float(self.radius, "radius", min=0.0))
        put("points_per_pixel", check_int(self.points_per_pixel, "points_per_pixel", min=1, max=1024))
        if self.bin_size is not None:
            put("bin_size", check_int(self.bin_size, "bin_size", min=0, max=4096))
        if self.max_points_per_bin is not None:
            put("max_points_per_bin", check_int(self.max_points_per_bin, "max_points_per_bin", min=1))
        if not isinstance(self.backend, str):
            raise TypeError(f"backend: expected a str, got {type(self.backend).__name__} {self.backend!r}")
        check_choice(self.backend, "backend", BACKENDS)
