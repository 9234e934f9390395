"""Real spherical harmonics, degrees 0-3, in the basis and sign convention of 3DGS and gsplat.

``colors = SH(dir) + 0.5`` clamped at 0 is what ``rasterization`` does with ``sh_degree`` set; this module
evaluates ``SH(dir)`` only. Coefficient ``k`` multiplies basis function ``k`` in the order
``(l, m) = (0, 0), (1, -1), (1, 0), (1, 1), (2, -2), ..., (3, 3)``, which is the order of ``f_dc`` then
``f_rest`` in a 3DGS ``.ply`` file (see ``diffras.splat.ply``).
"""
from __future__ import annotations

import torch

from .._validation import check_int

__all__ = ["RGB2SH_C0", "num_sh_bases", "rgb_to_sh", "sh_to_rgb", "spherical_harmonics"]

RGB2SH_C0 = 0.28209479177387814  # Y_00 = 1 / (2 sqrt(pi))
_C1 = 0.4886025119029199
_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
_C3 = (-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154,
       -0.4570457994644658, 1.445305721320277, -0.5900435899266435)


def num_sh_bases(degree: int) -> int:
    """``(degree + 1) ** 2``: the coefficients a degree needs (1, 4, 9, 16)."""
    return (check_int(degree, "sh_degree", min=0, max=3) + 1) ** 2


def rgb_to_sh(rgb: torch.Tensor) -> torch.Tensor:
    """The DC coefficient whose colour (after the +0.5 offset) is ``rgb``."""
    return (rgb - 0.5) / RGB2SH_C0


def sh_to_rgb(sh: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_sh` for the DC coefficient."""
    return sh * RGB2SH_C0 + 0.5


def spherical_harmonics(degree: int, dirs: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
    """Evaluate SH of ``degree`` (0-3) along ``dirs``.

    Args:
        degree: the SH degree; the first ``(degree + 1) ** 2`` coefficients are used.
        dirs: ``(*, 3)`` view directions (any non-zero length; normalised here, with gradient).
        coeffs: ``(*, K, D)`` coefficients, ``K >= (degree + 1) ** 2``, broadcastable with ``dirs``.

    Returns:
        ``(*, D)``: ``sum_k coeffs[..., k, :] * Y_k(dirs / |dirs|)``.
    """
    n = num_sh_bases(degree)
    if coeffs.shape[-2] < n:
        raise ValueError(f"coeffs: expected at least {n} SH coefficients for degree {degree}, got {coeffs.shape[-2]}")
    out = RGB2SH_C0 * coeffs[..., 0, :]
    if degree == 0:
        return out
    d = dirs / dirs.norm(dim=-1, keepdim=True)
    x, y, z = (v[..., None] for v in d.unbind(-1))
    out = out - _C1 * y * coeffs[..., 1, :] + _C1 * z * coeffs[..., 2, :] - _C1 * x * coeffs[..., 3, :]
    if degree == 1:
        return out
    xx, yy, zz, xy, yz, xz = x * x, y * y, z * z, x * y, y * z, x * z
    out = (out + _C2[0] * xy * coeffs[..., 4, :] + _C2[1] * yz * coeffs[..., 5, :]
           + _C2[2] * (2 * zz - xx - yy) * coeffs[..., 6, :] + _C2[3] * xz * coeffs[..., 7, :]
           + _C2[4] * (xx - yy) * coeffs[..., 8, :])
    if degree == 2:
        return out
    return (out + _C3[0] * y * (3 * xx - yy) * coeffs[..., 9, :] + _C3[1] * xy * z * coeffs[..., 10, :]
            + _C3[2] * y * (4 * zz - xx - yy) * coeffs[..., 11, :] + _C3[3] * z * (2 * zz - 3 * xx - 3 * yy) * coeffs[..., 12, :]
            + _C3[4] * x * (4 * zz - xx - yy) * coeffs[..., 13, :] + _C3[5] * z * (xx - yy) * coeffs[..., 14, :]
            + _C3[6] * x * (xx - 3 * yy) * coeffs[..., 15, :])

