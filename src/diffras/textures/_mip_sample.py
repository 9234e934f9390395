"""Fused CPU mip-mapped sampling of maps that require grad: the pyramid build and the sampling in one
autograd Function (private; ``mipmap.sample_pyramid`` uses it for CPU float32/float64 tensors of one dtype).

Why: with a (1024, 1024, 3) map the pyramid table holds T = 1.4M rows (16.7 MiB), and the separate
``_PyramidTable`` + ``_FusedSample`` pair copies the map into a fresh table, accumulates into a fresh
(T, C) gradient and hands that whole table gradient to the pyramid's backward: the cost is mostly the
size of these buffers (page faults of fresh memory, copies), not the taps. Here

- a cheap pass over the points weighs, per image and level, the taps the points put there
  (``_sample_numba.level_weights``, the trilinear weights 1 - t and t exactly as the sampling kernel computes
  them): per map, the lowest level l_lo any tap reads, and the balance of the backward's row parts;
- the forward stores only levels l_lo and up (levels below are temporaries on the way down), and the first
  map's level 0, when read, is read in place from the map rather than copied into the table;
- the backward accumulates the taps into a buffer of rows [0, T) of that table only (``sample_backward``:
  parallel parts split by rows, between levels where that balances them, or by points when they outnumber
  half the rows), then runs
  the pyramid adjoint from the top level down to l_lo and from there to level 0 in one pass
  (``_pyramid_numba.table_adjoint``), writing each map's gradient once.

Measured on the textured Spot cow (1 view, 256^2, K = 8): fragments with no neighbour (lod -inf) and
magnified ones read level 0, so l_lo = 0 there and the win is the forward's skipped copy; l_lo > 0 (the
buffers shrink to the coarse levels) when every fragment is minified, e.g. a distant or small object.

Values and gradients are those of ``texel_table`` + ``sample_points`` (tests compare them with the torch
path and run gradcheck in float64).
"""
from __future__ import annotations

from typing import List, Sequence

import numpy as np
import torch
from torch.autograd.function import once_differentiable

from ._pyramid_numba import build_table, level_layout, level_sizes, table_adjoint
from ._sample_numba import MODES, level_weights, run_forward, sample_backward


def lowest_levels(weights: np.ndarray, rows: Sequence[int], sizes: Sequence[list]) -> List[int]:
    """Per unique map, the lowest level any point samples (its top level if no point samples it), from the
    points' (N, L) :func:`_sample_numba.level_weights` (image n samples map ``rows[n]``)."""
    lowest = [len(lv) - 1 for lv in sizes]
    for n, r in enumerate(rows):
        read = np.nonzero(weights[n])[0]
        if len(read):
            lowest[r] = min(lowest[r], int(read[0]))
    return lowest


class _FusedMipSample(torch.autograd.Function):
    @staticmethod
    def forward(ctx, uv, map_idx, lod, rows, mode, ac, nearest, *maps):
        u = uv.detach().contiguous()
        idx = map_idx.contiguous()
        sizes = [level_sizes(int(m.shape[0]), int(m.shape[1])) for m in maps]
        L = max(len(lv) for lv in sizes)
        use_lod = lod is not None and L > 1
        lo = lod.detach().to(u.dtype).contiguous() if use_lod else u.new_zeros((1,))
        nlev = np.array([len(sizes[r]) for r in rows], dtype=np.int64)
        weights = level_weights(lo, use_lod, idx, nlev)  # (N, L): also balances the backward's parts
        lowest = lowest_levels(weights, rows, sizes)
        offsets, T = level_layout(sizes, lowest)
        # The first map's level 0, when sampled, is read in place (rows [0, Ht Wt) of the table).
        base = maps[0].detach().reshape(-1, maps[0].shape[-1]).contiguous() if lowest[0] == 0 else None
        table = build_table(maps, sizes, lowest, offsets, T, 0 if base is None else base.shape[0])
        # Per image (N, L) placement; levels past a small map's last one repeat the last (never read).
        pad = lambda x: x + x[-1:] * (L - len(x))  # noqa: E731
        t = lambda x: torch.tensor(x, dtype=torch.int64)  # noqa: E731
        meta = [t([pad(offsets[r]) for r in rows]), t([pad([h for h, _ in sizes[r]]) for r in rows]),
                t([pad([w for _, w in sizes[r]]) for r in rows]), torch.from_numpy(nlev)]
        out = run_forward(table, u, idx, lo, use_lod, meta, mode, ac, nearest, base)
        # base is a detached view of an input: saving it keeps autograd's check against in-place edits.
        ctx.save_for_backward(table, u, idx, lo, base, *meta)
        ctx.layout = (sizes, lowest, offsets)
        ctx.flags = (use_lod, mode, ac, nearest)
        ctx.weights = weights
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, g_out):
        table, u, idx, lo, base, *meta = ctx.saved_tensors
        sizes, lowest, offsets = ctx.layout
        use_lod, mode, ac, nearest = ctx.flags
        need_maps = ctx.needs_input_grad[7:]
        need_tex, need_uv = any(need_maps), ctx.needs_input_grad[0] and not nearest
        g_tex, g_uv = sample_backward(table, u, idx, lo, use_lod, meta, mode, ac, nearest, g_out, need_tex, need_uv,
                                      base, ctx.weights)
        g_maps = [None] * len(sizes)
        if need_tex:
            for i, gm in enumerate(table_adjoint(g_tex, sizes, lowest, offsets)):
                if need_maps[i]:
                    g_maps[i] = torch.from_numpy(gm).view(sizes[i][0][0], sizes[i][0][1], -1)
        gu = torch.from_numpy(g_uv) if need_uv else None
        return (gu, None, None, None, None, None, None, *g_maps)


def fused_mip_sample(maps: Sequence[torch.Tensor], rows: Sequence[int], map_idx: torch.Tensor, uv: torch.Tensor,
                     lod, padding_mode: str, align_corners: bool, sampling_mode: str) -> torch.Tensor:
    """(P, C) ``sample_points(texel_table(...), ...)`` for CPU tensors of one float dtype: ``maps`` the distinct
    (Ht_i, Wt_i, C) maps, ``rows`` (N,) which of them image n samples, ``map_idx`` (P,) the image of every
    point, ``uv`` (P, 2), ``lod`` (P,) or None (level 0 only)."""
    return _FusedMipSample.apply(uv, map_idx, lod, list(rows), MODES[padding_mode], bool(align_corners),
                                 sampling_mode == "nearest", *maps)
