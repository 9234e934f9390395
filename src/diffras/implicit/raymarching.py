"""Ray marchers: composite the densities and features sampled along each ray, as PyTorch3D's.

Densities are per-sample opacities in [0, 1] (not NeRF's sigma * delta: the volumetric function or
the volume already folds the sample spacing in), so the marchers need no ray lengths.
"""
from __future__ import annotations

import warnings
from typing import Optional

import torch

from .._validation import _describe, check_float, check_int
from ._compositing import emission_absorption_torch

__all__ = ["AbsorptionOnlyRaymarcher", "EmissionAbsorptionRaymarcher"]


def _check_inputs(rays_densities, rays_features: Optional[torch.Tensor], need_features: bool) -> None:
    if not isinstance(rays_densities, torch.Tensor) or not rays_densities.is_floating_point():
        raise TypeError(f"rays_densities: expected a floating-point tensor of shape (..., P, 1), got {_describe(rays_densities)}")
    if rays_densities.dim() < 2 or rays_densities.shape[-1] != 1:
        raise ValueError(f"rays_densities: expected shape (..., P, 1), got {tuple(rays_densities.shape)}")
    if need_features:
        if not isinstance(rays_features, torch.Tensor) or not rays_features.is_floating_point():
            raise TypeError(f"rays_features: expected a floating-point tensor of shape (..., P, C), got {_describe(rays_features)}")
        if rays_features.shape[:-1] != rays_densities.shape[:-1]:
            raise ValueError(
                f"rays_features: expected shape {tuple(rays_densities.shape[:-1])} + (C,) to match rays_densities, "
                f"got {tuple(rays_features.shape)}"
            )
        if rays_features.device != rays_densities.device:
            raise ValueError(f"rays_features: expected device {rays_densities.device}, got {rays_features.device}")


def warn_out_of_range(rays_densities: torch.Tensor) -> None:
    """Warn (as PyTorch3D) if densities leave [0, 1]; raise on NaN."""
    # A warning rather than an error: densities slightly outside [0, 1] from a network are harmless,
    # but NaN is not and must not turn into a silently black image.
    with torch.no_grad():
        if rays_densities.numel() == 0:
            return
        lo, hi = torch.aminmax(rays_densities)
        if bool(torch.isnan(lo)) or bool(torch.isnan(hi)):
            raise ValueError("rays_densities: expected finite values, got NaN")
        if float(lo) < -1e-6 or float(hi) > 1.0 + 1e-6:  # tolerate interpolation round-off
            warnings.warn(f"rays_densities: values outside the valid range [0, 1] (min {float(lo):.3g}, max {float(hi):.3g})")


class EmissionAbsorptionRaymarcher(torch.nn.Module):
    """Emission-absorption compositing, as PyTorch3D's.

    For densities ``d_k`` (..., P, 1) and features ``f_k`` (..., P, C) along a ray:
    ``absorption_k = prod_{j <= k - s} (1 + eps - d_j)`` (an empty product, 1, for ``k < s``, with
    ``s = surface_thickness``), ``weights_k = d_k * absorption_k``, ``features = sum_k weights_k f_k``,
    ``opacity = 1 - prod_k (1 - d_k)``. Returns ``(..., C + 1)``: the features, then the opacity.

    ``surface_thickness`` (>= 1) shifts the transmittance by ``s`` samples, so that a binary (0/1)
    volume still renders its first opaque sample (and the ``s - 1`` after it). ``eps`` keeps the
    product from reaching exactly 0, which would block every gradient behind an opaque sample.
    """

    def __init__(self, surface_thickness: int = 1) -> None:
        super().__init__()
        self.surface_thickness = check_int(surface_thickness, "surface_thickness", min=1)

    def forward(self, rays_densities: torch.Tensor, rays_features: torch.Tensor, eps: float = 1e-10, **kwargs) -> torch.Tensor:
        _check_inputs(rays_densities, rays_features, need_features=True)
        eps = check_float(eps, "eps", min=0.0)
        warn_out_of_range(rays_densities)
        return emission_absorption_torch(rays_densities[..., 0], rays_features, self.surface_thickness, eps)


class AbsorptionOnlyRaymarcher(torch.nn.Module):
    """Opacity only, as PyTorch3D's: ``1 - prod_k (1 - d_k)`` of densities (..., P, 1) -> (..., 1)."""

    def __init__(self) -> None:
        super().__init__()

    def forward(self, rays_densities: torch.Tensor, **kwargs) -> torch.Tensor:
        _check_inputs(rays_densities, None, need_features=False)
        warn_out_of_range(rays_densities)
        return 1.0 - torch.prod(1.0 - rays_densities[..., 0], dim=-1, keepdim=True)
