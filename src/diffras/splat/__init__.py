"""Gaussian splatting: gsplat's ``rasterization`` on the CPU (Numba) and any torch device, and a trainer.

- ``rasterization``: gsplat 1.5's API and CUDA-kernel semantics (docs/splatting.md).
- ``spherical_harmonics``: SH degrees 0-3 in the 3DGS basis.
"""
from .projection import project_gaussians, quat_scale_to_covar
from .rasterization import rasterization
from .sh import num_sh_bases, rgb_to_sh, sh_to_rgb, spherical_harmonics

__all__ = [
    "num_sh_bases",
    "project_gaussians",
    "quat_scale_to_covar",
    "rasterization",
    "rgb_to_sh",
    "sh_to_rgb",
    "spherical_harmonics",
]
