"""Ray bundles: rays as origins, directions and the lengths sampled along them, as PyTorch3D's.

A point on a ray is ``origins + lengths * directions``: directions need not be unit vectors, their
norm sets the unit of ``lengths`` (the ray samplers make ``lengths`` the view-space depth by default).
"""
from __future__ import annotations

import dataclasses
from typing import NamedTuple, Optional, Union

import torch

from .._validation import _describe

__all__ = ["HeterogeneousRayBundle", "RayBundle", "ray_bundle_to_ray_points", "ray_bundle_variables_to_ray_points"]


class RayBundle(NamedTuple):
    """Rays in world coordinates (a named tuple, as PyTorch3D's).

    Fields:
        origins: (..., 3) ray origins.
        directions: (..., 3) ray directions (any norm).
        lengths: (..., P) lengths at which each ray is sampled (P points per ray).
        xys: (..., 2) the (x, y) image-plane (NDC) location of each ray's pixel; may be None.
    """

    origins: torch.Tensor
    directions: torch.Tensor
    lengths: torch.Tensor
    xys: Optional[torch.Tensor]


@dataclasses.dataclass
class HeterogeneousRayBundle:
    """A :class:`RayBundle` whose rays come from a random multiset of cameras (``n_rays_total``).

    The leading dimension counts rays; ``camera_ids`` (M,) are the distinct sampled cameras and
    ``camera_counts`` (M,) how many rays each contributed, in the order the rays are stored.
    """

    origins: torch.Tensor
    directions: torch.Tensor
    lengths: torch.Tensor
    xys: Optional[torch.Tensor]
    camera_ids: Optional[torch.Tensor] = None
    camera_counts: Optional[torch.Tensor] = None


def ray_bundle_variables_to_ray_points(
    rays_origins: torch.Tensor, rays_directions: torch.Tensor, rays_lengths: torch.Tensor
) -> torch.Tensor:
    """(..., P, 3) points ``origins[..., None, :] + lengths[..., :, None] * directions[..., None, :]``
    from origins (..., 3), directions (..., 3) and lengths (..., P)."""
    for t, name in ((rays_origins, "origins"), (rays_directions, "directions"), (rays_lengths, "lengths")):
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            raise TypeError(f"{name}: expected a floating-point tensor, got {_describe(t)}")
    if rays_origins.shape[-1:] != (3,) or rays_directions.shape[-1:] != (3,):
        raise ValueError(
            f"origins, directions: expected shape (..., 3), got {tuple(rays_origins.shape)} and {tuple(rays_directions.shape)}"
        )
    if rays_origins.dim() < 1 or rays_lengths.dim() < 1:
        raise ValueError(f"lengths: expected shape (..., P), got {tuple(rays_lengths.shape)}")
    return rays_origins[..., None, :] + rays_lengths[..., :, None] * rays_directions[..., None, :]


def ray_bundle_to_ray_points(ray_bundle: Union[RayBundle, HeterogeneousRayBundle]) -> torch.Tensor:
    """(..., P, 3) world points of a ray bundle (see :func:`ray_bundle_variables_to_ray_points`)."""
    if not all(hasattr(ray_bundle, k) for k in ("origins", "directions", "lengths")):
        raise TypeError(f"ray_bundle: expected a RayBundle (origins, directions, lengths), got {_describe(ray_bundle)}")
    return ray_bundle_variables_to_ray_points(ray_bundle.origins, ray_bundle.directions, ray_bundle.lengths)


def check_ray_bundle_variables(origins: torch.Tensor, directions: torch.Tensor, lengths: torch.Tensor) -> None:
    """The checks of a renderer's input bundle: at least (N, R, .) with matching leading dims."""
    for t, name in ((origins, "ray_bundle.origins"), (directions, "ray_bundle.directions"), (lengths, "ray_bundle.lengths")):
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            raise TypeError(f"{name}: expected a floating-point tensor, got {_describe(t)}")
    if not (origins.dim() == directions.dim() == lengths.dim()) or origins.dim() < 3:
        raise ValueError(
            "ray_bundle: expected origins, directions and lengths with the same number (>= 3) of dimensions, "
            f"got shapes {tuple(origins.shape)}, {tuple(directions.shape)}, {tuple(lengths.shape)}"
        )
    if origins.shape[-1] != 3 or directions.shape[-1] != 3:
        raise ValueError(f"ray_bundle: expected origins and directions of shape (..., 3), got {tuple(origins.shape)}, {tuple(directions.shape)}")
    if origins.shape[:-1] != directions.shape[:-1] or origins.shape[:-1] != lengths.shape[:-1]:
        raise ValueError(
            "ray_bundle: expected origins, directions and lengths to differ only in the last dimension, "
            f"got {tuple(origins.shape)}, {tuple(directions.shape)}, {tuple(lengths.shape)}"
        )
