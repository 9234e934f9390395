"""Emission-absorption compositing along rays in plain torch (any device, autograd): the marcher's
implementation and the reference the fused CPU volume kernel is tested against."""
from __future__ import annotations

import torch

__all__ = ["emission_absorption_torch"]


def emission_absorption_torch(densities: torch.Tensor, features: torch.Tensor, shift: int, eps: float) -> torch.Tensor:
    """densities (..., P), features (..., P, C) -> (..., C + 1) features and opacity (see
    :class:`~diffras.implicit.EmissionAbsorptionRaymarcher`)."""
    trans = torch.cumprod((1.0 + eps) - densities, dim=-1)
    # absorption_k = trans_{k - shift}, 1 before that: shift the cumulative product along the ray.
    absorption = torch.cat((torch.ones_like(trans[..., :shift]), trans[..., : trans.shape[-1] - shift]), dim=-1)
    absorption = absorption[..., : densities.shape[-1]]
    weights = densities * absorption
    out = (weights[..., None] * features).sum(dim=-2)
    opacity = 1.0 - torch.prod(1.0 - densities, dim=-1, keepdim=True)
    return torch.cat((out, opacity), dim=-1)
