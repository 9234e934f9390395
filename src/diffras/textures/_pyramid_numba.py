"""Fused CPU mip pyramids: the texel table of ``mipmap.texel_table`` (every level of every map in one
(T, C) buffer) built by a box-filter kernel, with a hand-written backward that folds the gradient of the
coarse levels back into the map (private; ``mipmap.texel_table`` uses it for CPU float32/float64 maps).

Why: through torch, a map that requires grad costs one ``avg_pool2d`` per level, a ``cat`` copying every
level into the table, and in the backward ``cat``'s split, one ``avg_pool2d_backward`` and one full-size
``add`` per level (a 1024^2 map: ~12 passes over 12 MiB each way, every call). Here the forward writes
each level once into the table and the backward reads each level's gradient once.

Semantics are ``mipmap.build_pyramid``'s exactly: level l + 1 is ``adaptive_avg_pool2d`` of level l to
``max(1, size // 2)`` (output cell i averages input rows ``floor(i H / h)`` to ``ceil((i + 1) H / h) - 1``,
likewise columns; exactly the 2 x 2 boxes of ``avg_pool2d`` for even sizes). Tests compare values and
gradients with the torch path and run gradcheck in float64.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import numba
import numpy as np
import torch
from numba import prange
from torch.autograd.function import once_differentiable


def level_sizes(h: int, w: int) -> List[Tuple[int, int]]:
    """(height, width) of every level of a (h, w) map, as ``mipmap.build_pyramid`` makes them."""
    sizes = [(h, w)]
    while h > 1 or w > 1:
        h, w = max(1, h // 2), max(1, w // 2)
        sizes.append((h, w))
    return sizes


@numba.njit(cache=True, inline="always")
def _span(i, big, small):
    """Input rows [start, end) averaged into output row i (adaptive pooling of ``big`` rows to ``small``)."""
    return (i * big) // small, -((-(i + 1) * big) // small)


@numba.njit(cache=True, parallel=True)
def _down(a, src, H, W, b, dst, h, w):
    """b[dst + i w + j] = mean of the box of the (H x W) level at a[src:] for output (i, j) (``a`` and ``b``
    may be one table: levels never overlap)."""
    C = b.shape[1]
    exact = H == 2 * h and W == 2 * w
    for i in prange(h):
        if exact:  # the common power-of-two case: avg_pool2d's 2 x 2 boxes
            r = src + 2 * i * W
            for j in range(w):
                for c in range(C):
                    s = (a[r + 2 * j, c] + a[r + 2 * j + 1, c]) + (a[r + W + 2 * j, c] + a[r + W + 2 * j + 1, c])
                    b[dst + i * w + j, c] = s / 4
            continue
        r0, r1 = _span(i, H, h)
        for j in range(w):
            c0, c1 = _span(j, W, w)
            count = (r1 - r0) * (c1 - c0)
            for c in range(C):
                s = 0.0
                for y in range(r0, r1):
                    for x in range(c0, c1):
                        s += a[src + y * W + x, c]
                b[dst + i * w + j, c] = s / count


@numba.njit(cache=True, parallel=True)
def _copy(src, table, dst):
    """table[dst + r] = src[r]: level 0 into the table, on all threads (a 1024^2 map is 12 MiB)."""
    for r in prange(src.shape[0]):
        for c in range(src.shape[1]):
            table[dst + r, c] = src[r, c]


@numba.njit(cache=True, parallel=True)
def _up(g_fine, has_fine, g_coarse, H, W, h, w, out):
    """out (H W, C) = g_fine (if ``has_fine``, else 0) + the transposed box filter of g_coarse (h w, C): each
    fine texel receives g / count from every coarse cell whose box holds it (the pooling's backward,
    gathered per texel)."""
    C = out.shape[1]
    exact = H == 2 * h and W == 2 * w
    for y in prange(H):
        for x in range(W):
            if exact:  # the common power-of-two case: one 2 x 2 box per texel
                q = (y // 2) * w + x // 2
                for c in range(C):
                    f = g_fine[y * W + x, c] if has_fine else 0.0
                    out[y * W + x, c] = f + g_coarse[q, c] * 0.25
                continue
            for c in range(C):
                out[y * W + x, c] = g_fine[y * W + x, c] if has_fine else 0.0
            # Boxes of adaptive pooling overlap by at most one row/column: the cells near y h / H and x w / W.
            ic = (y * h) // H
            jc = (x * w) // W
            for i in range(max(0, ic - 1), min(h, ic + 2)):
                r0, r1 = _span(i, H, h)
                if y < r0 or y >= r1:
                    continue
                for j in range(max(0, jc - 1), min(w, jc + 2)):
                    c0, c1 = _span(j, W, w)
                    if x < c0 or x >= c1:
                        continue
                    count = (r1 - r0) * (c1 - c0)
                    for c in range(C):
                        out[y * W + x, c] += g_coarse[i * w + j, c] / count


@numba.njit(cache=True, parallel=True)
def _up_pow2(g_coarse, H, W, w, k, out):
    """out (H W, C) = k transposed 2 x 2 box filters of g_coarse ((H >> k) x w, C, with W = w << k): every
    texel of the fine level lies in one box per level, so it receives g / 4^k of the coarse cell above it.
    One pass instead of k (no intermediate level is written)."""
    C = out.shape[1]
    s = 0.25 ** k
    for y in prange(H):
        q = (y >> k) * w
        for x in range(W):
            for c in range(C):
                out[y * W + x, c] = g_coarse[q + (x >> k), c] * s


def level_layout(sizes: Sequence[List[Tuple[int, int]]], lowest: Sequence[int]) -> Tuple[List[List[int]], int]:
    """Table rows of a pyramid table holding levels ``lowest[i]`` and up of map i (``sizes[i]`` its levels, from
    :func:`level_sizes`): per map the first row of each level (levels below ``lowest[i]`` are not stored and
    repeat level ``lowest[i]``'s offset; nothing reads them), and the total rows T."""
    offsets, start = [], 0
    for lv, lo in zip(sizes, lowest):
        o = [0] * len(lv)
        for l in range(lo, len(lv)):
            o[l] = start
            start += lv[l][0] * lv[l][1]
        for l in range(lo):
            o[l] = o[lo]
        offsets.append(o)
    return offsets, start


def build_table(maps: Sequence[torch.Tensor], sizes, lowest: Sequence[int], offsets, T: int, skip: int = 0
                ) -> torch.Tensor:
    """(T - skip, C): rows [skip, T) of the table of :func:`level_layout` (levels ``lowest[i]`` and up of every
    map's pyramid; no gradient). Levels below ``lowest[i]`` are built only as the temporaries that lead to it
    (level 0 is read in place). ``skip``: 0, or the size of the first map's level 0 (the caller reads that
    map in place instead of a copy: a fresh buffer's page faults cost more than the copy itself)."""
    C = int(maps[0].shape[-1])
    table = torch.empty((T - skip, C), dtype=maps[0].dtype)
    tn = table.numpy()
    for i, (m, o, lv, lo) in enumerate(zip(maps, offsets, sizes, lowest)):
        h0, w0 = lv[0]
        a, a_off = m.detach().reshape(h0 * w0, C).numpy(), 0
        if lo == 0 and not (i == 0 and skip):
            _copy(a, tn, o[0] - skip)
        for l in range(1, len(lv)):
            (H, W), (h, w) = lv[l - 1], lv[l]
            if l < lo:
                b, b_off = np.empty((h * w, C), dtype=tn.dtype), 0
            else:
                b, b_off = tn, o[l] - skip
            _down(a, a_off, H, W, b, b_off, h, w)
            a, a_off = b, b_off
    return table


def table_adjoint(g: np.ndarray, sizes, lowest: Sequence[int], offsets) -> List[np.ndarray]:
    """The maps' gradients (each (Ht_i Wt_i, C), fresh arrays) from the gradient ``g`` (T, C) of a
    :func:`build_table` table: coarse to fine, acc_l = g_l + up(acc_{l+1}) down to level ``lowest[i]``; below
    it levels have no gradient of their own, so acc_0 = up^l(acc_l), in one pass for exact 2 x 2 pyramids.

    (Out of place on purpose: adjoining in place in ``g`` and handing out views of it measured slower in a
    render loop, as the (T, C) buffer then outlives the call and every call faults in a fresh one.)"""
    C = g.shape[1]
    grads = []
    for o, lv, lo in zip(offsets, sizes, lowest):
        h, w = lv[-1]
        acc, fresh = g[o[-1]: o[-1] + h * w], False
        for l in range(len(lv) - 2, -1, -1):
            H, W = lv[l]
            out = np.empty((H * W, C), dtype=g.dtype)
            if l >= lo:
                _up(g[o[l]: o[l] + H * W], True, acc, H, W, h, w, out)
            elif lv[0] == (h << (l + 1), w << (l + 1)):
                out = np.empty((lv[0][0] * lv[0][1], C), dtype=g.dtype)
                _up_pow2(acc, lv[0][0], lv[0][1], w, l + 1, out)
                acc, fresh = out, True
                break
            else:
                _up(acc, False, acc, H, W, h, w, out)
            acc, h, w, fresh = out, H, W, True
        grads.append(acc if fresh else acc.copy())
    return grads


class _PyramidTable(torch.autograd.Function):
    @staticmethod
    def forward(ctx, *maps):
        sizes = [level_sizes(int(m.shape[0]), int(m.shape[1])) for m in maps]
        lowest = [0] * len(maps)
        offsets, T = level_layout(sizes, lowest)
        ctx.layout = (sizes, lowest, offsets)
        return build_table(maps, sizes, lowest, offsets, T)

    @staticmethod
    @once_differentiable
    def backward(ctx, g_table):
        sizes, lowest, offsets = ctx.layout
        grads = table_adjoint(g_table.contiguous().numpy(), sizes, lowest, offsets)
        return tuple(torch.from_numpy(gm).view(lv[0][0], lv[0][1], -1) for gm, lv in zip(grads, sizes))


def pyramid_table(maps: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, List[List[int]], List[List[Tuple[int, int]]]]:
    """All levels of all ``maps`` (each (Ht_i, Wt_i, C), CPU float32/float64, one dtype) in one (T, C)
    tensor, differentiable w.r.t. the maps; with each map's level offsets (rows) and (height, width)s."""
    table = _PyramidTable.apply(*maps)
    sizes = [level_sizes(int(m.shape[0]), int(m.shape[1])) for m in maps]
    offsets, _ = level_layout(sizes, [0] * len(maps))
    return table, offsets, sizes
