"""Fused CPU kernel of ``diffras.nv.antialias``: the silhouette pairs, the blend, and a hand-written
backward to color and (through the crossing, nvdiffrast's straight-through rule) to pos.

Semantics are exactly the plain-torch path of ``antialias`` (the reference; its module docstring states
the rule, and tests compare values and gradients). Pairs are stored densely by their first pixel:
``alpha[p, d]`` for the pair (p, p + 1) (d = 0) or (p, p + W) (d = 1), zero where there is none, with
``edge[p, d]`` the crossing edge (-1 for none). The blend then *gathers*: each pixel adds the pairs that
target it (``alpha > 0`` targets the first pixel, else the second), so rows run in parallel without races.
Screen coordinates are computed in float64 (the torch path: in pos's dtype).
"""
from __future__ import annotations

import math

import numba
import numpy as np
import torch
from numba import prange
from torch.autograd.function import once_differentiable

_JIT = dict(cache=True, nogil=True, error_model="numpy")
_EPS_EDGE = 0.0625
_EPS_SLOPE = 1e-3


@numba.njit(inline="always", **_JIT)
def _neg(v):
    return math.copysign(1.0, v) < 0.0


@numba.njit(inline="always", **_JIT)
def _screen(pos, i, W, H, fx, fy):
    w = pos[i, 3]
    return pos[i, 0] / w * (W / 2) + W / 2 - fx, pos[i, 1] / w * (H / 2) + H / 2 - fy


@numba.njit(inline="always", **_JIT)
def _pair(rast, pos, tri, topo, vper, hw, H, W, p0, p1, d):
    """(alpha, edge index, pixel A, triangle) of the pair (p0, p1); edge -1 when it is not blended."""
    t0 = int(rast[p0, 3] + 0.5) - 1
    t1 = int(rast[p1, 3] + 0.5) - 1
    use1 = t0 < 0 or (t1 >= 0 and not rast[p0, 2] < rast[p1, 2])
    ts = t1 if use1 else t0
    pa = p1 if use1 else p0
    ds = -1.0 if use1 else 1.0
    n = pa // hw
    rem = pa - n * hw
    py = rem // W
    px = rem - py * W
    vb = n * vper
    fx = px + 0.5
    fy = py + 0.5
    xs = np.empty(3)
    ys = np.empty(3)
    for k in range(3):
        xs[k], ys[k] = _screen(pos, tri[ts, k] + vb, W, H, fx, fy)
    bb = (xs[1] - xs[0]) * (ys[2] - ys[0]) - (xs[2] - xs[0]) * (ys[1] - ys[0])
    best = -np.inf
    di = 0
    for k in range(3):
        k1 = (k + 1) % 3
        k2 = (k + 2) % 3
        x1, y1, x2, y2 = xs[k1], ys[k1], xs[k2], ys[k2]
        if d == 1:
            x1, y1, x2, y2 = y1, x1, y2, x2
        if _neg(y1) != _neg(y2):
            dx = x2 - x1
            dy = y2 - y1
            r = ds * (x1 * dy - y1 * dx) / dy
            if r > best:  # first maximum, as torch.argmax
                best = r
                di = k
    if best == -np.inf:
        return 0.0, -1, pa, ts
    k1 = (di + 1) % 3
    k2 = (di + 2) % 3
    o = topo[ts, di]
    if o >= 0:
        ox, oy = _screen(pos, o + vb, W, H, fx, fy)
    else:
        ox, oy = xs[di], ys[di]
    a = (xs[k1] - ox) * (ys[k2] - oy) - (xs[k2] - ox) * (ys[k1] - oy)
    x1, y1, x2, y2 = xs[k1], ys[k1], xs[k2], ys[k2]
    if d == 1:
        x1, y1, x2, y2 = y1, x1, y2, x2
    ok = (_neg(a) == _neg(bb)) and abs(y2 - y1) >= abs(x2 - x1) and best > -_EPS_EDGE and best < 1.0 + _EPS_EDGE
    if not ok:
        return 0.0, -1, pa, ts
    return ds * (0.5 - min(max(best, 0.0), 1.0)), di, pa, ts


