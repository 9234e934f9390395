"""Chamfer distance between batches of point clouds (PyTorch3D's ``chamfer_distance``)."""
from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F

from .._validation import check_choice, check_same_device, check_tensor
from .knn import DEFAULT_CHUNK_BYTES, _check_finite_valid, _check_lengths, _knn, _valid_mask

__all__ = ["chamfer_distance"]

Cloud = Union[torch.Tensor, Sequence[torch.Tensor], Any]


def _pad_list(items: Sequence[Any], name: str) -> Tuple[torch.Tensor, torch.Tensor]:
    """Stack a list of (P_i, C) tensors into (N, max P_i, C) padded with 0, plus (N,) lengths."""
    if len(items) == 0:
        raise ValueError(f"{name}: expected a non-empty list of (P_i, D) tensors, got an empty list")
    sizes: dict = {}
    for i, t in enumerate(items):
        check_tensor(t, f"{name}[{i}]", shape=(None, "D"), dtype="float", sizes=sizes)
    check_same_device(**{f"{name}[{i}]": t for i, t in enumerate(items)})
    dtypes = {t.dtype for t in items}
    if len(dtypes) > 1:
        raise TypeError(f"{name}: expected one dtype for every tensor, got {sorted(map(str, dtypes))}")
    lengths = torch.tensor([t.shape[0] for t in items], dtype=torch.int64, device=items[0].device)
    padded = torch.nn.utils.rnn.pad_sequence(list(items), batch_first=True, padding_value=0.0)
    return padded, lengths


def _handle_cloud(points: Cloud, lengths, normals, name: str):
    """Normalise one chamfer argument to (points (N, P, D), lengths (N,) or None, normals or None)."""
    if hasattr(points, "points_padded") and hasattr(points, "num_points_per_cloud"):
        # A Pointclouds-like object: its own lengths and normals win, as in PyTorch3D.
        if lengths is not None:
            raise ValueError(f"{name}_lengths: expected None when {name} is a point-cloud object, got a tensor")
        X = points.points_padded()
        lengths = points.num_points_per_cloud()
        if normals is None and hasattr(points, "normals_padded"):
            normals = points.normals_padded()
        return X, lengths, normals
    if isinstance(points, (list, tuple)):
        if lengths is not None:
            raise ValueError(
                f"{name}_lengths: expected None when {name} is a list (the lengths come from the list), got a tensor"
            )
        X, lengths = _pad_list(points, name)
        if isinstance(normals, (list, tuple)):
            if [n.shape[0] if isinstance(n, torch.Tensor) else None for n in normals] != lengths.tolist():
                raise ValueError(f"{name}_normals: expected one (P_i, C) tensor per cloud of {name}, with the same P_i")
            normals, _ = _pad_list(normals, f"{name}_normals")
        return X, lengths, normals
    check_tensor(points, name, ndim=3, dtype="float")
    return points, lengths, normals


