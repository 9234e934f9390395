"""Point clouds rendering, as PyTorch3D: rasterize points to per-pixel K-nearest lists, then composite.

Functional tier: :func:`rasterize_points` (a ``Pointclouds`` in NDC -> :class:`PointFragments`),
:func:`points_visibility` (integer ``idx`` only), :func:`alpha_composite`, :func:`norm_weighted_sum`,
:func:`weighted_sum`. Module tier: :class:`PointsRasterizer` (world points + camera), configured by
:class:`PointsRasterizationSettings`, :class:`AlphaCompositor`, :class:`NormWeightedCompositor` and
:class:`PointsRenderer`. Conventions (NDC, pixel centres, the visibility rule): docs/points.md.
"""
from .compositing import AlphaCompositor, NormWeightedCompositor, alpha_composite, norm_weighted_sum, weighted_sum
from .rasterize import PointFragments, rasterize_points
from .rasterizer import PointsRasterizer
from .renderer import PointsRenderer
from .settings import PointsRasterizationSettings
from .visibility import points_visibility

__all__ = [
    "AlphaCompositor",
    "NormWeightedCompositor",
    "PointFragments",
    "PointsRasterizationSettings",
    "PointsRasterizer",
    "PointsRenderer",
    "alpha_composite",
    "norm_weighted_sum",
    "points_visibility",
    "rasterize_points",
    "weighted_sum",
]
