"""Mesh regularisers on ``Meshes`` (PyTorch3D's definitions, weighting and defaults).

Each loss is a mean over the N meshes of the batch in which every mesh counts equally: a term of mesh n is
weighted by 1 / (number of such terms in mesh n), the weighted terms are summed and divided by N
(empty meshes count in N and contribute 0). A batch with no vertices at all gives 0.

The index lists and weights, which depend on the faces only, come from :mod:`diffras.losses.topology`:
built once per faces tensor, so a fitting loop over ``src.offset_verts(offsets)`` does not rebuild them
every step.
"""
from __future__ import annotations

import torch

from .._validation import check_choice, check_float
from .laplacian import _cot_entries, _uniform_entries
from .topology import mesh_topology

__all__ = ["mesh_edge_loss", "mesh_laplacian_smoothing", "mesh_normal_consistency"]


def _check_meshes(meshes) -> None:
    needed = ("verts_packed", "faces_packed", "edges_packed", "num_verts_per_mesh", "isempty")
    if not all(hasattr(meshes, a) for a in needed):
        raise TypeError(f"meshes: expected a diffras.structures.Meshes, got {type(meshes).__name__}")


def _zero(meshes) -> torch.Tensor:
    # A scalar 0 still attached to the vertices, so that loss.backward() works on an empty batch.
    return meshes.verts_packed().sum() * 0.0


def mesh_edge_loss(meshes, target_length: float = 0.0) -> torch.Tensor:
    """Edge-length regulariser: ``(|v0 - v1| - target_length)^2`` averaged over the unique edges of each
    mesh, then over the meshes (each mesh counts equally, whatever its number of edges).

    Args:
        meshes: a ``Meshes`` batch of N meshes.
        target_length: the rest length of every edge (0 pulls vertices together).

    Returns:
        A scalar in the dtype of the vertices, differentiable with respect to them.
    """
    _check_meshes(meshes)
    target_length = check_float(target_length, "target_length")
    if meshes.isempty() or meshes.edges_packed().shape[0] == 0:
        return _zero(meshes)
    verts = meshes.verts_packed()
    edges, weight = mesh_topology(meshes, "edge")
    length = (verts[edges[:, 0]] - verts[edges[:, 1]]).norm(dim=1)
    return (((length - target_length) ** 2) * weight).sum()


def mesh_laplacian_smoothing(meshes, method: str = "uniform") -> torch.Tensor:
    """Laplacian smoothing: the norm of ``L V`` per vertex, averaged per mesh, then over the meshes.

    With ``V`` the (sum V, 3) packed vertices and ``S(i)`` the neighbours of vertex i, the per-vertex term is
    ``|d_i|`` where:

    - ``"uniform"``: ``d_i = sum_{j in S(i)} v_j / |S(i)| - v_i`` (to the centroid of the neighbours);
    - ``"cot"``: ``d_i = sum_j w_ij v_j / sum_j w_ij - v_i`` with ``w_ij = cot a_ij + cot b_ij`` (see
      :func:`~diffras.losses.cot_laplacian`; the row sum is positive for every vertex of a
      non-degenerate face, since ``cot b + cot c = sin a / (sin b sin c)``; where it is not, the factor
      is the sum itself instead of its inverse, as in PyTorch3D, hence 0 for a vertex in no face);
    - ``"cotcurv"``: ``d_i = sum_j w_ij (v_j - v_i) / (4 A_i)`` with ``A_i`` the summed area of the faces
      around vertex i (mean-curvature normal, up to a constant).

    As in PyTorch3D the weights (``1/|S(i)|``, ``w_ij``, their sums and the areas) are treated as
    constants: the gradient flows through ``V`` in ``L V`` only. An isolated vertex (no edge) gives
    ``|v_i|`` for "uniform" and "cot" and 0 for "cotcurv", as in PyTorch3D.

    Args:
        meshes: a ``Meshes`` batch of N meshes.
        method: "uniform" | "cot" | "cotcurv".

    Returns:
        A scalar in the dtype of the vertices.
    """
    _check_meshes(meshes)
    check_choice(method, "method", ("uniform", "cot", "cotcurv"))
    if meshes.isempty() or meshes.verts_packed().shape[0] == 0:
        return _zero(meshes)
    verts = meshes.verts_packed()
    if method == "uniform":
        consts = mesh_topology(meshes, "uniform") + (None,)  # weights 1 / deg: topology only
    else:
        consts = _laplacian_constants(verts.detach(), meshes.faces_packed(), meshes.edges_packed(), method)
    d = _laplacian_vectors(verts, consts, method)
    (weight,) = mesh_topology(meshes, "vert")
    return (d.norm(dim=1) * weight).sum()


