"""Rasterization: visibility (which faces each pixel sees) and differentiable fragments.

Functional tier: :func:`rasterize` (projected vertices in, :class:`Fragments` out),
:func:`rasterize_visibility` (integer ``pix_to_face`` only), :func:`compute_fragments`.
Module tier: :func:`rasterize_meshes` and :class:`MeshRasterizer` (``Meshes`` + camera), configured by
:class:`RasterSettings`. Conventions (NDC, pixel centres, Fragments meaning): docs/conventions.md.
"""
from .fragments import Fragments, compute_fragments
from .mesh_rasterizer import MeshRasterizer, rasterize_meshes
from .pixels import pixel_centers_ndc
from .functional import rasterize
from .settings import RasterSettings
from .visibility import rasterize_visibility

__all__ = [
    "Fragments",
    "MeshRasterizer",
    "RasterSettings",
    "compute_fragments",
    "pixel_centers_ndc",
    "rasterize",
    "rasterize_meshes",
    "rasterize_visibility",
]
