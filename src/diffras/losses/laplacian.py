"""Mesh Laplacian matrices (PyTorch3D's ``laplacian`` and ``cot_laplacian`` definitions), as sparse
(V, V) tensors, plus the entry lists the smoothing loss applies with ``index_add`` (never a dense V x V).

Uniform Laplacian: ``L[i, j] = 1 / deg(i)`` for every edge (i, j), ``L[i, i] = -1`` (also for isolated
vertices), 0 elsewhere, so ``(L @ V)[i]`` is the vector from ``v_i`` to the centroid of its neighbours.

Cotangent Laplacian: ``L[i, j] = cot a_ij + cot b_ij`` where ``a_ij``, ``b_ij`` are the angles opposite
edge (i, j) in its (one or two) faces; no diagonal, no 1/2 factor. Angles come from the side lengths,
``cot a = (B^2 + C^2 - A^2) / (4 * area)``, with the area by Heron's formula clamped at
``sqrt(eps)`` so degenerate faces give large but finite weights (as PyTorch3D).
"""
from __future__ import annotations

from typing import Tuple

import torch

from .._validation import check_float, check_index_range, check_same_device, check_tensor

__all__ = ["cot_laplacian", "laplacian"]


def _uniform_entries(num_verts: int, edges: torch.Tensor, dtype: torch.dtype):
    """Off-diagonal entries (rows, cols, vals) of the uniform Laplacian, each edge in both directions."""
    e0, e1 = edges[:, 0], edges[:, 1]
    rows = torch.cat([e0, e1])
    cols = torch.cat([e1, e0])
    deg = torch.bincount(rows, minlength=num_verts).to(dtype)
    # Every row that has entries has deg > 0, so 1 / deg is finite wherever it is used.
    vals = 1.0 / deg[rows]
    return rows, cols, vals


def _cot_entries(verts: torch.Tensor, faces: torch.Tensor, eps: float):
    """Entries (rows, cols, vals) of the cotangent Laplacian (duplicates to be summed) and the (V,)
    inverse of the summed areas of the faces around each vertex (0 for vertices in no face)."""
    V = verts.shape[0]
    v0, v1, v2 = verts[faces[:, 0]], verts[faces[:, 1]], verts[faces[:, 2]]
    # Side lengths: A opposite corner 0, B opposite corner 1, C opposite corner 2.
    A = (v1 - v2).norm(dim=1)
    B = (v0 - v2).norm(dim=1)
    C = (v0 - v1).norm(dim=1)
    s = 0.5 * (A + B + C)
    # Heron's product can round to a (tiny) negative number for slivers: clamp before the sqrt.
    area = (s * (s - A) * (s - B) * (s - C)).clamp(min=eps).sqrt()
    A2, B2, C2 = A * A, B * B, C * C
    cot = torch.stack([B2 + C2 - A2, A2 + C2 - B2, A2 + B2 - C2], dim=1) / (4.0 * area[:, None])  # (F, 3)
    # The angle at corner k sits opposite the edge joining the other two corners.
    ii = faces[:, [1, 2, 0]].reshape(-1)
    jj = faces[:, [2, 0, 1]].reshape(-1)
    w = cot.reshape(-1)
    rows = torch.cat([ii, jj])
    cols = torch.cat([jj, ii])
    vals = torch.cat([w, w])
    areas = torch.zeros(V, dtype=verts.dtype, device=verts.device)
    areas.index_add_(0, faces.reshape(-1), area.repeat_interleave(3))
    inv_areas = torch.where(areas > 0, 1.0 / torch.where(areas > 0, areas, torch.ones_like(areas)), areas)
    return rows, cols, vals, inv_areas


def laplacian(verts: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """Uniform graph Laplacian (PyTorch3D's ``laplacian``).

    Args:
        verts: (V, 3) float vertices (only their number, dtype and device are used).
        edges: (E, 2) int64 undirected edges, each listed once, indices in [0, V).

    Returns:
        (V, V) sparse COO tensor (coalesced) in the dtype of ``verts``: ``L[i, j] = 1 / deg(i)`` for each
        edge, ``L[i, i] = -1`` for every vertex.
    """
    check_tensor(verts, "verts", shape=(None, 3), dtype="float")
    check_tensor(edges, "edges", shape=(None, 2), dtype="int")
    V = verts.shape[0]
    check_same_device(verts=verts, edges=edges)
    check_index_range(edges, "edges", V)
    edges = edges.to(torch.int64)
    rows, cols, vals = _uniform_entries(V, edges, verts.dtype)
    diag = torch.arange(V, device=verts.device)
    idx = torch.stack([torch.cat([rows, diag]), torch.cat([cols, diag])])
    vals = torch.cat([vals, -torch.ones(V, dtype=verts.dtype, device=verts.device)])
    return torch.sparse_coo_tensor(idx, vals, (V, V), check_invariants=False).coalesce()


def cot_laplacian(verts: torch.Tensor, faces: torch.Tensor, eps: float = 1e-12) -> Tuple[torch.Tensor, torch.Tensor]:
    """Cotangent Laplacian and inverse vertex areas (PyTorch3D's ``cot_laplacian``).

    Args:
        verts: (V, 3) float vertices.
        faces: (F, 3) int64 faces, indices in [0, V).
        eps: lower clamp of the squared face area in Heron's formula.

    Returns:
        ``(L, inv_areas)``: ``L`` a (V, V) sparse COO tensor (coalesced), ``L[i, j] = cot a_ij + cot b_ij``
        for each edge, symmetric, zero diagonal; ``inv_areas`` (V, 1), the inverse of the summed areas of
        the faces containing each vertex (0 for vertices in no face). Differentiable with respect to
        ``verts`` (the smoothing loss itself treats them as constants).
    """
    check_tensor(verts, "verts", shape=(None, 3), dtype="float", finite=True)
    check_tensor(faces, "faces", shape=(None, 3), dtype="int")
    V = verts.shape[0]
    check_same_device(verts=verts, faces=faces)
    check_index_range(faces, "faces", V)
    eps = check_float(eps, "eps", min=0.0, min_exclusive=True)
    faces = faces.to(torch.int64)
    rows, cols, vals, inv_areas = _cot_entries(verts, faces, eps)
    L = torch.sparse_coo_tensor(torch.stack([rows, cols]), vals, (V, V), check_invariants=False).coalesce()
    return L, inv_areas.view(-1, 1)
