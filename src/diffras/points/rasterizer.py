"""``PointsRasterizer``: ``Pointclouds`` in world space + camera -> :class:`PointFragments` (PyTorch3D's module).

Projection, as PyTorch3D's ``PointsRasterizer.transform``: every point goes to ``(x_ndc, y_ndc, z_view)``,
x and y in PyTorch3D's non-square NDC, z the view-space depth (kept, not the projected z). The
perspective divisor is clamped to 1e-8 in magnitude (``diffras.raster.project_points_padded``), so a
point exactly on the camera plane lands far outside the image instead of at NaN (PyTorch3D divides
without a clamp). The rest is :func:`rasterize_points` on the projected clouds.
"""
from __future__ import annotations

from dataclasses import fields, replace
from typing import Any, Optional

import torch
from torch import nn

from ..cameras.base import pop_call_extrinsics
from .._validation import _describe
from ..raster.mesh_rasterizer import project_points_padded
from .rasterize import PointFragments, _check_pointclouds, rasterize_points
from .settings import PointsRasterizationSettings

__all__ = ["PointsRasterizer"]

_SETTING_NAMES = tuple(f.name for f in fields(PointsRasterizationSettings))


class PointsRasterizer(nn.Module):
    """The rasterization module of a points renderer (PyTorch3D's ``PointsRasterizer``); no logic of its own.

    Args:
        cameras: default camera (may be given per call instead); a batch of 1 (shared) or N.
        raster_settings: default :class:`PointsRasterizationSettings` (PyTorch3D's defaults if None).

    ``forward(point_clouds, **kwargs)`` returns :class:`PointFragments` (N, H, W, K) whose ``idx`` index
    ``point_clouds.points_packed()``. ``kwargs`` may hold ``cameras=``, ``raster_settings=`` and any
    :class:`PointsRasterizationSettings` field (e.g. ``radius=0.02``) to override for this call only.
    """

    def __init__(self, cameras: Any = None, raster_settings: Optional[PointsRasterizationSettings] = None) -> None:
        super().__init__()
        if raster_settings is None:
            raster_settings = PointsRasterizationSettings()
        if not isinstance(raster_settings, PointsRasterizationSettings):
            raise TypeError(f"raster_settings: expected a PointsRasterizationSettings, got {_describe(raster_settings)}")
        self.cameras = cameras
        self.raster_settings = raster_settings

    def _call_args(self, kwargs: dict):
        cameras = kwargs.pop("cameras", None)
        cameras = self.cameras if cameras is None else cameras
        settings = kwargs.pop("raster_settings", None)
        settings = self.raster_settings if settings is None else settings
        if cameras is None:
            raise ValueError("cameras: expected a camera at construction or as forward(..., cameras=...), got None")
        if not isinstance(settings, PointsRasterizationSettings):
            raise TypeError(f"raster_settings: expected a PointsRasterizationSettings, got {_describe(settings)}")
        cameras = pop_call_extrinsics(cameras, kwargs)  # PyTorch3D's rasterizer(points, R=R, T=T)
        unknown = sorted(set(kwargs) - set(_SETTING_NAMES))
        if unknown:
            raise TypeError(f"forward: unexpected keyword arguments {unknown}")
        if kwargs:
            settings = replace(settings, **kwargs)
        return cameras, settings

    def transform(self, point_clouds: Any, **kwargs) -> Any:
        """The clouds with every point replaced by ``(x_ndc, y_ndc, z_view)`` (normals and features kept);
        differentiable with respect to the points and every camera parameter."""
        cameras, settings = self._call_args(dict(kwargs))
        _check_pointclouds(point_clouds, "point_clouds")
        for attr in ("get_full_projection_transform", "get_world_to_view_transform", "in_ndc"):
            if not hasattr(cameras, attr):
                raise TypeError(f"cameras: expected a diffras camera, got {_describe(cameras)}")
        n, nc = len(point_clouds), len(cameras)
        if nc != 1 and nc != n:
            raise ValueError(f"cameras: expected a batch of 1 or N={n} cameras (one per cloud), got {nc}")
        if torch.device(point_clouds.device) != torch.device(cameras.device):
            raise ValueError(f"cameras: expected device {point_clouds.device} (the device of point_clouds), "
                             f"got {cameras.device}")
        proj = project_points_padded(point_clouds.points_padded(), cameras, settings.image_size)
        return point_clouds.update_padded(proj)

    def forward(self, point_clouds: Any, **kwargs) -> PointFragments:
        _, settings = self._call_args(dict(kwargs))
        projected = self.transform(point_clouds, **kwargs)
        return rasterize_points(projected, image_size=settings.image_size, radius=settings.radius,
                                points_per_pixel=settings.points_per_pixel, bin_size=settings.bin_size,
                                max_points_per_bin=settings.max_points_per_bin, backend=settings.backend)

    def to(self, *args, **kwargs) -> "PointsRasterizer":
        # Cameras are not nn.Modules; move them as PyTorch3D does.
        device = torch._C._nn._parse_to(*args, **kwargs)[0]
        if device is not None and self.cameras is not None:
            self.cameras = self.cameras.to(device)
        return super().to(*args, **kwargs)
