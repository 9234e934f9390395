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
def _down(table, src, H, W, dst, h, w):
    """table[dst + i w + j] = mean of the box of level rows/cols of table[src:] (H x W) for output (i, j)."""
    C = table.shape[1]
    exact = H == 2 * h and W == 2 * w
    for i in prange(h):
        if exact:  # the common power-of-two case: avg_pool2d's 2 x 2 boxes
            a = src + 2 * i * W
            for j in range(w):
                for c in range(C):
                    s = (table[a + 2 * j, c] + table[a + 2 * j + 1, c]) + \
                        (table[a + W + 2 * j, c] + table[a + W + 2 * j + 1, c])
                    table[dst + i * w + j, c] = s / 4
            continue
        r0, r1 = _span(i, H, h)
        for j in range(w):
            c0, c1 = _span(j, W, w)
            count = (r1 - r0) * (c1 - c0)
            for c in range(C):
                s = 0.0
                for y in range(r0, r1):
                    for x in range(c0, c1):
                        s += table[src + y * W + x, c]
                table[dst + i * w + j, c] = s / count


@numba.njit(cache=True, parallel=True)
def _copy(src, table, dst):
    """table[dst + r] = src[r]: level 0 into the table, on all threads (a 1024^2 map is 12 MiB)."""
    for r in prange(src.shape[0]):
        for c in range(src.shape[1]):
            table[dst + r, c] = src[r, c]


@numba.njit(cache=True, parallel=True)
def _up(g_fine, g_coarse, H, W, h, w, out):
    """out (H W, C) = g_fine + the transposed box filter of g_coarse (h w, C): each fine texel receives
    g / count from every coarse cell whose box holds it (the pooling's backward, gathered per texel)."""
    C = out.shape[1]
    exact = H == 2 * h and W == 2 * w
    for y in prange(H):
        for x in range(W):
            if exact:  # the common power-of-two case: one 2 x 2 box per texel
                q = (y // 2) * w + x // 2
                for c in range(C):
                    out[y * W + x, c] = g_fine[y * W + x, c] + g_coarse[q, c] * 0.25
                continue
            for c in range(C):
                out[y * W + x, c] = g_fine[y * W + x, c]
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


def _layout(maps: Sequence[torch.Tensor]) -> Tuple[List[List[int]], List[List[Tuple[int, int]]], int]:
    """Per map: the first table row of each level, the level sizes; and the total rows T."""
    offsets, sizes, start = [], [], 0
    for m in maps:
        lv = level_sizes(int(m.shape[0]), int(m.shape[1]))
        o = []
        for h, w in lv:
            o.append(start)
            start += h * w
        offsets.append(o)
        sizes.append(lv)
    return offsets, sizes, start


class _PyramidTable(torch.autograd.Function):
    @staticmethod
    def forward(ctx, *maps):
        offsets, sizes, T = _layout(maps)
        C = int(maps[0].shape[-1])
        table = torch.empty((T, C), dtype=maps[0].dtype)
        tn = table.numpy()
        for m, o, lv in zip(maps, offsets, sizes):
            h0, w0 = lv[0]
            _copy(m.detach().reshape(h0 * w0, C).numpy(), tn, o[0])
            for l in range(1, len(lv)):
                _down(tn, o[l - 1], lv[l - 1][0], lv[l - 1][1], o[l], lv[l][0], lv[l][1])
        ctx.layout = (offsets, sizes)
        return table

    @staticmethod
    @once_differentiable
    def backward(ctx, g_table):
        offsets, sizes = ctx.layout
        g = g_table.contiguous()
        C = g.shape[1]
        grads = []
        for o, lv in zip(offsets, sizes):
            # Coarse to fine: acc_l = g_l + up(acc_{l+1}); the map's gradient is acc_0.
            h, w = lv[-1]
            acc = g[o[-1]: o[-1] + h * w].numpy()
            for l in range(len(lv) - 2, -1, -1):
                H, W = lv[l]
                out = np.empty((H * W, C), dtype=acc.dtype)
                _up(g[o[l]: o[l] + H * W].numpy(), acc, H, W, h, w, out)
                acc, h, w = out, H, W
            if len(lv) == 1:
                acc = acc.copy()
            grads.append(torch.from_numpy(acc).view(lv[0][0], lv[0][1], C))
        return tuple(grads)


def pyramid_table(maps: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, List[List[int]], List[List[Tuple[int, int]]]]:
    """All levels of all ``maps`` (each (Ht_i, Wt_i, C), CPU float32/float64, one dtype) in one (T, C)
    tensor, differentiable w.r.t. the maps; with each map's level offsets (rows) and (height, width)s."""
    table = _PyramidTable.apply(*maps)
    offsets, sizes, _ = _layout(maps)
    return table, offsets, sizes