@numba.njit(parallel=True, **_JIT)
def _forward(color, rast, pos, tri, topo, vper, N, H, W, alpha, edge, out):
    hw = H * W
    C = color.shape[1]
    for r in prange(N * H):
        i = r % H
        for j in range(W):
            p = r * W + j
            for d in range(2):
                edge[p, d] = -1
                alpha[p, d] = 0.0
                if (d == 0 and j == W - 1) or (d == 1 and i == H - 1):
                    continue
                q = p + 1 if d == 0 else p + W
                if int(rast[p, 3] + 0.5) == int(rast[q, 3] + 0.5):
                    continue
                a, di, _, _ = _pair(rast, pos, tri, topo, vper, hw, H, W, p, q, d)
                alpha[p, d] = a
                edge[p, d] = di
    for r in prange(N * H):
        i = r % H
        for j in range(W):
            p = r * W + j
            for c in range(C):
                out[p, c] = color[p, c]
            # Pairs whose first pixel is p (target when alpha > 0) and whose second is p (alpha <= 0).
            for d in range(2):
                if edge[p, d] >= 0 and alpha[p, d] > 0.0:
                    q = p + 1 if d == 0 else p + W
                    for c in range(C):
                        out[p, c] += alpha[p, d] * (color[q, c] - color[p, c])
                q = -1
                if d == 0 and j > 0:
                    q = p - 1
                elif d == 1 and i > 0:
                    q = p - W
                if q >= 0 and edge[q, d] >= 0 and not alpha[q, d] > 0.0:
                    for c in range(C):
                        out[p, c] += alpha[q, d] * (color[p, c] - color[q, c])


@numba.njit(parallel=True, **_JIT)
def _backward(color, rast, pos, tri, vper, N, H, W, alpha, edge, g, boost, need_pos, n_chunks, gcolor, gpos):
    """gcolor (P, C) written per pixel; gpos (n_chunks, Vtot, 4) zeros, one accumulator per chunk of rows."""
    hw = H * W
    C = color.shape[1]
    for r in prange(N * H):
        i = r % H
        for j in range(W):
            p = r * W + j
            for c in range(C):
                gcolor[p, c] = g[p, c]
            for d in range(2):
                if edge[p, d] >= 0:  # p is the pair's first pixel: delta = alpha (c[q] - c[p])
                    q = p + 1 if d == 0 else p + W
                    tgt = p if alpha[p, d] > 0.0 else q
                    for c in range(C):
                        gcolor[p, c] -= alpha[p, d] * g[tgt, c]
                q = -1
                if d == 0 and j > 0:
                    q = p - 1
                elif d == 1 and i > 0:
                    q = p - W
                if q >= 0 and edge[q, d] >= 0:  # p is the second pixel
                    tgt = q if alpha[q, d] > 0.0 else p
                    for c in range(C):
                        gcolor[p, c] += alpha[q, d] * g[tgt, c]
    if not need_pos:
        return
    R = N * H
    per = (R + n_chunks - 1) // n_chunks
    for ch in prange(n_chunks):
        gp = gpos[ch]
        for r in range(ch * per, min(R, (ch + 1) * per)):
            for j in range(W):
                p = r * W + j
                for d in range(2):
                    di = edge[p, d]
                    al = alpha[p, d]
                    if di < 0 or not abs(al) < 0.5:
                        continue
                    q = p + 1 if d == 0 else p + W
                    tgt = p if al > 0.0 else q
                    ga = 0.0
                    for c in range(C):
                        ga += g[tgt, c] * (color[q, c] - color[p, c])
                    ga *= boost
                    _, _, pa, ts = _pair_tri(rast, p, q)
                    n = pa // hw
                    rem = pa - n * hw
                    py = rem // W
                    px = rem - py * W
                    vb = n * vper
                    i1 = tri[ts, (di + 1) % 3] + vb
                    i2 = tri[ts, (di + 2) % 3] + vb
                    X1, Y1 = _screen(pos, i1, W, H, px + 0.5, py + 0.5)
                    X2, Y2 = _screen(pos, i2, W, H, px + 0.5, py + 0.5)
                    if d == 1:
                        X1, Y1, X2, Y2 = Y1, X1, Y2, X2
                    gdy = Y2 - Y1
                    den = gdy + (-_EPS_SLOPE if _neg(gdy) else _EPS_SLOPE)
                    num = X1 * Y2 - Y1 * X2
                    # galpha = -num / den; its derivatives w.r.t. the (swapped) screen coordinates.
                    gX1 = -Y2 / den * ga
                    gX2 = Y1 / den * ga
                    gY1 = (X2 * den - num) / (den * den) * ga
                    gY2 = (num - X1 * den) / (den * den) * ga
                    if d == 1:
                        gX1, gY1, gX2, gY2 = gY1, gX1, gY2, gX2
                    for v, gx, gy in ((i1, gX1, gY1), (i2, gX2, gY2)):
                        w = pos[v, 3]
                        sx = gx * (W / 2) / w
                        sy = gy * (H / 2) / w
                        gp[v, 0] += sx
                        gp[v, 1] += sy
                        gp[v, 3] -= (sx * pos[v, 0] + sy * pos[v, 1]) / w


