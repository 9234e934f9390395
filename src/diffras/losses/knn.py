"""K nearest neighbours between batched point clouds: a non-differentiable search, then exact distances.

``knn_points`` follows PyTorch3D's ``knn_points`` (same arguments, outputs and padding). The search runs
without autograd: on the CPU for clouds of up to ``_KDTREE_MAX_DIM`` dimensions through
``scipy.spatial.cKDTree`` (O(P log P), all cores, distances in float64), elsewhere (other devices, high
dimensions) brute force one block of rows at a time, so two 100k-point clouds never need a 100k x 100k
matrix: every block of the distance matrix stays under ``max_chunk_bytes``. The distances to the chosen
neighbours are then recomputed in torch from the gathered points, so the backward pass is exact and costs
O(N * P1 * K * D), on any device.
"""
from __future__ import annotations

from typing import NamedTuple, Optional, Tuple

import torch

from .._validation import check_choice, check_index_range, check_int, check_same_device, check_tensor

__all__ = ["KNN", "knn_gather", "knn_points", "DEFAULT_CHUNK_BYTES"]

# One block of the (rows x P2) distance matrix is kept under this size. 64 MB keeps the working set
# small enough for a laptop GPU or a shared CPU while each block is still large enough for the
# matmul to run at full speed.
DEFAULT_CHUNK_BYTES = 64 * 2**20
_CPU_BLOCK_BYTES = 4 * 2**20
# k-d trees prune well in low dimensions (points, normals, colours); beyond that brute force wins.
_KDTREE_MAX_DIM = 8
# Tests switch this off to run the brute-force search on the CPU.
_KDTREE_CPU = True


class KNN(NamedTuple):
    """Result of :func:`knn_points`.

    - ``dists``: (N, P1, K) float. For ``norm=2`` the *squared* Euclidean distance, for ``norm=1`` the
      L1 distance, from ``p1[n, i]`` to its k-th nearest neighbour in ``p2[n]``; ascending in k.
      Padded with 0 where ``i >= lengths1[n]`` or ``k >= lengths2[n]``.
    - ``idx``: (N, P1, K) int64. ``idx[n, i, k] = j`` means ``p2[n, j]`` is the k-th nearest neighbour
      of ``p1[n, i]``; padded with 0 in the same places as ``dists``.
    - ``knn``: (N, P1, K, D) float, the neighbours themselves (``knn_gather(p2, idx, lengths2)``) when
      ``return_nn=True``, else None.
    """

    dists: torch.Tensor
    idx: torch.Tensor
    knn: Optional[torch.Tensor]


def _check_cloud(p: torch.Tensor, name: str, sizes: dict) -> torch.Tensor:
    return check_tensor(p, name, shape=("N", None, "D"), dtype="float", sizes=sizes)


def _check_lengths(lengths: Optional[torch.Tensor], name: str, n: int, p: int, device) -> torch.Tensor:
    """Return ``lengths`` as an int64 (N,) tensor with values in [0, p] (p if None)."""
    if lengths is None:
        return torch.full((n,), p, dtype=torch.int64, device=device)
    check_tensor(lengths, name, shape=(n,), dtype="int")
    if lengths.device != torch.device(device):
        raise ValueError(f"{name}: expected device {device} (the device of the points), got {lengths.device}")
    lengths = lengths.to(torch.int64)
    if lengths.numel() and (int(lengths.min()) < 0 or int(lengths.max()) > p):
        raise ValueError(
            f"{name}: expected values in [0, {p}] (the padded size), "
            f"got min {int(lengths.min())}, max {int(lengths.max())}"
        )
    return lengths


def _valid_mask(lengths: torch.Tensor, p: int) -> torch.Tensor:
    """(N, P) bool, True for the real (unpadded) points."""
    return torch.arange(p, device=lengths.device)[None, :] < lengths[:, None]


def _check_finite_valid(p: torch.Tensor, valid: torch.Tensor, name: str) -> None:
    # Padding is ignored, so only the real points must be finite (padding may hold anything).
    bad = ~torch.isfinite(p).all(-1) & valid
    if bool(bad.any()):
        raise ValueError(f"{name}: expected finite values, got {int(bad.sum())} points with NaN/inf entries")


