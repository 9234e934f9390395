"""What the mesh regularisers need from a batch's topology, computed once per faces tensor.

A fitting loop calls :func:`~diffras.losses.mesh_edge_loss`, :func:`~diffras.losses.mesh_normal_consistency`
and :func:`~diffras.losses.mesh_laplacian_smoothing` every step on meshes whose vertices move but whose
faces never change (``src.offset_verts(offsets)`` shares the faces tensor of ``src``). The index lists and
per-term weights those losses use depend on the faces and the per-mesh counts only, so they are built once
and kept in a small cache:

- ``"edge"``: the unique edges (E, 2) and each edge's weight ``1 / (edges of its mesh) / N``;
- ``"vert"``: each vertex's weight ``1 / (vertices of its mesh) / N``;
- ``"uniform"``: the uniform Laplacian's off-diagonal entries ``(rows, cols, 1 / deg(row))``;
- ``"pairs"``: every pair of faces sharing an edge as four vertex indices (4, Q) ``(v0, v1, a, b)`` (the
  edge ``v0 < v1`` and the corners ``a``, ``b`` opposite it) and the pair's weight ``1 / (pairs of its
  mesh) / N``.

An entry is reused only for the same faces tensor object (held by a weak reference), unchanged in place
since (its version counter), with the same vertex and face counts per mesh, on the same device and in
the same vertex dtype; anything else rebuilds it. Under ``torch.inference_mode`` nothing is stored
(inference tensors cannot take part in a later backward). At most ``_MAX_ENTRIES`` faces tensors are
kept, the least recently used dropped first.
"""
from __future__ import annotations

import weakref
from collections import OrderedDict
from typing import Any, Callable, Dict, Tuple

import torch

from .laplacian import _uniform_entries

__all__ = ["clear_topology_cache", "mesh_topology"]

_MAX_ENTRIES = 8
# id(faces) -> (weakref to faces, faces._version, counts key, {(item, dtype): tensors})
_CACHE: "OrderedDict[int, Tuple[Any, int, Tuple, Dict]]" = OrderedDict()


def clear_topology_cache() -> None:
    """Forget every cached topology (they are rebuilt on demand)."""
    _CACHE.clear()


def _per_mesh_weight(term_mesh: torch.Tensor, n: int, dtype: torch.dtype) -> torch.Tensor:
    """(T,) weight of each term: 1 / (terms of its mesh) / N, so the weighted sum is the mean of per-mesh means."""
    count = torch.bincount(term_mesh, minlength=n)
    return 1.0 / (count[term_mesh].to(dtype) * n)


def _build(meshes, item: str, dtype: torch.dtype):
    n = len(meshes)
    if item == "edge":
        return meshes.edges_packed(), _per_mesh_weight(meshes.edges_packed_to_mesh_idx(), n, dtype)
    if item == "vert":
        return (_per_mesh_weight(meshes.verts_packed_to_mesh_idx(), n, dtype),)
    if item == "uniform":
        return _uniform_entries(meshes.verts_packed().shape[0], meshes.edges_packed(), dtype)
    if item == "pairs":
        return _face_pairs(meshes, dtype)
    raise KeyError(item)


def _face_pairs(meshes, dtype: torch.dtype):
    """(4, Q) vertex indices ``(v0, v1, a, b)`` of every pair of faces sharing an edge, and (Q,) weights.

    Corner c = 3 f + i of face f is opposite the edge ``faces_packed_to_edges_packed()[f, i]``. Sorting the
    corners by that edge (stably) groups the faces around each edge; every corner is paired once with
    each later corner of its group, so an edge of m faces gives its m (m - 1) / 2 pairs.
    """
    faces = meshes.faces_packed()
    edges = meshes.edges_packed()
    n_corners = faces.shape[0] * 3
    corner_edge, order = torch.sort(meshes.faces_packed_to_edges_packed().reshape(-1), stable=True)
    counts = torch.bincount(corner_edge, minlength=edges.shape[0])
    group_start = torch.cumsum(counts, 0) - counts
    rank = torch.arange(n_corners, device=faces.device) - group_start[corner_edge]
    later = counts[corner_edge] - 1 - rank  # partners after this corner in its edge group
    first = torch.repeat_interleave(torch.arange(n_corners, device=faces.device), later)
    block_start = torch.cumsum(later, 0) - later
    second = first + 1 + torch.arange(first.numel(), device=faces.device) - torch.repeat_interleave(block_start, later)
    edge = edges[corner_edge[first]]  # (Q, 2): both corners of a pair share it
    opposite = faces.reshape(-1)[order]
    idx = torch.stack([edge[:, 0], edge[:, 1], opposite[first], opposite[second]])
    pair_mesh = meshes.faces_packed_to_mesh_idx()[order[first] // 3]
    return idx, _per_mesh_weight(pair_mesh, len(meshes), dtype)


def mesh_topology(meshes, item: str) -> Tuple[torch.Tensor, ...]:
    """The tensors of ``item`` (see the module docstring) for ``meshes``, from the cache when still valid.

    The caller has checked that ``meshes`` is a ``Meshes`` with at least one face (or vertex, for
    ``"vert"``/``"uniform"``). Returned tensors never require grad; do not modify them in place.
    """
    faces = meshes.faces_packed()
    dtype = meshes.verts_packed().dtype
    build: Callable[[], Tuple[torch.Tensor, ...]] = lambda: _build_no_grad(meshes, item, dtype)  # noqa: E731
    if torch.is_inference_mode_enabled():
        return build()
    counts = (meshes.num_verts_per_mesh().tolist(), meshes.num_faces_per_mesh().tolist(), str(faces.device))
    key = id(faces)
    entry = _CACHE.get(key)
    if entry is None or entry[0]() is not faces or entry[1] != faces._version or entry[2] != counts:
        entry = (weakref.ref(faces, _forget(key)), faces._version, counts, {})
        _CACHE[key] = entry
        while len(_CACHE) > _MAX_ENTRIES:
            _CACHE.popitem(last=False)
    _CACHE.move_to_end(key)
    items = entry[3]
    if (item, dtype) not in items:
        items[(item, dtype)] = build()
    return items[(item, dtype)]


def _forget(key: int):
    """Weakref callback: drop the entry of a faces tensor that no longer exists (if not replaced since)."""
    def drop(ref) -> None:
        entry = _CACHE.get(key)
        if entry is not None and entry[0] is ref:
            del _CACHE[key]
    return drop


def _build_no_grad(meshes, item: str, dtype: torch.dtype) -> Tuple[torch.Tensor, ...]:
    with torch.no_grad():
        out = _build(meshes, item, dtype)
    return tuple(out)
