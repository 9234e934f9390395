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

from .._validation import _describe, check_choice, check_float
from ..structures.volumes import Volumes
from ._volume_ea_numba import volume_emission_absorption
from .ray_bundle import HeterogeneousRayBundle, RayBundle, check_ray_bundle_variables
from .raymarching import EmissionAbsorptionRaymarcher, warn_out_of_range

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
    returns ``(images, ray_bundle)``; ``sample_mode`` is ``"bilinear"`` (trilinear) or ``"nearest"``.

    On the CPU, with an :class:`EmissionAbsorptionRaymarcher`, trilinear sampling, one density
    channel and features, sampling and compositing run fused in one Numba kernel with a hand-written
    backward (same values and gradients as the torch path, without the (B, ..., P, C) intermediates).
    Set ``renderer.use_fused = False`` to force the plain-torch path.
    """

    def __init__(self, raysampler: Callable, raymarcher: Callable, sample_mode: str = "bilinear") -> None:
        super().__init__()
        self.renderer = ImplicitRenderer(raysampler, raymarcher)
        self._sample_mode = check_choice(sample_mode, "sample_mode", ("bilinear", "nearest"))
        self.use_fused = True

    def forward(self, cameras, volumes: Volumes, **kwargs) -> Tuple[torch.Tensor, Bundle]:
        sampler = VolumeSampler(volumes, sample_mode=self._sample_mode)
        if not (self.use_fused and type(self.renderer.raymarcher) is EmissionAbsorptionRaymarcher):
            return self.renderer(cameras=cameras, volumetric_function=sampler, **kwargs)
        ray_bundle = self.renderer.raysampler(cameras=cameras, volumetric_function=sampler, **kwargs)
        if not _fusable(volumes, ray_bundle, self._sample_mode):
            dens, feats = sampler(ray_bundle=ray_bundle, cameras=cameras, **kwargs)
            images = self.renderer.raymarcher(rays_densities=dens, rays_features=feats, ray_bundle=ray_bundle, **kwargs)
            return images, ray_bundle
        eps = check_float(kwargs.get("eps", 1e-10), "eps", min=0.0)
        origins, directions = local_rays(volumes, ray_bundle)
        lengths = ray_bundle.lengths
        n, p = lengths.shape[0], lengths.shape[-1]
        out, dminmax = volume_emission_absorption(
            volumes.densities(), volumes.features(), origins.reshape(n, -1, 3), directions.reshape(n, -1, 3),
            lengths.reshape(n, -1, p), self.renderer.raymarcher.surface_thickness, eps, volumes.get_align_corners(),
        )
        warn_out_of_range(dminmax)
        return out.reshape(*lengths.shape[:-1], out.shape[-1]), ray_bundle


def _fusable(volumes: Volumes, bundle, sample_mode: str) -> bool:
    """The fused kernel's domain: CPU float32/float64, trilinear, one density channel, features."""
    dens, feats = volumes.densities(), volumes.features()
    tensors = (dens, feats, getattr(bundle, "origins", None), getattr(bundle, "directions", None), getattr(bundle, "lengths", None))
    if sample_mode != "bilinear" or feats is None or dens.shape[1] != 1:
        return False
    if not all(isinstance(t, torch.Tensor) and t.device.type == "cpu" and t.dtype == dens.dtype for t in tensors):
        return False
    if dens.dtype not in (torch.float32, torch.float64):
        return False
    check_ray_bundle_variables(bundle.origins, bundle.directions, bundle.lengths)
    return bundle.origins.shape[0] == len(volumes)


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
        _check_memory(lengths, vol)
        origins_local, directions_local = local_rays(vol, ray_bundle)
        points = origins_local[..., None, :] + lengths[..., :, None] * directions_local[..., None, :]
        return sample_volumes(vol, points, self._sample_mode, self._padding_mode)


# The torch path holds the points and samples of every ray at once (with autograd, a few copies):
# refuse clearly, rather than be killed by the OOM killer, when that cannot fit.
_MAX_SAMPLE_BYTES = 12 * 2**30


def _check_memory(lengths: torch.Tensor, volumes: Volumes) -> None:
    channels = volumes.densities().shape[1] + (0 if volumes.features() is None else volumes.features().shape[1])
    need = lengths.numel() * (3 + channels) * lengths.element_size() * 3
    if need > _MAX_SAMPLE_BYTES:
        raise ValueError(
            f"ray_bundle: expected at most {_MAX_SAMPLE_BYTES / 2**30:.0f} GiB of ray samples, got {lengths.numel()} points "
            f"needing ~{need / 2**30:.1f} GiB: render fewer rays or points per call (e.g. in chunks of rays)"
        )


def local_rays(volumes: Volumes, bundle) -> Tuple[torch.Tensor, torch.Tensor]:
    """A bundle's origins and directions in the volumes' local frame (lengths are unchanged): world ->
    local is a per-volume scale and shift, so origins take both and directions the scale only."""
    half = volumes._bcast(volumes._half_extent(), bundle.origins)
    return volumes.world_to_local_coords(bundle.origins), bundle.directions / half


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
