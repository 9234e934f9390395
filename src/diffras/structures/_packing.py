"""Conversions between the list, padded and packed layouts of a batch of variable-size tensors.

A batch of N items with ``n_i`` rows each (vertices, faces, points) has three layouts
(symbols of ``docs/conventions.md``, ``V`` here standing for any per-item row count):

- **list**: ``[x_0, ..., x_{N-1}]``, ``x_i`` of shape ``(n_i, *)``;
- **padded**: ``(N, max n_i, *)``, rows past ``n_i`` filled with a pad value;
- **packed**: ``(sum n_i, *)``, the items concatenated in batch order.

Every function here is vectorised over rows and differentiable with respect to the floating values
it moves.
"""
from __future__ import annotations

from typing import Optional

import torch

# Internal helpers: the names are PyTorch3D-like but the signatures are not PyTorch3D's, so they are not
# re-exported from ``diffras.structures`` (a public name promising PyTorch3D semantics must deliver them).
__all__ = [
    "first_index",
    "packed_to_padded",
    "padded_index",
    "segment_gather_index",
    "segment_ids",
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