@torch.no_grad()
def _knn_idx(
    p1: torch.Tensor,
    p2: torch.Tensor,
    lengths2: torch.Tensor,
    norm: int,
    K: int,
    max_chunk_bytes: int,
) -> torch.Tensor:
    """Indices (N, P1, K) of the K nearest valid points of ``p2``, -1 where fewer than K exist.

    Brute force over blocks of (batch, rows); a block's score matrix has at most ``max_chunk_bytes``
    bytes, or is a single row of P2 scores when one row alone is larger. ``p1``/``p2`` must be detached
    with padding already zeroed.
    """
    N, P1, D = p1.shape
    P2 = p2.shape[1]
    out = torch.full((N, P1, K), -1, dtype=torch.int64, device=p1.device)
    if N == 0 or P1 == 0 or P2 == 0:
        return out
    if _KDTREE_CPU and p1.device.type == "cpu" and D <= _KDTREE_MAX_DIM:
        return _kdtree_idx(p1, p2, lengths2, norm, K, out)
    k_eff = min(K, P2)
    item = p1.element_size()
    valid2 = _valid_mask(lengths2, P2)  # (N, P2)
    if norm == 2:
        # Translate both clouds to the centre of the valid p2 points: ranking by
        # |y|^2 - 2 x.y loses precision when the clouds sit far from the origin.
        centre = (p2 * valid2[..., None]).sum(1, keepdim=True) / lengths2.clamp(min=1).to(p2.dtype)[:, None, None]
        p1 = p1 - centre
        p2 = p2 - centre
        sq2 = p2.square().sum(-1)  # (N, P2)
    # On the CPU a block that stays in cache (a few MB) is faster than a large one: the score block is
    # written by the matmul and read straight back by the min/topk.
    budget = min(max_chunk_bytes, _CPU_BLOCK_BYTES) if p1.device.type == "cpu" else max_chunk_bytes
    # Blocks cover whole rows of p2; split the batch only when one row per cloud is already too big.
    row_bytes = P2 * item
    nb = max(1, min(N, budget // max(row_bytes, 1)))
    for b0 in range(0, N, nb):
        b1 = min(N, b0 + nb)
        rows = max(1, budget // max((b1 - b0) * row_bytes, 1))
        y = p2[b0:b1]
        yt = y.transpose(1, 2).contiguous()
        invalid = ~valid2[b0:b1, None, :]  # (b, 1, P2)
        any_invalid = bool(invalid.any())
        for r0 in range(0, P1, rows):
            r1 = min(P1, r0 + rows)
            x = p1[b0:b1, r0:r1]
            if norm == 2:
                # |x|^2 is constant along a row, so it does not change the ranking: leave it out.
                score = torch.baddbmm(sq2[b0:b1, None, :], x, yt, alpha=-2.0)
            else:
                score = torch.cdist(x, y, p=1.0)
            if any_invalid:
                score.masked_fill_(invalid, float("inf"))
            if k_eff == 1:
                val, idx = score.min(dim=2, keepdim=True)
            else:
                val, idx = score.topk(k_eff, dim=2, largest=False, sorted=True)
            if any_invalid:
                idx.masked_fill_(torch.isinf(val), -1)
            out[b0:b1, r0:r1, :k_eff] = idx
    return out


def _kdtree_idx(p1: torch.Tensor, p2: torch.Tensor, lengths2: torch.Tensor, norm: int, K: int,
                out: torch.Tensor) -> torch.Tensor:
    """:func:`_knn_idx` through one ``cKDTree`` per cloud of ``p2``, queried on all cores. Fills ``out``."""
    from scipy.spatial import cKDTree  # imported here: only the CPU search needs it

    a = p1.to(torch.float64).numpy()
    b = p2.to(torch.float64).numpy()
    for n, m in enumerate(lengths2.tolist()):
        k = min(K, m)
        if k == 0:
            continue
        _, idx = cKDTree(b[n, :m]).query(a[n], k=k, p=float(norm), workers=-1)
        out[n, :, :k] = torch.from_numpy(idx.reshape(a.shape[1], k))
    return out


def knn_gather(x: torch.Tensor, idx: torch.Tensor, lengths: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Gather neighbour features: ``out[n, i, k] = x[n, idx[n, i, k]]``.

    Args:
        x: (N, P2, C) float features of the second cloud.
        idx: (N, P1, K) int64 indices into ``x`` (as returned by :func:`knn_points`).
        lengths: optional (N,) int64 lengths of the clouds in ``x``; slots with ``k >= lengths[n]``
            (no k-th neighbour exists) are filled with 0, as PyTorch3D does.

    Returns:
        (N, P1, K, C), differentiable with respect to ``x``.
    """
    sizes: dict = {}
    check_tensor(x, "x", shape=("N", None, None), sizes=sizes)
    check_tensor(idx, "idx", shape=("N", None, None), dtype="int", sizes=sizes)
    check_same_device(x=x, idx=idx)
    N, P2, C = x.shape
    _, P1, K = idx.shape
    if P2 == 0:
        # Nothing to gather from (PyTorch3D pads idx with 0 even then): every slot is padding.
        if idx.numel() and bool((idx != 0).any()):
            raise ValueError("idx: expected only the padding index 0 when x has no points, got other values")
        return x.new_zeros((N, P1, K, C))
    check_index_range(idx, "idx", P2)
    idx = idx.to(torch.int64)
    out = torch.gather(x, 1, idx.reshape(N, P1 * K, 1).expand(N, P1 * K, C)).reshape(N, P1, K, C)
    if lengths is not None:
        lengths = _check_lengths(lengths, "lengths", N, P2, x.device)
        missing = lengths[:, None, None] <= torch.arange(K, device=x.device)[None, None, :]  # (N, 1, K)
        out = out.masked_fill(missing[..., None], 0.0)
    return out


def knn_points(
    p1: torch.Tensor,
    p2: torch.Tensor,
    lengths1: Optional[torch.Tensor] = None,
    lengths2: Optional[torch.Tensor] = None,
    norm: int = 2,
    K: int = 1,
    return_nn: bool = False,
    return_sorted: bool = True,
    *,
    max_chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> KNN:
    """K nearest neighbours in ``p2`` of every point of ``p1``, cloud by cloud (PyTorch3D's semantics).

    Args:
        p1: (N, P1, D) float, padded batch of query clouds.
        p2: (N, P2, D) float, padded batch of reference clouds (same N, D, dtype, device).
        lengths1: optional (N,) int64 in [0, P1], real points per cloud of ``p1`` (default all P1).
        lengths2: optional (N,) int64 in [0, P2], real points per cloud of ``p2`` (default all P2).
            Padded points are never returned as neighbours and their values are ignored.
        norm: 2 for squared Euclidean distances, 1 for L1 distances.
        K: number of neighbours (>= 1).
        return_nn: also return the neighbour coordinates (N, P1, K, D).
        return_sorted: accepted for PyTorch3D compatibility; neighbours are always sorted near to far.
        max_chunk_bytes: upper bound on the bytes of one block of the distance matrix during a brute-force
            search (a block is never less than one row of P2 distances). On the CPU blocks are further
            kept to 4 MB, which stays in cache and is faster.

    Returns:
        :class:`KNN` ``(dists, idx, knn)``. ``dists`` and ``knn`` are differentiable with respect to
        ``p1`` and ``p2``; the choice of neighbours is piecewise constant and carries no gradient.
        On the CPU (D <= 8) the search is a k-d tree in float64; elsewhere it ranks Euclidean candidates
        by ``|y|^2 - 2 x.y`` (on clouds centred on ``p2``). Among distances equal up to rounding the
        choice is unspecified; the returned ``dists`` are always the exact distances to the chosen points.
    """
    sizes: dict = {}
    _check_cloud(p1, "p1", sizes)
    _check_cloud(p2, "p2", sizes)
    check_same_device(p1=p1, p2=p2)
    if p1.dtype != p2.dtype:
        raise TypeError(f"p2: expected dtype {p1.dtype} (the dtype of p1), got {p2.dtype}")
    check_choice(norm, "norm", (1, 2))
    K = check_int(K, "K", min=1)
    max_chunk_bytes = check_int(max_chunk_bytes, "max_chunk_bytes", min=1)
    N, P1, D = p1.shape
    P2 = p2.shape[1]
    lengths1 = _check_lengths(lengths1, "lengths1", N, P1, p1.device)
    lengths2 = _check_lengths(lengths2, "lengths2", N, P2, p2.device)
    valid1 = _valid_mask(lengths1, P1)
    valid2 = _valid_mask(lengths2, P2)
    _check_finite_valid(p1, valid1, "p1")
    _check_finite_valid(p2, valid2, "p2")
    return _knn(p1, p2, valid1, valid2, lengths2, norm, K, return_nn, max_chunk_bytes)


def _knn(
    p1: torch.Tensor,
    p2: torch.Tensor,
    valid1: torch.Tensor,
    valid2: torch.Tensor,
    lengths2: torch.Tensor,
    norm: int,
    K: int,
    return_nn: bool,
    max_chunk_bytes: int,
) -> KNN:
    """:func:`knn_points` after validation (used by the chamfer distance)."""
    # Zero the padding so that garbage (even NaN) there cannot leak into values or gradients.
    p1 = torch.where(valid1[..., None], p1, p1.new_zeros(()))
    p2 = torch.where(valid2[..., None], p2, p2.new_zeros(()))
    # Search only up to the longest real cloud on each side: the rest is padding in every cloud.
    m1 = int(valid1.sum(1).max()) if valid1.numel() else 0
    m2 = int(valid2.sum(1).max()) if valid2.numel() else 0
    raw = torch.full(valid1.shape + (K,), -1, dtype=torch.int64, device=p1.device)
    raw[:, :m1] = _knn_idx(p1[:, :m1].detach(), p2[:, :m2].detach(), lengths2, norm, K, max_chunk_bytes)
    found = (raw >= 0) & valid1[..., None]  # (N, P1, K)
    idx = torch.where(found, raw, raw.new_zeros(()))
    nn, dists = _dists_from_idx(p1, p2, idx, norm)
    dists = torch.where(found, dists, dists.new_zeros(()))
    knn = nn.masked_fill(~found[..., None], 0.0) if return_nn else None
    return KNN(dists, idx, knn)


def _dists_from_idx(p1: torch.Tensor, p2: torch.Tensor, idx: torch.Tensor, norm: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Neighbours (N, P1, K, D) and their differentiable distances (N, P1, K) from chosen indices."""
    N, P1, K = idx.shape
    D = p2.shape[2]
    if p2.shape[1] == 0:
        nn = p2.new_zeros((N, P1, K, D))
    else:
        nn = torch.gather(p2, 1, idx.reshape(N, P1 * K, 1).expand(N, P1 * K, D)).reshape(N, P1, K, D)
    diff = p1[:, :, None, :] - nn
    dists = diff.square().sum(-1) if norm == 2 else diff.abs().sum(-1)
    return nn, dists
