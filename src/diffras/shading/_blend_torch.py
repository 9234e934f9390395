"""Packed blending in plain torch: the reference for the fused CPU kernels and the path on other devices.

Works on the P filled fragments and the pixels (index_add_ / scatter_reduce over the flat pixel index),
never on a dense (N, H, W, K, C) tensor. Formulas: see ``blending`` (PyTorch3D's). Autograd gives the
gradients; the shift of the softmax depth weights follows one fragment per pixel (the first maximum, as
``torch.max`` picks it on the dense tensor), so both paths pass the same gradient to the same entry.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ._blend_numba import HARD, SIGMOID, _EPS


def blend_torch(rule: int, colors: torch.Tensor, pix: torch.Tensor, first: torch.Tensor, dists, zinv,
                bg: torch.Tensor, n_pixels: int, sigma: float, gamma: float) -> torch.Tensor:
    """(n_pixels, C + 1). ``pix`` (P,) flat pixel of each entry, ``first`` (P,) bool: the entry is its pixel's
    slot 0; ``bg`` (C,)."""
    P, C = colors.shape
    dtype, device = colors.dtype, colors.device
    pix0 = pix[first]
    covered = torch.zeros(n_pixels, dtype=torch.bool, device=device).index_fill_(0, pix0, True)
    if rule == HARD:
        rgb = bg.expand(n_pixels, C).index_put((pix0,), colors[first])
        return torch.cat([rgb, covered.to(dtype)[:, None]], dim=1)
    # 1 - prob = sigmoid(dists / sigma); the product over a pixel is the exp of a sum of logs.
    log_keep = torch.zeros(n_pixels, dtype=dtype, device=device).index_add(0, pix, F.logsigmoid(dists / sigma))
    alpha = -torch.expm1(log_keep)
    if rule == SIGMOID:
        rgb = colors.new_zeros((n_pixels, C)).index_put((pix0,), colors[first])
        return torch.cat([rgb, alpha[:, None]], dim=1)
    # rule == SOFTMAX (validated by blend_packed)
    prob = torch.sigmoid(-dists / sigma)
    with torch.no_grad():
        zmax = torch.full((n_pixels,), -torch.inf, dtype=dtype, device=device).scatter_reduce(
            0, pix, zinv, "amax", include_self=True)
        # The first entry of each pixel reaching its maximum (entries are in slot order).
        at_max = (zinv == zmax[pix]) & (zinv >= _EPS)
        pos = torch.arange(P, device=device)
        arg = torch.full((n_pixels,), P, dtype=torch.int64, device=device).scatter_reduce(
            0, pix[at_max], pos[at_max], "amin", include_self=True)
        has = arg < P
    shift = torch.full((n_pixels,), _EPS, dtype=dtype, device=device).index_put((has.nonzero()[:, 0],), zinv[arg[has]])
    weights = prob * torch.exp((zinv - shift[pix]) / gamma)
    delta = torch.exp((_EPS - shift) / gamma).clamp(min=_EPS)
    den = torch.zeros(n_pixels, dtype=dtype, device=device).index_add(0, pix, weights) + delta
    num = colors.new_zeros((n_pixels, C)).index_add(0, pix, weights[:, None] * colors) + delta[:, None] * bg
    return torch.cat([num / den[:, None], alpha[:, None]], dim=1)
