"""Fused CPU kernel of ``diffras.nv.rasterize``'s differentiable part: (u, v, z/w) and
(du/dX, du/dY, dv/dX, dv/dY) at every covered pixel from the visible triangle ids, forward and a
hand-written backward to the clip-space positions.

Semantics are exactly ``rasterize._fill``'s plain-torch path (the reference; tests compare values and
gradients, and gradcheck in float64). For pixel centre (xn, yn) in NDC and corners (x_k, y_k, z_k, w_k),
edge k (opposite corner k, through corners k+1 and k+2) is ``e_k = a_k xn + b_k yn + c_k`` with
``(a_k, b_k, c_k) = (x, y, w)_{k+1} x (x, y, w)_{k+2}`` (the (x, y, w) cross product, reordered), the
barycentrics are ``e_k / S`` with ``S = sum e``, ``z/w = sum(bary z) / sum(bary w)``, and
``d bary_k / dX = (a_k S - e_k sum(a)) / S^2 * 2 / W`` (Y: b and 2 / H).
"""
from __future__ import annotations

import numba
import numpy as np
import torch
from numba import prange
from torch.autograd.function import once_differentiable

_JIT = dict(cache=True, nogil=True, error_model="numpy")


@numba.njit(inline="always", **_JIT)
def _edges(pos, tri, t, vb, xn, yn, q):
    """Corner values and edge terms of triangle t into the scratch rows of ``q`` (7, 3):
    x, y, z, w, a, b, e (corner k / edge k in column k)."""
    for k in range(3):
        i = tri[t, k] + vb
        for c in range(4):
            q[c, k] = pos[i, c]
    for k in range(3):
        i1 = (k + 1) % 3
        i2 = (k + 2) % 3
        q[4, k] = q[1, i1] * q[3, i2] - q[3, i1] * q[1, i2]
        q[5, k] = q[3, i1] * q[0, i2] - q[0, i1] * q[3, i2]
        c = q[0, i1] * q[1, i2] - q[1, i1] * q[0, i2]
        q[6, k] = q[4, k] * xn + q[5, k] * yn + c


@numba.njit(parallel=True, **_JIT)
def _forward(pos, tri, ids, vbase, H, W, rast, db):
    N = ids.shape[0]
    for r in prange(N * H):
        n = r // H
        i = r - n * H
        yn = (2.0 * i + 1.0) / H - 1.0
        vb = vbase[n]
        q = np.empty((7, 3), pos.dtype)
        x, y, z, w, a, b, e = q[0], q[1], q[2], q[3], q[4], q[5], q[6]
        for j in range(W):
            p = r * W + j
            tid = ids[n, i, j]
            if tid == 0:
                for k in range(4):
                    rast[p, k] = 0.0
                    db[p, k] = 0.0
                continue
            xn = (2.0 * j + 1.0) / W - 1.0
            _edges(pos, tri, tid - 1, vb, xn, yn, q)
            S = e[0] + e[1] + e[2]
            A = a[0] + a[1] + a[2]
            Bs = b[0] + b[1] + b[2]
            b0 = e[0] / S
            b1 = e[1] / S
            b2 = e[2] / S
            rast[p, 0] = b0
            rast[p, 1] = b1
            rast[p, 2] = (b0 * z[0] + b1 * z[1] + b2 * z[2]) / (b0 * w[0] + b1 * w[1] + b2 * w[2])
            rast[p, 3] = tid
            s2 = S * S
            db[p, 0] = (a[0] * S - e[0] * A) / s2 * (2.0 / W)
            db[p, 1] = (b[0] * S - e[0] * Bs) / s2 * (2.0 / H)
            db[p, 2] = (a[1] * S - e[1] * A) / s2 * (2.0 / W)
            db[p, 3] = (b[1] * S - e[1] * Bs) / s2 * (2.0 / H)


