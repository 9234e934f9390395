"""Blending the K points of each pixel into features (PyTorch3D's ``compositing`` functions and compositors).

Layouts are PyTorch3D's, channels first: ``pointsidx`` (N, K, H, W) int, packed point indices, nearest
first, -1 (any negative) for an empty slot; ``alphas`` (N, K, H, W) float weights; ``features`` (C, P)
float, packed per-point features. Output (N, C, H, W). Empty slots are skipped: they neither add nor
attenuate. Plain torch on the filled slots only (the work grows with the fragments found, not with
N * K * H * W * C), differentiable with respect to ``alphas`` and ``features``; the same code serves
every device.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence, Union

import torch
from torch import nn

from .._validation import as_tensor, check_same_device, check_tensor

__all__ = ["AlphaCompositor", "NormWeightedCompositor", "alpha_composite", "norm_weighted_sum", "weighted_sum"]

# PyTorch3D's floor of the weight sum in norm_weighted_sum (its kEps).
NORM_EPS = 1e-4

ColorLike = Optional[Union[float, Sequence[float], torch.Tensor]]


def _check(pointsidx: torch.Tensor, alphas: torch.Tensor, features: torch.Tensor) -> None:
    sizes: dict = {}
    check_tensor(pointsidx, "pointsidx", shape=("N", "K", "H", "W"), dtype="int", sizes=sizes)
    check_tensor(alphas, "alphas", shape=("N", "K", "H", "W"), dtype="float", sizes=sizes)
    check_tensor(features, "features", shape=(None, "P"), dtype="float", sizes=sizes)
    check_same_device(pointsidx=pointsidx, alphas=alphas, features=features)
    # Any negative index is an empty slot; only indices past the last point are errors (one reduction).
    if pointsidx.numel() and int(pointsidx.max()) >= features.shape[1]:
        raise ValueError(f"pointsidx: expected indices in [0, {features.shape[1]}) (the points of features) or "
                         f"negative for empty slots, got max {int(pointsidx.max())}")


def _accumulate(pointsidx: torch.Tensor, weights: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W): ``sum_k weights[n, k, y, x] * features[:, pointsidx[n, k, y, x]]`` over filled slots."""
    N, K, H, W = pointsidx.shape
    C = features.shape[0]
    dtype = torch.promote_types(weights.dtype, features.dtype)
    flat = (pointsidx.reshape(-1) >= 0).nonzero().squeeze(1)
    # Slot (n, k, y, x) -> pixel n * H * W + y * W + x.
    hw = H * W
    pix = torch.div(flat, K * hw, rounding_mode="floor") * hw + flat % hw
    contrib = features.t().to(dtype).index_select(0, pointsidx.reshape(-1)[flat]) * weights.reshape(-1)[flat, None]
    out = contrib.new_zeros((N * hw, C)).index_add(0, pix, contrib.to(dtype))
    return out.view(N, H, W, C).permute(0, 3, 1, 2)


def alpha_composite(pointsidx: torch.Tensor, alphas: torch.Tensor, pt_clds: torch.Tensor) -> torch.Tensor:
    """Front-to-back alpha compositing (PyTorch3D's ``alpha_composite``).

    ``out[n, :, y, x] = sum_k alphas_k * prod_{l < k} (1 - alphas_l) * features[:, pointsidx_k]`` over the
    filled slots k (empty slots skipped in both the sum and the product).

    Args:
        pointsidx: (N, K, H, W) int; alphas: (N, K, H, W) float in [0, 1]; pt_clds: (C, P) features.
    Returns:
        (N, C, H, W).
    """
    _check(pointsidx, alphas, pt_clds)
    a = torch.where(pointsidx >= 0, alphas, torch.zeros((), dtype=alphas.dtype, device=alphas.device))
    # Transmittance in front of slot k: the exclusive cumulative product (torch's cumprod backward
    # handles alphas of exactly 1).
    trans = torch.cumprod(torch.cat([torch.ones_like(a[:, :1]), 1.0 - a[:, :-1]], 1), 1)
    return _accumulate(pointsidx, a * trans, pt_clds)