@torch.no_grad()
def _laplacian_constants(verts: torch.Tensor, faces: torch.Tensor, edges: torch.Tensor, method: str):
    """The constant part of the smoothing term: sparse entries (rows, cols, vals) and per-vertex factors."""
    V = verts.shape[0]
    if method == "uniform":
        rows, cols, vals = _uniform_entries(V, edges, verts.dtype)
        return rows, cols, vals, None
    rows, cols, vals, inv_areas = _cot_entries(verts, faces, 1e-12)
    row_sum = torch.zeros(V, dtype=verts.dtype, device=verts.device).index_add_(0, rows, vals)
    if method == "cot":
        factor = torch.where(row_sum > 0, 1.0 / torch.where(row_sum > 0, row_sum, torch.ones_like(row_sum)), row_sum)
        return rows, cols, vals, (factor,)
    return rows, cols, vals, (row_sum, 0.25 * inv_areas)


def _laplacian_vectors(verts: torch.Tensor, consts, method: str) -> torch.Tensor:
    """(sum V, 3) vectors ``d_i`` of :func:`mesh_laplacian_smoothing`; differentiable in ``verts`` only."""
    rows, cols, vals, extra = consts
    lv = torch.zeros_like(verts).index_add(0, rows, verts[cols] * vals[:, None])
    if method == "uniform":
        return lv - verts
    if method == "cot":
        return lv * extra[0][:, None] - verts
    row_sum, scale = extra
    return (lv - row_sum[:, None] * verts) * scale[:, None]


def mesh_normal_consistency(meshes) -> torch.Tensor:
    """Normal consistency: ``1 - cos(n0, n1)`` for every pair of faces sharing an edge, averaged per mesh,
    then over the meshes.

    For an edge ``e = (v0, v1)`` (``v0 < v1``, as in ``edges_packed()``) shared by faces with opposite
    vertices ``a`` and ``b``: ``n0 = (v1 - v0) x (a - v0)`` and ``n1 = (b - v0) x (v1 - v0)``, so that two
    coplanar, consistently oriented faces give 0 and a fold back onto itself gives 2. Boundary edges (one
    face) contribute nothing. An edge shared by m > 2 faces contributes every one of its m (m - 1) / 2
    pairs once. (PyTorch3D agrees for m <= 3; for m >= 4 its pair list repeats some pairs, in an order
    that depends on an unstable sort; this function does not copy that.)

    Args:
        meshes: a ``Meshes`` batch of N meshes.

    Returns:
        A scalar in the dtype of the vertices, differentiable with respect to them.
    """
    _check_meshes(meshes)
    if meshes.isempty() or meshes.faces_packed().shape[0] == 0:
        return _zero(meshes)
    idx, weight = mesh_topology(meshes, "pairs")
    if weight.numel() == 0:
        return _zero(meshes)
    verts = meshes.verts_packed()
    v0, v1, a, b = (verts[i] for i in idx)
    along = v1 - v0
    # n0 = (v1 - v0) x (a - v0) and n1 = (b - v0) x (v1 - v0) = -((v1 - v0) x (b - v0)).
    n0 = torch.cross(along, a - v0, dim=1)
    n1 = torch.cross(along, b - v0, dim=1)
    loss = 1.0 - torch.cosine_similarity(n0, -n1, dim=1)
    return (loss * weight).sum()
