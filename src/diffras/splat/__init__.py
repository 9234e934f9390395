"""Gaussian splatting: gsplat's ``rasterization`` on the CPU (Numba) and any torch device, and a trainer.

- ``rasterization``: gsplat 1.5's API and CUDA-kernel semantics (docs/splatting.md).
- ``DefaultStrategy``: densification, pruning and opacity reset with gsplat's API.
- ``load_ply`` / ``save_ply``: the standard 3DGS ``.ply``; ``read_colmap`` / ``write_colmap``: COLMAP models.
- ``train_splats`` / ``SplatConfig``: the training loop behind ``diffras splat``.
"""
from .colmap import read_colmap, write_colmap
from .datasets import SplatData, cow_views, load_views
from .ply import load_ply, render_args, save_ply
from .projection import project_gaussians, quat_scale_to_covar
from .rasterization import rasterization
from .sh import num_sh_bases, rgb_to_sh, sh_to_rgb, spherical_harmonics
from .strategy import DefaultStrategy
from .trainer import SplatConfig, SplatResult, ssim, train_splats

__all__ = [
    "DefaultStrategy",
    "SplatConfig",
    "SplatData",
    "SplatResult",
    "cow_views",
    "load_ply",
    "load_views",
    "num_sh_bases",
    "project_gaussians",
    "quat_scale_to_covar",
    "rasterization",
    "read_colmap",
    "render_args",
    "rgb_to_sh",
    "save_ply",
    "sh_to_rgb",
    "spherical_harmonics",
    "ssim",
    "train_splats",
    "write_colmap",
]
