"""Conversions between the list, padded and packed layouts of a batch of variable-size tensors.

A batch of N items with ``n_i`` rows each (vertices, faces, points) has three layouts
(symbols of ``docs/conventions.md``, ``V`` here standing for any per-item row count):

- **list**: ``[x_0, ..., x_{N-1}]``, ``x_i`` of shape ``(n_i, *)``;
- **padded**: ``(N, max n_i, *)``, rows past ``n_i`` filled with a pad value;
- **packed**: ``(sum n_i, *)``, the items concatenated in batch order.

Every function here is vectorised over rows (a Python loop over the N items at most) and
differentiable with respect to the floating values it moves.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Union

import torch

__all__ = [
    "list_to_packed",
    "list_to_padded",
    "packed_to_list",
    "packed_to_padded",
    "padded_to_list",
    "padded_to_packed",
]


def _default_device(device=None) -> torch.device:
    # The device a factory function would use when nothing tells us otherwise.
    return torch.empty(0, device=device).device


def first_index(counts: torch.Tensor) -> torch.Tensor:
    """(N,) int64 counts -> (N,) index of each item's first row in the packed layout."""
    return torch.cumsum(counts, 0) - counts


def segment_ids(counts: torch.Tensor, total: Optional[int] = None) -> torch.Tensor:
    """(N,) int64 counts -> (sum counts,) index of the item every packed row belongs to."""
    ids = torch.arange(counts.shape[0], device=counts.device)
    if total is None:
        return torch.repeat_interleave(ids, counts)
    return torch.repeat_interleave(ids, counts, output_size=total)


def segment_gather_index(counts: torch.Tensor, select: torch.Tensor, total: Optional[int] = None) -> torch.Tensor:
    """Packed row indices of the items ``select`` (in that order, repeats allowed).

    Args:
        counts: (N,) int64 rows per item.
        select: (M,) int64 item indices in ``[0, N)``.
        total: ``int(counts[select].sum())`` if already known (saves a device sync).
    Returns:
        (sum counts[select],) int64 indices into the packed rows of the N items.
    """
    first = first_index(counts)
    c = counts[select]
    new_first = first_index(c)
    ids = segment_ids(c, total)
    rows = torch.arange(ids.shape[0], device=counts.device)
    return rows + (first[select] - new_first)[ids]


def padded_index(counts: torch.Tensor, max_count: int, total: Optional[int] = None) -> torch.Tensor:
    """(sum counts,) flat index into ``(N * max_count)`` of every packed row's padded position."""
    ids = segment_ids(counts, total)
    rows = torch.arange(ids.shape[0], device=counts.device)
    return ids * max_count + (rows - first_index(counts)[ids])


def packed_to_padded(
    x: torch.Tensor, counts: torch.Tensor, max_count: Optional[int] = None, pad_value: float = 0.0
) -> torch.Tensor:
    """Packed ``(sum n_i, *)`` -> padded ``(N, max_count, *)`` filled with ``pad_value``.

    ``max_count`` defaults to ``max n_i`` (0 for an empty batch).
    """
    n = counts.shape[0]
    if max_count is None:
        max_count = int(counts.max()) if n else 0
    out = x.new_full((n * max_count,) + tuple(x.shape[1:]), pad_value)
    if x.shape[0]:
        # index_put (out of place) keeps gradients flowing to the packed values.
        out = out.index_put((padded_index(counts, max_count, x.shape[0]),), x)
    return out.view((n, max_count) + tuple(x.shape[1:]))


def padded_to_packed(x: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Padded ``(N, M, *)`` -> packed ``(sum n_i, *)``, keeping the first ``n_i`` rows of item i."""
    n, m = x.shape[:2]
    flat = x.reshape((n * m,) + tuple(x.shape[2:]))
    if bool((counts == m).all()):
        return flat
    return flat[padded_index(counts, m)]


def packed_to_list(x: torch.Tensor, split_sizes: Sequence[int]) -> List[torch.Tensor]:
    """Packed ``(sum n_i, *)`` -> list of ``(n_i, *)`` views (no copy)."""
    return list(torch.split(x, list(split_sizes), dim=0))


def list_to_packed(xs: Sequence[torch.Tensor]) -> torch.Tensor:
    """List of ``(n_i, *)`` tensors (same trailing shape) -> packed ``(sum n_i, *)``."""
    if len(xs) == 0:
        raise ValueError("xs: expected a non-empty list, got an empty list")
    return torch.cat(list(xs), dim=0)


def list_to_padded(
    xs: Sequence[torch.Tensor], max_count: Optional[int] = None, pad_value: float = 0.0
) -> torch.Tensor:
    """List of ``(n_i, *)`` tensors -> padded ``(N, max_count, *)``."""
    if len(xs) == 0:
        raise ValueError("xs: expected a non-empty list, got an empty list")
    counts = torch.tensor([x.shape[0] for x in xs], dtype=torch.int64, device=xs[0].device)
    return packed_to_padded(torch.cat(list(xs), 0), counts, max_count, pad_value)


def padded_to_list(x: torch.Tensor, split_sizes: Union[Sequence[int], None] = None) -> List[torch.Tensor]:
    """Padded ``(N, M, *)`` -> list of ``(n_i, *)`` views, ``n_i = split_sizes[i]`` (default M)."""
    if split_sizes is None:
        return list(x.unbind(0))
    if len(split_sizes) != x.shape[0]:
        raise ValueError(f"split_sizes: expected length {x.shape[0]}, got {len(split_sizes)}")
    return [x[i, : int(s)] for i, s in enumerate(split_sizes)]
