"""nvdiffrast's API on any torch device: ``import diffras.nv as dr`` runs code written for
``nvdiffrast.torch`` (rasterize, interpolate, texture, antialias, DepthPeeler, contexts).

Conventions are nvdiffrast's (OpenGL's), not the rest of diffras's: clip-space positions, images with
row 0 at the bottom, texture row 0 at t = 0. Details and the deliberate differences: docs/nvdiffrast.md.
"""
from .antialias import antialias, antialias_construct_topology_hash
from .context import RasterizeCPUContext, RasterizeCudaContext, RasterizeGLContext
from .interpolate import interpolate
from .rasterize import DepthPeeler, rasterize
from .texture import texture, texture_construct_mip

__all__ = [
    "DepthPeeler",
    "RasterizeCPUContext",
    "RasterizeCudaContext",
    "RasterizeGLContext",
    "antialias",
    "antialias_construct_topology_hash",
    "interpolate",
    "rasterize",
    "texture",
    "texture_construct_mip",
]


def get_log_level() -> int:
    """nvdiffrast compatibility: diffras has no internal log; always 1 (warnings)."""
    return 1


def set_log_level(level: int) -> None:
    """nvdiffrast compatibility: accepted and ignored."""
