"""Volumes and implicit functions rendered by ray marching, as PyTorch3D's ``renderer.implicit``.

Pipeline: a **ray sampler** emits rays from cameras (``RayBundle``: origins, directions, lengths,
xys) -> a **volumetric function** (a NeRF module, or ``VolumeSampler`` over ``Volumes``) gives
densities and features at the ray points -> a **ray marcher** composites them into pixels.
``ImplicitRenderer`` and ``VolumeRenderer`` wire the three. Conventions: ``docs/volumes.md``.
"""
from .harmonic_embedding import HarmonicEmbedding
from .ray_bundle import HeterogeneousRayBundle, RayBundle, ray_bundle_to_ray_points, ray_bundle_variables_to_ray_points
from .raymarching import AbsorptionOnlyRaymarcher, EmissionAbsorptionRaymarcher
from .raysampling import MonteCarloRaysampler, MultinomialRaysampler, NDCMultinomialRaysampler
from .renderer import ImplicitRenderer, VolumeRenderer, VolumeSampler

__all__ = [
    "AbsorptionOnlyRaymarcher",
    "EmissionAbsorptionRaymarcher",
    "HarmonicEmbedding",
    "HeterogeneousRayBundle",
    "ImplicitRenderer",
    "MonteCarloRaysampler",
    "MultinomialRaysampler",
    "NDCMultinomialRaysampler",
    "RayBundle",
    "VolumeRenderer",
    "VolumeSampler",
    "ray_bundle_to_ray_points",
    "ray_bundle_variables_to_ray_points",
]
