"""Packed blending entry point of the shaders: ``blend_packed`` (private).

The shaders shade only the P filled fragments and hand their (P, C) colours here. This shim has the
signature of the fused packed blend (issue 9, ``shading.blending.blend_packed``) and, for now, scatters to
dense (N, H, W, K, *) tensors and calls the dense blend functions: it is the ONE place of the shading path
that densifies, and is replaced by the fused packed blend when that lands.
"""
from __future__ import annotations

from typing import Any, Optional

import torch

from .._validation import check_choice
from ..raster.fragments import Fragments, scatter_packed
from .blending import BlendParams, hard_rgb_blend, sigmoid_alpha_blend, softmax_rgb_blend

__all__: list = []


def blend_packed(rule: str, colors: torch.Tensor, slots: torch.Tensor, zbuf: Optional[torch.Tensor],
                 dists: Optional[torch.Tensor], shape, blend_params: Optional[BlendParams] = None,
                 znear: Any = None, zfar: Any = None) -> torch.Tensor:
    """Blend P packed fragments into (N, H, W, C + 1) images.

    Args:
        rule: ``"hard"``, ``"softmax"`` or ``"sigmoid"`` (``hard_rgb_blend``, ``softmax_rgb_blend``,
            ``sigmoid_alpha_blend`` semantics).
        colors: (P, C); slots: (P,) int64 strictly increasing flat indices into ``shape`` = (N, H, W, K);
        zbuf, dists: (P,) (may be None where the rule does not read them).
        blend_params, znear, zfar: as the dense functions.
    """
    check_choice(rule, "rule", ["hard", "softmax", "sigmoid"])
    shape = tuple(int(s) for s in shape)
    p2f = torch.full(shape, -1, dtype=torch.int64, device=colors.device)
    p2f.view(-1)[slots] = 0
    fill = colors.new_zeros(())
    zb = scatter_packed(zbuf, slots, shape, -1.0) if zbuf is not None else fill.expand(shape)
    ds = scatter_packed(dists, slots, shape, -1.0) if dists is not None else fill.expand(shape)
    frags = Fragments(p2f, zb, fill.expand(shape + (3,)), ds)
    dense = scatter_packed(colors, slots, shape, 0.0)
    if rule == "hard":
        return hard_rgb_blend(dense, frags, blend_params)
    if rule == "sigmoid":
        return sigmoid_alpha_blend(dense, frags, blend_params)
    return softmax_rgb_blend(dense, frags, blend_params, znear=znear, zfar=zfar)
