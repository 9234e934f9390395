"""Normalising meshes from the wild to a common scale."""
from __future__ import annotations

import torch

from .._validation import _describe
from ..structures import Meshes

__all__ = ["normalize_to_unit_sphere"]


def normalize_to_unit_sphere(meshes: Meshes) -> Meshes:
    """Centre each mesh on its bounding-box centre and scale it so its farthest vertex is at distance 1.

    Meshes from the wild differ in scale by orders of magnitude (the dolphins are ~800 units, the
    bunny ~0.15); after this one camera distance fits all of them. Keeps textures.

    Args:
        meshes: a ``Meshes`` batch of N meshes; each is normalised on its own.

    Returns:
        A new ``Meshes`` (``meshes.offset_verts``), differentiable with respect to the positions.
    """
    if not isinstance(meshes, Meshes):
        raise TypeError(f"meshes: expected a Meshes, got {_describe(meshes)}")
    verts = meshes.verts_packed()
    idx = meshes.verts_packed_to_mesh_idx()
    bbox = meshes.get_bounding_boxes()  # (N, 3, 2)
    centre = bbox.mean(dim=-1)  # (N, 3)
    centred = verts - centre[idx]
    radius = torch.zeros(len(meshes), dtype=verts.dtype, device=verts.device)
    radius = radius.scatter_reduce(0, idx, centred.norm(dim=-1), reduce="amax", include_self=True)
    scaled = centred / radius.clamp_min(1e-12)[idx, None]
    return meshes.offset_verts(scaled - verts)
