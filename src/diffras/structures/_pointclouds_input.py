"""Validation and normalisation of the ``Pointclouds`` constructor inputs (lists or padded tensors) into
the packed storage: ``points_packed`` (sum P, 3), optional ``normals_packed`` (sum P, 3) and
``features_packed`` (sum P, C), and the (N,) int64 point counts."""
from __future__ import annotations

from typing import Any, List, Optional, Tuple

import torch

from .._validation import _describe, check_finite, check_same_device, check_tensor
from ._packing import _default_device, padded_index

__all__ = ["parse_aux", "parse_points"]


def _is_empty_entry(x: Any) -> bool:
    # PyTorch3D accepts any empty tensor (e.g. ``torch.tensor([])``) for a cloud without points.
    return isinstance(x, torch.Tensor) and x.numel() == 0 and x.dim() != 2


def parse_points(points: Any) -> Tuple[torch.Tensor, torch.Tensor]:
    """``points`` (a list of N (P_i, 3) float tensors, or a padded (N, P, 3) float tensor: every cloud
    then has all P points, as in PyTorch3D) -> ``(points_packed (sum P, 3), num_points (N,) int64)``."""
    if isinstance(points, torch.Tensor):
        check_tensor(points, "points", shape=(None, None, 3), dtype="float", finite=True)
        n, p = points.shape[:2]
        return points.reshape(n * p, 3), torch.full((n,), p, dtype=torch.int64, device=points.device)
    if not isinstance(points, (list, tuple)):
        raise TypeError(f"points: expected a list of (P_i, 3) tensors or an (N, P, 3) tensor, got {_describe(points)}")
    if len(points) == 0:
        device = _default_device()
        return torch.empty(0, 3, device=device), torch.empty(0, dtype=torch.int64, device=device)
    rows: List[torch.Tensor] = []
    dtype = None
    for i, p in enumerate(points):
        if not isinstance(p, torch.Tensor):
            raise TypeError(f"points[{i}]: expected a (P_i, 3) tensor, got {_describe(p)}")
        if _is_empty_entry(p):
            p = p.reshape(0, 3)
        check_tensor(p, f"points[{i}]", shape=(None, 3), dtype="float")
        check_same_device(**{"points[0]": points[0], f"points[{i}]": p})
        if dtype is None and p.shape[0]:
            dtype = p.dtype
        rows.append(p)
    dtype = dtype or rows[0].dtype
    for i, p in enumerate(rows):
        if p.shape[0] and p.dtype != dtype:
            raise TypeError(f"points[{i}]: expected dtype {dtype} (the dtype of the other clouds), got {p.dtype}")
    device = rows[0].device
    # One cloud (the common fitting-loop case): keep the caller's tensor, no copy.
    packed = rows[0] if len(rows) == 1 else torch.cat([r.to(dtype) for r in rows], 0)
    check_finite(packed, "points")
    counts = torch.tensor([r.shape[0] for r in rows], dtype=torch.int64, device=device)
    return packed, counts


def parse_aux(
    x: Any, name: str, counts: torch.Tensor, sizes: List[int], width: Optional[int], device: torch.device
) -> Optional[torch.Tensor]:
    """``normals`` / ``features`` (None, a list of N (P_i, C) tensors, or a padded (N, P, C) tensor with
    ``P = max P_i``; rows past P_i ignored) -> packed (sum P, C) or None. ``width`` fixes C (3 for
    normals); entries for clouds without points may be None or any empty tensor."""
    n = len(sizes)
    if x is None:
        return None
    if n == 0:
        return None  # PyTorch3D ignores auxiliary input of an empty batch
    if isinstance(x, torch.Tensor):
        check_tensor(x, name, shape=(n, max(sizes), width), dtype="float", device=device, finite=True)
        flat = x.reshape(-1, x.shape[2])
        if flat.shape[0] != sum(sizes):
            flat = flat[padded_index(counts, max(sizes), sum(sizes))]
        return flat
    if not isinstance(x, (list, tuple)):
        raise TypeError(f"{name}: expected None, a list of (P_i, C) tensors or an (N, P, C) tensor, got {_describe(x)}")
    if len(x) != n:
        raise ValueError(f"{name}: expected a list of length {n} (the number of clouds), got {len(x)}")
    rows: List[Optional[torch.Tensor]] = []
    c = width
    for i, (d, k) in enumerate(zip(x, sizes)):
        if k == 0 and (d is None or (isinstance(d, torch.Tensor) and d.numel() == 0)):
            rows.append(None)
            continue
        check_tensor(d, f"{name}[{i}]", shape=(k, c), dtype="float", device=device, finite=True)
        c = d.shape[1]
        rows.append(d)
    present = [r for r in rows if r is not None]
    if not present:
        # Only empty clouds: nothing tells the channel count unless a 2-D empty entry does.
        shaped = [d for d in x if isinstance(d, torch.Tensor) and d.dim() == 2]
        if not shaped:
            return None
        return shaped[0].new_zeros(0, shaped[0].shape[1])
    dtype = present[0].dtype
    for i, r in enumerate(rows):
        if r is not None and r.dtype != dtype:
            raise TypeError(f"{name}[{i}]: expected dtype {dtype} (the dtype of the other clouds), got {r.dtype}")
    if len(present) == 1:
        return present[0]
    return torch.cat(present, 0)
