"""``PointsRenderer``: rasterizer + compositor -> images (PyTorch3D's module), no logic of its own."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .._validation import _describe
from .rasterize import format_radius

__all__ = ["PointsRenderer"]

# Keyword arguments of forward() that go to the compositor; the others go to the rasterizer.
_COMPOSITOR_KWARGS = ("background_color",)


class PointsRenderer(nn.Module):
    """Render point clouds: ``images = compositor(idx, weights, features)`` (PyTorch3D's ``PointsRenderer``).

    Args:
        rasterizer: a :class:`PointsRasterizer`.
        compositor: an :class:`AlphaCompositor`, :class:`NormWeightedCompositor` or any module taking
            ``(idx (N, K, H, W) int64, weights (N, K, H, W), features (C, P))`` -> (N, C, H, W).

    ``forward(point_clouds, **kwargs)`` -> (N, H, W, C) images, channels last. Each fragment weighs
    ``1 - dists / r^2`` (SynSin's soft disk, as PyTorch3D), with ``r`` the radius of the settings used
    for the call; with a per-point radius, the radius of each fragment's own point (PyTorch3D's renderer
    only supports a single number there). ``point_clouds`` must have features (e.g. RGB colours).
    ``kwargs``: ``background_color=`` goes to the compositor, everything else (``cameras=``,
    ``raster_settings=``, settings fields) to the rasterizer. Differentiable with respect to the points,
    their features and the camera parameters.
    """

    def __init__(self, rasterizer: nn.Module, compositor: nn.Module) -> None:
        super().__init__()
        self.rasterizer = rasterizer
        self.compositor = compositor

    def forward(self, point_clouds: Any, **kwargs: Any) -> torch.Tensor:
        features = getattr(point_clouds, "features_packed", lambda: None)()
        if features is None:
            raise ValueError(f"point_clouds: expected Pointclouds with features (e.g. colours) to composite, "
                             f"got {_describe(point_clouds) if not hasattr(point_clouds, 'features_packed') else 'none'}")
        comp_kwargs = {k: kwargs.pop(k) for k in _COMPOSITOR_KWARGS if k in kwargs}
        fragments = self.rasterizer(point_clouds, **kwargs)
        settings = kwargs.get("raster_settings", None) or self.rasterizer.raster_settings
        radius = kwargs.get("radius", settings.radius)
        idx = fragments.idx.long().permute(0, 3, 1, 2)
        dists2 = fragments.dists.permute(0, 3, 1, 2)
        if isinstance(radius, torch.Tensor) and radius.dim() > 0 or isinstance(radius, (list, tuple)):
            r = format_radius(radius, point_clouds).to(dists2.dtype)[idx.clamp(min=0)]
        else:
            r = float(radius)
        weights = 1 - dists2 / (r * r)
        images = self.compositor(idx, weights, features.permute(1, 0), **comp_kwargs)
        return images.permute(0, 2, 3, 1)

    def to(self, *args, **kwargs) -> "PointsRenderer":
        # The rasterizer holds cameras, which are not nn.Modules: move them through its own to().
        self.rasterizer = self.rasterizer.to(*args, **kwargs)
        return super().to(*args, **kwargs)