def chamfer_distance(
    x: Cloud,
    y: Cloud,
    x_lengths: Optional[torch.Tensor] = None,
    y_lengths: Optional[torch.Tensor] = None,
    x_normals: Optional[torch.Tensor] = None,
    y_normals: Optional[torch.Tensor] = None,
    weights: Optional[torch.Tensor] = None,
    batch_reduction: Optional[str] = "mean",
    point_reduction: Optional[str] = "mean",
    norm: int = 2,
    single_directional: bool = False,
    abs_cosine: bool = True,
    *,
    max_chunk_bytes: int = DEFAULT_CHUNK_BYTES,
):
    """Chamfer distance between two batches of point clouds, with PyTorch3D's definition and defaults.

    For each real point of ``x[n]`` take its nearest neighbour in ``y[n]`` (squared Euclidean distance
    for ``norm=2``, L1 distance for ``norm=1``); ``cham_x[n, i]`` is that distance. Likewise
    ``cham_y`` from ``y`` to ``x``. With normals, ``cham_norm_x[n, i] = 1 - |cos(x_normals[n, i],
    y_normals[n, j])|`` for the same neighbour ``j`` (``1 - cos`` if ``abs_cosine=False``).
    Then, per cloud: ``point_reduction="mean"`` averages over its real points, ``"sum"`` sums, ``"max"``
    takes the largest (the Hausdorff distance for ``norm=2`` is its square root), None keeps every point;
    the two directions are added (``"max"``: the larger of the two is kept). Finally
    ``batch_reduction="mean"`` averages over the N clouds (weighted by ``weights`` if given: divided by
    ``weights.sum()``), ``"sum"`` sums, None keeps (N,).

    The nearest-neighbour search is brute force in blocks of at most ``max_chunk_bytes`` bytes, so two
    100k-point clouds never allocate a 100k x 100k matrix; the distances are then recomputed from the
    chosen pairs, so gradients are exact (with respect to both clouds and the normals).

    Args:
        x: (N, P1, D) float padded clouds, or a list of N (P_i, D) tensors, or a Pointclouds-like object
            (``points_padded()``, ``num_points_per_cloud()``, ``normals_padded()``).
        y: (N, P2, D) float, same forms, same N, D, dtype and device.
        x_lengths: optional (N,) int64 in [0, P1]: real points per cloud of a padded ``x``
            (default: all P1). Padded points are ignored, whatever they hold.
        y_lengths: optional (N,) int64 in [0, P2], likewise for ``y``.
        x_normals: optional (N, P1, C) float normals of ``x`` (or a list when ``x`` is a list).
        y_normals: optional (N, P2, C) float normals of ``y``; give both normals or neither.
        weights: optional (N,) float >= 0, per-cloud weights applied before the reductions.
        batch_reduction: "mean" | "sum" | None.
        point_reduction: "mean" | "sum" | "max" | None (None requires ``batch_reduction=None``;
            "max" allows no normals).
        norm: 2 (squared Euclidean) or 1 (L1).
        single_directional: if True only the x -> y term is computed.
        abs_cosine: if True (default) opposite normals count as equal.
        max_chunk_bytes: bound on one block of the distance matrix during the search.

    Returns:
        ``(loss, loss_normals)``. ``loss`` is a scalar for a batch reduction, (N,) without one, and with
        ``point_reduction=None`` the per-point terms: a pair ``(cham_x (N, P1), cham_y (N, P2))``, or
        ``cham_x`` alone if ``single_directional`` (0 at padded points). ``loss_normals`` has the same
        form, or is None when no normals are given. A cloud whose partner is empty contributes 0 to
        ``loss`` (and 1 per point to ``loss_normals``: its neighbour normal is 0, as in PyTorch3D).
    """
    if batch_reduction is not None:
        check_choice(batch_reduction, "batch_reduction", ("mean", "sum", None))
    if point_reduction is not None:
        check_choice(point_reduction, "point_reduction", ("mean", "sum", "max", None))
    if point_reduction is None and batch_reduction is not None:
        raise ValueError(
            f"batch_reduction: expected None when point_reduction is None, got {batch_reduction!r}"
        )
    check_choice(norm, "norm", (1, 2))
    if not isinstance(single_directional, bool):
        raise TypeError(f"single_directional: expected a bool, got {type(single_directional).__name__}")
    if not isinstance(abs_cosine, bool):
        raise TypeError(f"abs_cosine: expected a bool, got {type(abs_cosine).__name__}")

    x, x_lengths, x_normals = _handle_cloud(x, x_lengths, x_normals, "x")
    y, y_lengths, y_normals = _handle_cloud(y, y_lengths, y_normals, "y")
    sizes: dict = {}
    check_tensor(x, "x", shape=("N", "P1", "D"), dtype="float", sizes=sizes)
    check_tensor(y, "y", shape=("N", "P2", "D"), dtype="float", sizes=sizes)
    check_same_device(x=x, y=y, x_lengths=x_lengths, y_lengths=y_lengths,
                      x_normals=x_normals, y_normals=y_normals, weights=weights)
    if y.dtype != x.dtype:
        raise TypeError(f"y: expected dtype {x.dtype} (the dtype of x), got {y.dtype}")
    N, P1, _ = x.shape
    P2 = y.shape[1]
    x_lengths = _check_lengths(x_lengths, "x_lengths", N, P1, x.device)
    y_lengths = _check_lengths(y_lengths, "y_lengths", N, P2, y.device)
    x_valid = _valid_mask(x_lengths, P1)
    y_valid = _valid_mask(y_lengths, P2)
    _check_finite_valid(x, x_valid, "x")
    _check_finite_valid(y, y_valid, "y")

    if (x_normals is None) != (y_normals is None):
        given = "x_normals" if x_normals is not None else "y_normals"
        missing = "y_normals" if x_normals is not None else "x_normals"
        raise ValueError(f"{missing}: expected a tensor because {given} was given (give both or neither), got None")
    with_normals = x_normals is not None
    if with_normals:
        if point_reduction == "max":
            raise ValueError('x_normals: expected None when point_reduction is "max", got a tensor')
        check_tensor(x_normals, "x_normals", shape=("N", "P1", "C"), dtype="float", sizes=sizes)
        check_tensor(y_normals, "y_normals", shape=("N", "P2", "C"), dtype="float", sizes=sizes)
        _check_finite_valid(x_normals, x_valid, "x_normals")
        _check_finite_valid(y_normals, y_valid, "y_normals")
    if weights is not None:
        check_tensor(weights, "weights", shape=("N",), dtype="float", finite=True, sizes=sizes)
        if bool((weights < 0).any()):
            raise ValueError(f"weights: expected values >= 0, got min {float(weights.min())}")

    def one_way(a, b, a_len, a_valid, b_valid, b_len, a_nrm, b_nrm):
        nn = _knn(a, b, a_valid, b_valid, b_len, norm, 1, False, max_chunk_bytes)
        cham = nn.dists[..., 0]  # (N, Pa), 0 at padding
        cham_n = None
        if with_normals:
            b_nrm = torch.where(b_valid[..., None], b_nrm, b_nrm.new_zeros(()))
            found = (b_len > 0)[:, None, None]
            near = torch.gather(b_nrm, 1, nn.idx.expand(-1, -1, b_nrm.shape[2])) if b_nrm.shape[1] else \
                b_nrm.new_zeros(a_nrm.shape)
            near = torch.where(found, near, near.new_zeros(()))
            a_nrm = torch.where(a_valid[..., None], a_nrm, a_nrm.new_zeros(()))
            cos = F.cosine_similarity(a_nrm, near, dim=2, eps=1e-6)
            cham_n = 1.0 - (cos.abs() if abs_cosine else cos)
            cham_n = torch.where(a_valid, cham_n, cham_n.new_zeros(()))
        if weights is not None:
            cham = cham * weights[:, None]
            cham_n = cham_n * weights[:, None] if cham_n is not None else None
        if point_reduction is None:
            return cham, cham_n
        if point_reduction == "max":
            red = cham.max(1).values if cham.shape[1] else cham.new_zeros((N,))
            return red, None
        red = cham.sum(1)
        red_n = cham_n.sum(1) if cham_n is not None else None
        if point_reduction == "mean":
            div = a_len.clamp(min=1).to(red.dtype)
            red = red / div
            red_n = red_n / div if red_n is not None else None
        return red, red_n

    cx, cnx = one_way(x, y, x_lengths, x_valid, y_valid, y_lengths, x_normals, y_normals)
    if single_directional:
        loss, loss_n = cx, cnx
    else:
        cy, cny = one_way(y, x, y_lengths, y_valid, x_valid, x_lengths, y_normals, x_normals)
        if point_reduction is None:
            return (cx, cy), ((cnx, cny) if with_normals else None)
        loss = torch.maximum(cx, cy) if point_reduction == "max" else cx + cy
        loss_n = cnx + cny if with_normals else None
    if point_reduction is None or batch_reduction is None:
        return loss, loss_n
    loss = loss.sum()
    loss_n = loss_n.sum() if loss_n is not None else None
    if batch_reduction == "mean":
        if weights is None:
            div = max(N, 1)
        else:
            # All-zero weights give a zero loss (PyTorch3D returns zeros there too), not 0 / 0.
            total = weights.sum()
            div = torch.where(total > 0, total, torch.ones_like(total))
        loss = loss / div
        loss_n = loss_n / div if loss_n is not None else None
    return loss, loss_n