def norm_weighted_sum(pointsidx: torch.Tensor, alphas: torch.Tensor, pt_clds: torch.Tensor) -> torch.Tensor:
    """Weighted average ignoring depth order (PyTorch3D's ``norm_weighted_sum``):
    ``out = sum_k alphas_k features_k / max(sum_k alphas_k, 1e-4)`` over the filled slots. Shapes as
    :func:`alpha_composite`."""
    _check(pointsidx, alphas, pt_clds)
    a = torch.where(pointsidx >= 0, alphas, torch.zeros((), dtype=alphas.dtype, device=alphas.device))
    total = a.sum(1, keepdim=True).clamp(min=NORM_EPS)
    return _accumulate(pointsidx, a / total, pt_clds)


def weighted_sum(pointsidx: torch.Tensor, alphas: torch.Tensor, pt_clds: torch.Tensor) -> torch.Tensor:
    """Unnormalised weighted sum (PyTorch3D's ``weighted_sum``): ``out = sum_k alphas_k features_k`` over
    the filled slots. Shapes as :func:`alpha_composite`."""
    _check(pointsidx, alphas, pt_clds)
    return _accumulate(pointsidx, alphas, pt_clds)


def add_background_color(pointsidx: torch.Tensor, images: torch.Tensor, background_color: ColorLike) -> torch.Tensor:
    """``images`` (N, C, H, W) with the pixels whose first slot is empty (``pointsidx[:, 0] < 0``) set to
    ``background_color`` (a number, or C values, or C - 1 values to which an alpha of 1 is appended),
    as PyTorch3D's compositors do. Differentiable with respect to ``images`` elsewhere."""
    color = as_tensor(background_color, "background_color", dtype=images.dtype, device=images.device)
    check_tensor(color, "background_color", finite=True)
    C = images.shape[1]
    if color.dim() == 0:
        color = color.expand(C)
    if color.dim() != 1:
        raise ValueError(f"background_color: expected a number or a 1-D sequence, got shape {tuple(color.shape)}")
    if color.shape[0] + 1 == C:
        color = torch.cat([color, color.new_ones(1)])
    if color.shape[0] != C:
        raise ValueError(f"background_color: expected {C} or {C - 1} values (the feature channels), got {color.shape[0]}")
    empty = (pointsidx[:, 0] < 0).unsqueeze(1)
    return torch.where(empty, color.view(1, C, 1, 1), images)


class _Compositor(nn.Module):
    _blend = None

    def __init__(self, background_color: ColorLike = None) -> None:
        super().__init__()
        self.background_color = background_color

    def forward(self, fragments: torch.Tensor, alphas: torch.Tensor, ptclds: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        unknown = sorted(set(kwargs) - {"background_color"})
        if unknown:
            raise TypeError(f"forward: unexpected keyword arguments {unknown}")
        background_color = kwargs.get("background_color", self.background_color)
        images = type(self)._blend(fragments, alphas, ptclds)
        if background_color is not None:
            images = add_background_color(fragments, images, background_color)
        return images


class AlphaCompositor(_Compositor):
    """Front-to-back alpha compositing of the K points of each pixel (PyTorch3D's ``AlphaCompositor``).

    Args:
        background_color: None, or a colour for the pixels no point covers (see ``add_background_color``);
            may be overridden per call with ``background_color=``.

    ``forward(fragments, alphas, ptclds)``: ``fragments`` (N, K, H, W) int point indices, ``alphas``
    (N, K, H, W), ``ptclds`` (C, P) packed features -> (N, C, H, W) (:func:`alpha_composite`).
    """

    _blend = staticmethod(alpha_composite)


class NormWeightedCompositor(_Compositor):
    """Normalised weighted sum of the K points of each pixel (PyTorch3D's ``NormWeightedCompositor``);
    arguments as :class:`AlphaCompositor`, blending as :func:`norm_weighted_sum`."""

    _blend = staticmethod(norm_weighted_sum)
