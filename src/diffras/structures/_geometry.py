"""Per-face and per-vertex geometry of packed triangle meshes (plain torch, differentiable).

Shapes use ``docs/conventions.md``: ``verts`` (sum V, 3) float, ``faces`` (sum F, 3) int64 indices into
``verts``. A face's orientation is ``(v1 - v0) x (v2 - v0)`` (right-hand rule over the corner order).
"""
from __future__ import annotations

from typing import Tuple

import torch

__all__ = ["bounding_boxes", "face_areas", "face_cross", "face_normals", "safe_normalize", "unique_edges", "vertex_normals"]


# Relative length below which a normal is treated as undefined (set to zero): cross products of
# degenerate faces (repeated or collinear corners) are not exactly zero in floating point (e.g. fused
# multiply-add leaves a ~eps residue), and normalising that residue would give a random unit vector.
# The bound scales with |e1| |e2|, the size a rounding error of the cross product can reach.
_REL_TOL = 64.0


def safe_normalize(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Rows of ``x`` (*, 3) scaled to unit length; rows with ``|x| <= 64 * eps * scale`` (``scale`` (*, 1),
    the magnitude rounding errors in ``x`` are relative to) become exact zeros, with zero gradient."""
    norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
    ok = norm > _REL_TOL * torch.finfo(x.dtype).eps * scale
    # Double where: the divisor is never zero, so the backward pass has no NaN either.
    return torch.where(ok, x / torch.where(ok, norm, torch.ones_like(norm)), torch.zeros_like(x))


def _face_cross_and_scale(verts: torch.Tensor, faces: torch.Tensor):
    # Three row gathers (index_select) are several times faster on the CPU than one (F, 3, 3) fancy index.
    v0 = verts.index_select(0, faces[:, 0])
    e1 = verts.index_select(0, faces[:, 1]) - v0
    e2 = verts.index_select(0, faces[:, 2]) - v0
    scale = torch.linalg.vector_norm(e1, dim=-1, keepdim=True) * torch.linalg.vector_norm(e2, dim=-1, keepdim=True)
    return torch.linalg.cross(e1, e2, dim=-1), scale.detach()


def face_cross(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """(sum F, 3) ``(v1 - v0) x (v2 - v0)``: twice the area times the unit normal."""
    return _face_cross_and_scale(verts, faces)[0]


def face_normals(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """(sum F, 3) unit face normals; zero for degenerate faces (see ``safe_normalize``)."""
    return safe_normalize(*_face_cross_and_scale(verts, faces))


def face_areas(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """(sum F,) triangle areas (half the cross product's length)."""
    # vector_norm's backward is 0 at a zero vector, so degenerate faces give zero gradients, not NaN.
    return 0.5 * torch.linalg.vector_norm(face_cross(verts, faces), dim=-1)


def vertex_normals(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """(sum V, 3) area-weighted unit vertex normals; zero for vertices no (non-degenerate) face touches
    and where the adjacent faces' normals cancel (see ``safe_normalize``).

    The cross product of a face already has length 2 * area, so summing it into the three corners and
    normalising weights each face by its area.
    """
    cross, scale = _face_cross_and_scale(verts, faces)
    # One scatter for the normal sums and the rounding scale (4 columns cost about as much as 3).
    src = torch.cat([cross, scale], 1).unsqueeze(1).expand(-1, 3, -1).reshape(-1, 4)
    acc = verts.new_zeros(verts.shape[0], 4).index_add(0, faces.reshape(-1), src)
    acc, acc_scale = acc[:, :3], acc[:, 3:]
    return safe_normalize(acc, acc_scale)


def unique_edges(faces: torch.Tensor, num_verts: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Unique undirected edges of packed faces.

    Returns:
        edges: (E, 2) int64 with ``edges[:, 0] < edges[:, 1]``, sorted lexicographically.
        face_to_edge: (sum F, 3) int64; ``face_to_edge[f, i]`` indexes the edge opposite corner i of face f,
            i.e. ``(faces[f, (i+1)%3], faces[f, (i+2)%3])``.
    """
    nf = faces.shape[0]
    v0, v1, v2 = faces.unbind(1)
    # Stacked corner-opposite first: rows [0:F) are the edges opposite corner 0, and so on.
    e = torch.stack([torch.stack([v1, v2], 1), torch.stack([v2, v0], 1), torch.stack([v0, v1], 1)], 0)
    e = torch.sort(e.reshape(-1, 2), dim=1).values
    key = e[:, 0] * max(num_verts, 1) + e[:, 1]
    uniq, inverse = torch.unique(key, sorted=True, return_inverse=True)
    edges = torch.stack([uniq // max(num_verts, 1), uniq % max(num_verts, 1)], 1)
    return edges, inverse.view(3, nf).t().contiguous()


def bounding_boxes(verts_padded: torch.Tensor, num_verts: torch.Tensor) -> torch.Tensor:
    """(N, 3, 2) per-mesh ``[min, max]`` over the first ``num_verts[n]`` rows of ``verts_padded`` (N, V, 3);
    zeros for meshes without vertices. Differentiable (ties share the gradient, as ``amin``/``amax``)."""
    n, v = verts_padded.shape[:2]
    if v == 0:
        return verts_padded.new_zeros(n, 3, 2)
    mask = (torch.arange(v, device=verts_padded.device).unsqueeze(0) < num_verts.unsqueeze(1)).unsqueeze(2)
    big = torch.finfo(verts_padded.dtype).max
    lo = torch.where(mask, verts_padded, verts_padded.new_full((), big)).amin(1)
    hi = torch.where(mask, verts_padded, verts_padded.new_full((), -big)).amax(1)
    has = (num_verts > 0).unsqueeze(1)
    return torch.stack([torch.where(has, lo, torch.zeros_like(lo)), torch.where(has, hi, torch.zeros_like(hi))], 2)
