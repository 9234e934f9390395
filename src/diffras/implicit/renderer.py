"""Implicit and volume renderers: ray sampler -> volumetric function -> ray marcher, as PyTorch3D's.

``ImplicitRenderer(raysampler, raymarcher)(cameras=..., volumetric_function=..., **kwargs)`` returns
``(images, ray_bundle)``: the raysampler's bundle, and the raymarcher's output over it, e.g.
(B, H, W, C + 1) for a grid sampler and the emission-absorption marcher. ``VolumeRenderer`` is the
same with :class:`VolumeSampler` over a :class:`~diffras.structures.Volumes` as the function.
The modules hold no logic beyond wiring and input checks.
"""
from __future__ import annotations

from typing import Callable, Tuple, Union

import torch

from .._validation import _describe, check_choice
from ..structures.volumes import Volumes
from .ray_bundle import HeterogeneousRayBundle, RayBundle, check_ray_bundle_variables

__all__ = ["ImplicitRenderer", "VolumeRenderer", "VolumeSampler"]

Bundle = Union[RayBundle, HeterogeneousRayBundle]


class ImplicitRenderer(torch.nn.Module):
    """Render a volumetric function (e.g. a NeRF ``nn.Module``) along the rays of a ray sampler.

    Args:
        raysampler: callable ``raysampler(cameras=..., **kwargs) -> RayBundle``.
        raymarcher: callable ``raymarcher(rays_densities=..., rays_features=..., ray_bundle=..., **kwargs)``.

    ``forward(cameras, volumetric_function, **kwargs)``: ``volumetric_function(ray_bundle=...,
    cameras=..., **kwargs)`` must return ``(rays_densities (B, ..., P, 1), rays_features (B, ..., P, C))``.
    Extra keyword arguments reach all three callables, as PyTorch3D.
    """

    def __init__(self, raysampler: Callable, raymarcher: Callable) -> None:
        super().__init__()
        if not callable(raysampler):
            raise TypeError(f"raysampler: expected a callable, got {_describe(raysampler)}")
        if not callable(raymarcher):
            raise TypeError(f"raymarcher: expected a callable, got {_describe(raymarcher)}")
        self.raysampler = raysampler
        self.raymarcher = raymarcher

    def forward(self, cameras, volumetric_function: Callable, **kwargs) -> Tuple[torch.Tensor, Bundle]:
        if not callable(volumetric_function):
            raise TypeError(f"volumetric_function: expected a callable, got {_describe(volumetric_function)}")
        ray_bundle = self.raysampler(cameras=cameras, volumetric_function=volumetric_function, **kwargs)
        out = volumetric_function(ray_bundle=ray_bundle, cameras=cameras, **kwargs)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise TypeError(
                f"volumetric_function: expected to return (rays_densities, rays_features), got {_describe(out)}"
            )
        rays_densities, rays_features = out
        images = self.raymarcher(rays_densities=rays_densities, rays_features=rays_features, ray_bundle=ray_bundle, **kwargs)
        return images, ray_bundle


class VolumeRenderer(torch.nn.Module):
    """Render a batch of :class:`~diffras.structures.Volumes`: ``renderer(cameras=..., volumes=...)``
    returns ``(images, ray_bundle)``; ``sample_mode`` is ``"bilinear"`` (trilinear) or ``"nearest"``."""

    def __init__(self, raysampler: Callable, raymarcher: Callable, sample_mode: str = "bilinear") -> None:
        super().__init__()
        self.renderer = ImplicitRenderer(raysampler, raymarcher)
        self._sample_mode = check_choice(sample_mode, "sample_mode", ("bilinear", "nearest"))

    def forward(self, cameras, volumes: Volumes, **kwargs) -> Tuple[torch.Tensor, Bundle]:
        sampler = VolumeSampler(volumes, sample_mode=self._sample_mode)
        return self.renderer(cameras=cameras, volumetric_function=sampler, **kwargs)


class VolumeSampler(torch.nn.Module):
    """Sample :class:`~diffras.structures.Volumes` at the points of a ray bundle (PyTorch3D's).

    ``forward(ray_bundle)`` with origins / directions (N, ..., 3) and lengths (N, ..., P) in world
    coordinates (N = ``len(volumes)``) returns ``rays_densities`` (N, ..., P, C_d) and
    ``rays_features`` (N, ..., P, C_f) (an empty C_f = 0 tensor for feature-less volumes): the volumes
    interpolated as ``grid_sample`` does (``sample_mode`` "bilinear" is trilinear in 3D, or "nearest";
    ``padding_mode`` "zeros", "border" or "reflection" outside the grid; the volumes' ``align_corners``).
    Differentiable in the volumes' tensors and in the rays.
    """

    def __init__(self, volumes: Volumes, sample_mode: str = "bilinear", padding_mode: str = "zeros") -> None:
        super().__init__()
        if not isinstance(volumes, Volumes):
            raise TypeError(f"volumes: expected a diffras Volumes, got {_describe(volumes)}")
        self._volumes = volumes
        self._sample_mode = check_choice(sample_mode, "sample_mode", ("bilinear", "nearest"))
        self._padding_mode = check_choice(padding_mode, "padding_mode", ("zeros", "border", "reflection"))

    def forward(self, ray_bundle: Bundle, **kwargs) -> Tuple[torch.Tensor, torch.Tensor]:
        origins, directions, lengths = ray_bundle.origins, ray_bundle.directions, ray_bundle.lengths
        check_ray_bundle_variables(origins, directions, lengths)
        vol = self._volumes
        if origins.shape[0] != len(vol):
            raise ValueError(
                f"ray_bundle: expected {len(vol)} batch entries (one per volume), got {origins.shape[0]}"
            )
        if origins.device != vol.device:
            raise ValueError(f"ray_bundle: expected device {vol.device} (the volumes'), got {origins.device}")
        # World -> local is a per-volume scale and shift: origins take both, directions the scale only.
        half = vol._bcast(vol._half_extent(), origins)
        origins_local = vol.world_to_local_coords(origins)
        directions_local = directions / half
        points = origins_local[..., None, :] + lengths[..., :, None] * directions_local[..., None, :]
        return sample_volumes(vol, points, self._sample_mode, self._padding_mode)


def sample_volumes(volumes: Volumes, points_local: torch.Tensor, mode: str, padding_mode: str):
    """Interpolate densities and features at local points (N, ..., 3) -> (N, ..., C_d), (N, ..., C_f)."""
    n = len(volumes)
    grid = points_local.reshape(n, -1, 1, 1, 3)
    dens = volumes.densities()
    out = []
    for vol in (dens, volumes.features()):
        if vol is None:
            out.append(points_local.new_zeros(*points_local.shape[:-1], 0))
            continue
        g = grid.to(vol.dtype)
        s = torch.nn.functional.grid_sample(vol, g, mode=mode, padding_mode=padding_mode, align_corners=volumes.get_align_corners())
        out.append(s.reshape(n, vol.shape[1], -1).transpose(1, 2).reshape(*points_local.shape[:-1], vol.shape[1]))
    return out[0], out[1]
