"""Fused CPU level of detail of packed fragments: ``mipmap.footprint_lod_packed`` in one Numba pass
(private; ``footprint_lod_packed`` uses it for CPU float32/float64 UVs).

Each fragment's UV footprint compares its UV with those of the same slot k in the four neighbouring pixels.
The loop runs per pixel: a pixel's fragments share their four neighbour ranges (read once from the per-pixel
start index), and slot k of a neighbour is almost always at position ``start + k`` (lists fill from slot 0),
so most lookups are one read; otherwise a binary search within the neighbour's few entries. Semantics are
exactly ``mipmap.footprint_lod_packed``'s (tests compare them on dense and sparse slot lists).
"""
from __future__ import annotations

import math

import numba
import numpy as np
import torch
from numba import prange


@numba.njit(cache=True, parallel=True)
def _pixel_begin(slot, K, n_pix, begin):
    """begin (n_pix + 1,): the first packed position of every pixel's slots (``slot`` increasing; pixels
    without slots get the position of the next filled one, so pixel q owns [begin[q], begin[q + 1]))."""
    P = slot.shape[0]
    for p in prange(P + 1):
        q = slot[p] // K if p < P else n_pix
        q_prev = slot[p - 1] // K if p > 0 else -1
        for r in range(q_prev + 1, q + 1):  # each pixel is written by exactly one p
            begin[r] = p


@numba.njit(cache=True, inline="always")
def _find(slot, b, e, t, k):
    """Position of flat slot ``t`` (slot k of its pixel) among ``slot[b:e]``, or -1."""
    i = b + k
    if i < e and slot[i] == t:
        return i
    lo = b
    hi = e
    while lo < hi:  # first index in [b, e) with slot >= t
        mid = (lo + hi) // 2
        if slot[mid] < t:
            lo = mid + 1
        else:
            hi = mid
    return lo if lo < e and slot[lo] == t else -1


@numba.njit(cache=True, inline="always")
def _side(uv, slot, face, b, e, t, k, p, su, sv):
    """(rank, norm) of one neighbour: rank 0 same face, 1 another face, 2 no slot k there; norm the UV
    distance in texels."""
    if b == e:
        return 2, 0.0
    q = _find(slot, b, e, t, k)
    if q < 0:
        return 2, 0.0
    du = (uv[q, 0] - uv[p, 0]) * su
    dv = (uv[q, 1] - uv[p, 1]) * sv
    return (0 if face[q] == face[p] else 1), math.sqrt(du * du + dv * dv)


@numba.njit(cache=True, parallel=True)
def _footprint(uv, slot, face, begin, H, W, K, tex_size, out):
    n_pix = begin.shape[0] - 1
    for q in prange(n_pix):
        b = begin[q]
        e = begin[q + 1]
        if b == e:
            continue
        n = q // (H * W)
        y = (q // W) % H
        x = q % W
        su = tex_size[n, 0]
        sv = tex_size[n, 1]
        # Neighbour ranges [start, end) along x (+1, -1) and y (+1, -1); empty outside the image.
        bx1, ex1 = (begin[q + 1], begin[q + 2]) if x + 1 < W else (0, 0)
        bx0, ex0 = (begin[q - 1], begin[q]) if x > 0 else (0, 0)
        by1, ey1 = (begin[q + W], begin[q + W + 1]) if y + 1 < H else (0, 0)
        by0, ey0 = (begin[q - W], begin[q - W + 1]) if y > 0 else (0, 0)
        for p in range(b, e):
            k = slot[p] - q * K
            best = 0.0
            for axis in range(2):
                if axis == 0:
                    r0, n0 = _side(uv, slot, face, bx1, ex1, slot[p] + K, k, p, su, sv)
                    r1, n1 = _side(uv, slot, face, bx0, ex0, slot[p] - K, k, p, su, sv)
                else:
                    r0, n0 = _side(uv, slot, face, by1, ey1, slot[p] + W * K, k, p, su, sv)
                    r1, n1 = _side(uv, slot, face, by0, ey0, slot[p] - W * K, k, p, su, sv)
                # The forward neighbour wins unless the backward one ranks better (same face first), or
                # ranks the same with a smaller footprint; nothing found on either side counts 0.
                if r0 < r1 or (r0 == r1 and n0 <= n1):
                    d = n0
                else:
                    d = n1
                if min(r0, r1) == 2:
                    d = 0.0
                best = max(best, d)
            out[p] = math.log2(best) if best > 0.0 else -math.inf


def fused_footprint_lod(uv: torch.Tensor, slot: torch.Tensor, face: torch.Tensor, shape, tex_size: torch.Tensor):
    """(P,) ``mipmap.footprint_lod_packed`` for CPU float32/float64 ``uv`` (no gradient)."""
    N, H, W, K = (int(v) for v in shape)
    u = uv.detach().contiguous()
    out = torch.empty((u.shape[0],), dtype=u.dtype)
    if u.shape[0]:
        sl = slot.contiguous().numpy()
        # int64 (N H W + 1,): at most the size of the rasterizer's own (N, H, W, K) pix_to_face.
        begin = np.empty(N * H * W + 1, dtype=np.int64)
        _pixel_begin(sl, K, N * H * W, begin)
        _footprint(u.numpy(), sl, face.contiguous().numpy(), begin, H, W, K,
                   tex_size.detach().to(u.dtype).contiguous().numpy(), out.numpy())
    return out
