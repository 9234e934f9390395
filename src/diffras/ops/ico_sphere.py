"""Unit icospheres: the icosahedron, subdivided ``level`` times and projected onto the unit sphere."""
from __future__ import annotations

import math
from typing import Optional

import torch

from .._validation import check_index_range, check_int, check_tensor
from ..structures import Meshes

__all__ = ["ico_sphere", "subdivide_faces"]

# Subdivision quadruples the face count; level 8 already has 1.3M faces. The cap catches typos.
_MAX_LEVEL = 10


def _icosahedron(device, dtype):
    t = (1.0 + math.sqrt(5.0)) / 2.0
    # Three mutually orthogonal golden rectangles: (+-1, +-t, 0), (0, +-1, +-t), (+-t, 0, +-1).
    verts = torch.tensor([
        [-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0],
        [0, -1, t], [0, 1, t], [0, -1, -t], [0, 1, -t],
        [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1],
    ], dtype=torch.float64)
    # Corner order chosen so that (v1 - v0) x (v2 - v0) points away from the centre (tested).
    faces = torch.tensor([
        [0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11],
        [1, 5, 9], [5, 11, 4], [11, 10, 2], [10, 7, 6], [7, 1, 8],
        [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8], [3, 8, 9],
        [4, 9, 5], [2, 4, 11], [6, 2, 10], [8, 6, 7], [9, 8, 1],
    ], dtype=torch.int64, device=device)
    return (verts / verts.norm(dim=1, keepdim=True)).to(device=device, dtype=dtype), faces


def subdivide_faces(verts: torch.Tensor, faces: torch.Tensor):
    """Split every triangle into four through its edge midpoints (one shared midpoint per edge).

    Args:
        verts: (V, 3) float.
        faces: (F, 3) int64 indices into ``verts``.
    Returns:
        ``(new_verts (V + E, 3), new_faces (4F, 3))`` with E the number of unique edges; the first V
        vertices are the inputs, then the midpoints. Each child keeps its parent's winding.
        Differentiable with respect to ``verts``.
    """
    check_tensor(verts, "verts", shape=(None, 3), dtype="float", finite=True)
    check_tensor(faces, "faces", shape=(None, 3), dtype="int", device=verts.device)
    faces = check_index_range(faces.to(torch.int64), "faces", verts.shape[0])
    return _subdivide(verts, faces)


def _subdivide(verts: torch.Tensor, faces: torch.Tensor):
    nv, nf = verts.shape[0], faces.shape[0]
    v0, v1, v2 = faces.unbind(1)
    # Edges opposite corners 0, 1, 2: (v1, v2), (v2, v0), (v0, v1).
    e = torch.stack([torch.stack([v1, v2], 1), torch.stack([v2, v0], 1), torch.stack([v0, v1], 1)], 0).reshape(-1, 2)
    e = torch.sort(e, dim=1).values
    uniq, inverse = torch.unique(e[:, 0] * max(nv, 1) + e[:, 1], return_inverse=True)
    a, b = uniq // max(nv, 1), uniq % max(nv, 1)
    mid = 0.5 * (verts[a] + verts[b])
    m12, m20, m01 = (nv + inverse.view(3, nf)).unbind(0)
    new_faces = torch.cat([
        torch.stack([v0, m01, m20], 1),
        torch.stack([v1, m12, m01], 1),
        torch.stack([v2, m20, m12], 1),
        torch.stack([m01, m12, m20], 1),
    ], 0)
    return torch.cat([verts, mid], 0), new_faces


def ico_sphere(level: int = 0, device=None, dtype: Optional[torch.dtype] = None) -> Meshes:
    """A unit-radius icosphere centred at the origin, as a ``Meshes`` of one mesh.

    Args:
        level: subdivision level in ``[0, 10]``; level 0 is the icosahedron (12 vertices, 20 faces), level L
            has ``10 * 4**L + 2`` vertices and ``20 * 4**L`` faces (no duplicated vertices).
        device: torch device (default: torch's default device).
        dtype: floating dtype of the vertices (default: ``torch.get_default_dtype()``).
    Returns:
        ``Meshes`` with every vertex at distance 1 from the origin and every face wound so that
        ``(v1 - v0) x (v2 - v0)`` points outward. A closed 2-manifold: each edge is in exactly two faces.
    """
    level = check_int(level, "level", min=0, max=_MAX_LEVEL)
    dtype = torch.get_default_dtype() if dtype is None else dtype
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"dtype: expected a floating torch.dtype, got {dtype!r}")
    device = torch.empty(0, device=device).device
    verts, faces = _icosahedron(device, dtype)
    for _ in range(level):
        verts, faces = _subdivide(verts, faces)
        verts = verts / verts.norm(dim=1, keepdim=True)
    return Meshes([verts], [faces])
