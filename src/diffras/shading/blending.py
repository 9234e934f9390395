"""Blending: turn the K shaded fragments of each pixel into one RGBA pixel.

Three rules, PyTorch3D's exactly:

- :func:`hard_rgb_blend`: the nearest fragment's colour; alpha 1 where a face covers the pixel, else the
  background colour with alpha 0. Not differentiable w.r.t. geometry.
- :func:`softmax_rgb_blend`: SoftRas's aggregation (Liu et al., ICCV 2019): each fragment's coverage
  probability ``sigmoid(-dist / sigma)`` and a depth weight ``exp(z_inv / gamma)`` blend the colours and the
  background; alpha = ``1 - prod_k (1 - prob_k)``. Differentiable w.r.t. colours, dists and zbuf.
- :func:`sigmoid_alpha_blend`: silhouettes: nearest colour, alpha = ``1 - prod_k (1 - prob_k)``.

Shapes (docs/conventions.md): ``colors`` (N, H, W, K, C), fragments (N, H, W, K); outputs (N, H, W, C + 1),
i.e. RGBA for C = 3.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional, Sequence, Union

import torch

from .._validation import check_float, check_tensor
from ..raster.fragments import Fragments

__all__ = ["BlendParams", "hard_rgb_blend", "sigmoid_alpha_blend", "softmax_rgb_blend"]

_EPS = 1e-10  # PyTorch3D's epsilon in softmax_rgb_blend


@dataclass(frozen=True)
class BlendParams:
    """Parameters of the blending functions (defaults PyTorch3D's).

    Args:
        sigma: > 0, width of the sigmoid turning the signed squared NDC distance into coverage
            probability; larger gives blurrier edges. For SoftRas-consistent results rasterize with
            ``blur_radius = log(1 / 1e-4 - 1) * sigma``.
        gamma: > 0, temperature of the depth weighting; larger makes far faces show through more.
        background_color: a C-sequence or a (C,) tensor (may require grad); C = 3 for RGB, or 1 (broadcast).
        znear, zfar: the depth range mapped to [1, 0] in the softmax depth weights (and the "empty" depth of
            the depth shaders), used when neither the call nor the cameras give one. ``znear < zfar``.
    """

    sigma: float = 1e-4
    gamma: float = 1e-4
    background_color: Union[Sequence[float], torch.Tensor] = (1.0, 1.0, 1.0)
    znear: float = 1.0
    zfar: float = 100.0

    def __post_init__(self) -> None:
        check_float(self.sigma, "sigma", min=0.0, min_exclusive=True)
        check_float(self.gamma, "gamma", min=0.0, min_exclusive=True)
        znear = check_float(self.znear, "znear")
        zfar = check_float(self.zfar, "zfar")
        if not znear < zfar:
            raise ValueError(f"znear, zfar: expected znear < zfar, got {znear} and {zfar}")
        bg = self.background_color
        if isinstance(bg, torch.Tensor):
            check_tensor(bg, "background_color", ndim=1, dtype="float", finite=True)
        else:
            try:
                vals = [float(v) for v in bg]
            except (TypeError, ValueError) as e:
                raise TypeError(f"background_color: expected a sequence of numbers or a tensor, got {bg!r}") from e
            if not vals or not all(math.isfinite(v) for v in vals):
                raise ValueError(f"background_color: expected a non-empty sequence of finite numbers, got {bg!r}")


def _check_inputs(colors: torch.Tensor, fragments: Fragments, blend_params: Any, *, needs: Sequence[str]) -> None:
    if not isinstance(fragments, Fragments):
        raise TypeError(f"fragments: expected a Fragments, got {type(fragments).__name__}")
    if not isinstance(blend_params, BlendParams):
        raise TypeError(f"blend_params: expected a BlendParams, got {type(blend_params).__name__}")
    sizes: dict = {}
    check_tensor(fragments.pix_to_face, "fragments.pix_to_face", shape=("N", "H", "W", "K"), dtype="int", sizes=sizes)
    check_tensor(colors, "colors", shape=("N", "H", "W", "K", None), dtype="float", sizes=sizes)
    for name in needs:
        check_tensor(getattr(fragments, name), f"fragments.{name}", shape=("N", "H", "W", "K"), dtype="float",
                     sizes=sizes)


def _background(blend_params: BlendParams, colors: torch.Tensor) -> torch.Tensor:
    """(C,) background on the colours' device and dtype."""
    bg = blend_params.background_color
    bg = bg.to(device=colors.device, dtype=colors.dtype) if isinstance(bg, torch.Tensor) else \
        torch.tensor([float(v) for v in bg], device=colors.device, dtype=colors.dtype)
    C = colors.shape[-1]
    if bg.shape[0] == 1:
        return bg.expand(C)
    if bg.shape[0] != C:
        raise ValueError(f"background_color: expected {C} values (the channels of colors) or 1, got {bg.shape[0]}")
    return bg


def _coverage(fragments: Fragments, sigma: float, dtype: torch.dtype) -> torch.Tensor:
    """(N, H, W, K) probability that each fragment covers its pixel; 0 in empty slots."""
    mask = fragments.pix_to_face >= 0
    return torch.where(mask, torch.sigmoid(-fragments.dists.to(dtype) / sigma), 0.0)


def hard_rgb_blend(colors: torch.Tensor, fragments: Fragments, blend_params: Optional[BlendParams] = None) -> torch.Tensor:
    """Nearest-fragment colour, background where no face covers the pixel.

    Args:
        colors: (N, H, W, K, C) shaded colour of every fragment.
        fragments: uses ``pix_to_face`` (N, H, W, K).
        blend_params: uses ``background_color``; default ``BlendParams()``.

    Returns:
        (N, H, W, C + 1): ``out[..., :C] = colors[..., 0, :]`` where ``pix_to_face[..., 0] >= 0`` else the
        background; ``out[..., C]`` (alpha) is 1 there and 0 on the background.
    """
    blend_params = BlendParams() if blend_params is None else blend_params
    _check_inputs(colors, fragments, blend_params, needs=())
    covered = (fragments.pix_to_face[..., 0] >= 0)[..., None]
    rgb = torch.where(covered, colors[..., 0, :], _background(blend_params, colors))
    return torch.cat([rgb, covered.to(colors.dtype)], dim=-1)


def sigmoid_alpha_blend(colors: torch.Tensor, fragments: Fragments,
                        blend_params: Optional[BlendParams] = None) -> torch.Tensor:
    """Silhouette blending: nearest colour, soft alpha from the 2D distances (SoftRas).

    Args:
        colors: (N, H, W, K, C).
        fragments: uses ``pix_to_face`` and ``dists`` (N, H, W, K).
        blend_params: uses ``sigma``.

    Returns:
        (N, H, W, C + 1): ``out[..., :C] = colors[..., 0, :]`` (no background substitution, as PyTorch3D);
        alpha ``= 1 - prod_k (1 - sigmoid(-dists_k / sigma))`` over the filled slots (0 where none).
        Differentiable w.r.t. ``dists`` and ``colors``.
    """
    blend_params = BlendParams() if blend_params is None else blend_params
    _check_inputs(colors, fragments, blend_params, needs=("dists",))
    prob = _coverage(fragments, blend_params.sigma, colors.dtype)
    alpha = 1.0 - torch.prod(1.0 - prob, dim=-1)
    return torch.cat([colors[..., 0, :], alpha[..., None]], dim=-1)


def softmax_rgb_blend(
    colors: torch.Tensor,
    fragments: Fragments,
    blend_params: Optional[BlendParams] = None,
    znear: Union[float, torch.Tensor, None] = None,
    zfar: Union[float, torch.Tensor, None] = None,
) -> torch.Tensor:
    """SoftRas's soft aggregation of the K fragments, exactly as PyTorch3D's ``softmax_rgb_blend``.

    With ``mask = pix_to_face >= 0``, ``eps = 1e-10``:

    - ``prob_k = sigmoid(-dists_k / sigma) * mask_k``
    - ``z_inv_k = (zfar - zbuf_k) / (zfar - znear) * mask_k``, ``z_max = max(max_k z_inv_k, eps)``
    - ``w_k = prob_k * exp((z_inv_k - z_max) / gamma)``, background weight
      ``delta = max(exp((eps - z_max) / gamma), eps)``
    - ``rgb = (sum_k w_k colors_k + delta * background) / (sum_k w_k + delta)``
    - ``alpha = 1 - prod_k (1 - prob_k)``

    Args:
        colors: (N, H, W, K, C).
        fragments: uses ``pix_to_face``, ``dists``, ``zbuf`` (N, H, W, K).
        blend_params: ``sigma``, ``gamma``, ``background_color`` (and ``znear``/``zfar`` as defaults).
        znear, zfar: numbers or (N,) tensors (per image, e.g. a camera batch's planes); default
            ``blend_params.znear`` / ``blend_params.zfar`` (1 and 100, PyTorch3D's defaults).

    Returns:
        (N, H, W, C + 1), differentiable w.r.t. colours, ``dists``, ``zbuf``, the background and the planes.
    """
    blend_params = BlendParams() if blend_params is None else blend_params
    _check_inputs(colors, fragments, blend_params, needs=("dists", "zbuf"))
    N = colors.shape[0]
    znear = _plane(blend_params.znear if znear is None else znear, "znear", N, colors)
    zfar = _plane(blend_params.zfar if zfar is None else zfar, "zfar", N, colors)
    mask = fragments.pix_to_face >= 0
    prob = _coverage(fragments, blend_params.sigma, colors.dtype)
    alpha = torch.prod(1.0 - prob, dim=-1)

    z_inv = torch.where(mask, (zfar - fragments.zbuf.to(colors.dtype)) / (zfar - znear), 0.0)
    # Subtracting the max keeps exp() from overflowing (the log-sum-exp trick); the same shift is applied to
    # the background weight so the ratios are unchanged.
    z_inv_max = torch.max(z_inv, dim=-1, keepdim=True).values.clamp(min=_EPS)
    weights = prob * torch.exp((z_inv - z_inv_max) / blend_params.gamma)
    delta = torch.exp((_EPS - z_inv_max) / blend_params.gamma).clamp(min=_EPS)
    denom = weights.sum(dim=-1, keepdim=True) + delta
    # einsum: the weighted sum over K without an (N, H, W, K, C) temporary (forward and backward).
    rgb = (torch.einsum("...k,...kc->...c", weights, colors) + delta * _background(blend_params, colors)) / denom
    return torch.cat([rgb, (1.0 - alpha)[..., None]], dim=-1)


def _plane(value: Any, name: str, N: int, like: torch.Tensor) -> Union[float, torch.Tensor]:
    if isinstance(value, torch.Tensor):
        check_tensor(value, name, dtype="float", finite=True)
        if value.dim() == 0 or value.numel() == 1:
            return value.reshape(()).to(device=like.device, dtype=like.dtype)
        if value.dim() != 1 or value.shape[0] != N:
            raise ValueError(f"{name}: expected a number or shape ({N},) (one per image), got {tuple(value.shape)}")
        return value.to(device=like.device, dtype=like.dtype)[:, None, None, None]
    return check_float(value, name)