@numba.njit(inline="always", **_JIT)
def _pair_tri(rast, p0, p1):
    """The front triangle of a pair and its pixel A (the first lines of :func:`_pair`)."""
    t0 = int(rast[p0, 3] + 0.5) - 1
    t1 = int(rast[p1, 3] + 0.5) - 1
    use1 = t0 < 0 or (t1 >= 0 and not rast[p0, 2] < rast[p1, 2])
    return use1, 0, p1 if use1 else p0, t1 if use1 else t0


class _Antialias(torch.autograd.Function):
    """Private: :func:`fused_antialias`'s autograd node."""

    @staticmethod
    def forward(ctx, boost, color, rast, pos, tri, topo):
        N, H, W, C = color.shape
        c = color.detach().reshape(-1, C).contiguous().numpy()
        r = rast.detach().reshape(-1, 4).contiguous().numpy()
        pf = pos.detach().reshape(-1, 4).to(torch.float64).contiguous().numpy()
        t = tri.detach().to(torch.int64).contiguous().numpy()
        tp = topo.detach().to(torch.int64).contiguous().numpy()
        vper = pos.shape[1] if pos.dim() == 3 else 0
        P = N * H * W
        alpha = np.empty((P, 2), np.float64)
        edge = np.empty((P, 2), np.int64)
        out = torch.empty((P, C), dtype=color.dtype)
        _forward(c, r, pf, t, tp, vper, N, H, W, alpha, edge, out.numpy())
        ctx.arrays = (c, r, pf, t, vper, N, H, W, alpha, edge, float(boost))
        ctx.pinfo = (pos.shape, pos.dtype)
        return out.reshape(N, H, W, C)

    @staticmethod
    @once_differentiable
    def backward(ctx, gout):
        c, r, pf, t, vper, N, H, W, alpha, edge, boost = ctx.arrays
        need_color, need_pos = ctx.needs_input_grad[1], ctx.needs_input_grad[3]
        C = c.shape[1]
        g = gout.detach().to(torch.from_numpy(c[:0]).dtype).reshape(-1, C).contiguous().numpy()
        n_chunks = max(1, min(8, numba.get_num_threads(), (N * H) // 64 or 1)) if need_pos else 1
        gcolor = np.empty(c.shape, c.dtype)
        gpos = np.zeros((n_chunks,) + pf.shape if need_pos else (1, 1, 4), np.float64)
        _backward(c, r, pf, t, vper, N, H, W, alpha, edge, g, boost, need_pos, n_chunks, gcolor, gpos)
        pshape, pdtype = ctx.pinfo
        gc = torch.from_numpy(gcolor).reshape(N, H, W, C) if need_color else None
        gp = torch.from_numpy(gpos.sum(0)).to(pdtype).reshape(pshape) if need_pos else None
        return None, gc, None, gp, None, None


def fused_antialias(color, rast, pos, tri, topo, boost: float):
    """``antialias`` for CPU color, rast and pos of one float dtype (validated by the caller)."""
    return _Antialias.apply(float(boost), color, rast, pos, tri, topo)