@numba.njit(parallel=True, **_JIT)
def _backward(pos, tri, ids, vbase, H, W, grast, gdb, use_db, n_chunks, gpos):
    """gpos: (n_chunks, Vtot, 4) zeros, one accumulator per chunk of image rows."""
    N = ids.shape[0]
    R = N * H
    per = (R + n_chunks - 1) // n_chunks
    for ch in prange(n_chunks):
        gp = gpos[ch]
        q = np.empty((7, 3), pos.dtype)
        x, y, z, w, a, b, e = q[0], q[1], q[2], q[3], q[4], q[5], q[6]
        ge = np.empty(3)
        ga = np.empty(3)
        gb = np.empty(3)
        gx = np.empty(3)
        gy = np.empty(3)
        gz = np.empty(3)
        gw = np.empty(3)
        for r in range(ch * per, min(R, (ch + 1) * per)):
            n = r // H
            i = r - n * H
            yn = (2.0 * i + 1.0) / H - 1.0
            vb = vbase[n]
            for j in range(W):
                p = r * W + j
                tid = ids[n, i, j]
                if tid == 0:
                    continue
                xn = (2.0 * j + 1.0) / W - 1.0
                _edges(pos, tri, tid - 1, vb, xn, yn, q)
                S = e[0] + e[1] + e[2]
                A = a[0] + a[1] + a[2]
                Bs = b[0] + b[1] + b[2]
                gu = grast[p, 0]
                gv = grast[p, 1]
                gzw = grast[p, 2]
                # Reciprocals once: divisions dominate this loop otherwise.
                idw = 1.0 / (e[0] * w[0] + e[1] * w[1] + e[2] * w[2])
                iS = 1.0 / S
                is2 = iS * iS
                zw = (e[0] * z[0] + e[1] * z[1] + e[2] * z[2]) * idw
                guv = (-gu * e[0] - gv * e[1]) * is2
                for k in range(3):
                    ge[k] = guv + gzw * (z[k] - zw * w[k]) * idw
                    ga[k] = 0.0
                    gb[k] = 0.0
                    gz[k] = gzw * e[k] * idw
                    gw[k] = -gzw * zw * e[k] * idw
                    gx[k] = 0.0
                    gy[k] = 0.0
                ge[0] += gu * iS
                ge[1] += gv * iS
                if use_db:
                    is3 = is2 * iS
                    sx = 2.0 / W
                    sy = 2.0 / H
                    for k in range(2):
                        gX = gdb[p, 2 * k] * sx
                        gY = gdb[p, 2 * k + 1] * sy
                        ca = gX * e[k] * is2
                        cb = gY * e[k] * is2
                        ce = gX * (2.0 * e[k] * A * is3 - a[k] * is2) + gY * (2.0 * e[k] * Bs * is3 - b[k] * is2)
                        for m in range(3):
                            ga[m] -= ca
                            gb[m] -= cb
                            ge[m] += ce
                        ga[k] += gX * iS
                        gb[k] += gY * iS
                        ge[k] -= (gX * A + gY * Bs) * is2
                for k in range(3):
                    gak = ga[k] + ge[k] * xn
                    gbk = gb[k] + ge[k] * yn
                    gck = ge[k]
                    i1 = (k + 1) % 3
                    i2 = (k + 2) % 3
                    gy[i1] += gak * w[i2] - gck * x[i2]
                    gw[i2] += gak * y[i1] - gbk * x[i1]
                    gw[i1] += gbk * x[i2] - gak * y[i2]
                    gy[i2] += gck * x[i1] - gak * w[i1]
                    gx[i2] += gbk * w[i1] - gck * y[i1]
                    gx[i1] += gck * y[i2] - gbk * w[i2]
                for k in range(3):
                    v = tri[tid - 1, k] + vb
                    gp[v, 0] += gx[k]
                    gp[v, 1] += gy[k]
                    gp[v, 2] += gz[k]
                    gp[v, 3] += gw[k]


class _Fill(torch.autograd.Function):
    """Private: :func:`fused_fill`'s autograd node."""

    @staticmethod
    def forward(ctx, grad_db, pos, tri, ids, vbase, H, W):
        N = ids.shape[0]
        p = pos.detach().reshape(-1, 4).contiguous().numpy()
        t = tri.detach().to(torch.int64).contiguous().numpy()
        i = ids.contiguous().numpy()
        vb = np.ascontiguousarray(vbase, np.int64)
        rast = torch.empty((N * H * W, 4), dtype=pos.dtype)
        db = torch.empty((N * H * W, 4), dtype=pos.dtype)
        _forward(p, t, i, vb, H, W, rast.numpy(), db.numpy())
        ctx.arrays = (p, t, i, vb, H, W, grad_db)
        ctx.pshape = pos.shape
        rast, db = rast.reshape(N, H, W, 4), db.reshape(N, H, W, 4)
        if not grad_db:
            ctx.mark_non_differentiable(db)
        return rast, db

    @staticmethod
    @once_differentiable
    def backward(ctx, grast, gdb):
        p, t, i, vb, H, W, grad_db = ctx.arrays
        if not ctx.needs_input_grad[1]:
            return (None,) * 7
        tdt = torch.from_numpy(p[:0]).dtype
        R = i.shape[0] * H
        n_chunks = max(1, min(8, numba.get_num_threads(), R // 64 or 1))
        gpos = np.zeros((n_chunks,) + p.shape, p.dtype)
        gr = grast.detach().to(tdt).reshape(-1, 4).contiguous().numpy()
        use_db = bool(grad_db) and gdb is not None
        gd = gdb.detach().to(tdt).reshape(-1, 4).contiguous().numpy() if use_db else np.zeros((1, 4), p.dtype)
        _backward(p, t, i, vb, H, W, gr, gd, use_db, n_chunks, gpos)
        g = torch.from_numpy(gpos.sum(0) if n_chunks > 1 else gpos[0]).reshape(ctx.pshape)
        return None, g, None, None, None, None, None


def fused_fill(pos, tri, ids, vbase, H: int, W: int, grad_db: bool):
    """``rasterize._fill`` for CPU float32/float64 ``pos``: ids (N, H, W) int64 (1-based, 0 empty)."""
    return _Fill.apply(bool(grad_db), pos, tri, ids, vbase, H, W)
