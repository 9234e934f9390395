"""Fused CPU kernel of ``diffras.nv.interpolate``: attributes and their screen derivatives at every covered
pixel, forward and a hand-written backward to attr, rast (u, v) and rast_db.

Semantics are exactly the plain-torch path of ``interpolate`` (the reference; tests compare values and
gradients, and gradcheck in float64): ``out = a2 + u (a0 - a2) + v (a1 - a2)`` and
``dA/dX = (a0 - a2) du/dX + (a1 - a2) dv/dX`` (likewise Y), zero where ``rast[..., 3] == 0``.
"""
from __future__ import annotations

import numba
import numpy as np
import torch
from numba import prange
from torch.autograd.function import once_differentiable

_JIT = dict(cache=True, nogil=True, error_model="numpy")


@numba.njit(parallel=True, **_JIT)
def _forward(attr, vper, V, hw, rast, tri, db, sel, use_db, out, da):
    P = rast.shape[0]
    C = attr.shape[1]
    S = sel.shape[0]
    for p in prange(P):
        tid = int(rast[p, 3] + 0.5)
        if tid == 0:
            for c in range(C):
                out[p, c] = 0.0
            if use_db:
                for k in range(2 * S):
                    da[p, k] = 0.0
            continue
        base = (p // hw) * vper
        i0 = tri[tid - 1, 0] + base
        i1 = tri[tid - 1, 1] + base
        i2 = tri[tid - 1, 2] + base
        u = rast[p, 0]
        v = rast[p, 1]
        for c in range(C):
            a2 = attr[i2, c]
            out[p, c] = a2 + u * (attr[i0, c] - a2) + v * (attr[i1, c] - a2)
        if use_db:
            for k in range(S):
                c = sel[k]
                d0 = attr[i0, c] - attr[i2, c]
                d1 = attr[i1, c] - attr[i2, c]
                da[p, 2 * k] = d0 * db[p, 0] + d1 * db[p, 2]
                da[p, 2 * k + 1] = d0 * db[p, 1] + d1 * db[p, 3]


@numba.njit(parallel=True, **_JIT)
def _backward(attr, vper, V, hw, rast, tri, db, sel, use_db, gout, gda, use_gda, need_attr, n_chunks,
              gattr, grast, gdb):
    """gattr: (n_chunks, A, C) zeros, one accumulator per chunk of pixels; grast, gdb: (P, 4) zeros."""
    P = rast.shape[0]
    C = attr.shape[1]
    S = sel.shape[0]
    per = (P + n_chunks - 1) // n_chunks
    for ch in prange(n_chunks):
        ga = gattr[ch]
        for p in range(ch * per, min(P, (ch + 1) * per)):
            tid = int(rast[p, 3] + 0.5)
            if tid == 0:
                continue
            base = (p // hw) * vper
            i0 = tri[tid - 1, 0] + base
            i1 = tri[tid - 1, 1] + base
            i2 = tri[tid - 1, 2] + base
            u = rast[p, 0]
            v = rast[p, 1]
            gu = 0.0
            gv = 0.0
            for c in range(C):
                g = gout[p, c]
                a2 = attr[i2, c]
                gu += g * (attr[i0, c] - a2)
                gv += g * (attr[i1, c] - a2)
                if need_attr:
                    ga[i0, c] += g * u
                    ga[i1, c] += g * v
                    ga[i2, c] += g * (1.0 - u - v)
            grast[p, 0] = gu
            grast[p, 1] = gv
            if use_db and use_gda:
                g0 = 0.0
                g1 = 0.0
                g2 = 0.0
                g3 = 0.0
                for k in range(S):
                    c = sel[k]
                    gx = gda[p, 2 * k]
                    gy = gda[p, 2 * k + 1]
                    d0 = attr[i0, c] - attr[i2, c]
                    d1 = attr[i1, c] - attr[i2, c]
                    g0 += gx * d0
                    g2 += gx * d1
                    g1 += gy * d0
                    g3 += gy * d1
                    if need_attr:
                        w0 = gx * db[p, 0] + gy * db[p, 1]
                        w1 = gx * db[p, 2] + gy * db[p, 3]
                        ga[i0, c] += w0
                        ga[i1, c] += w1
                        ga[i2, c] -= w0 + w1
                gdb[p, 0] = g0
                gdb[p, 1] = g1
                gdb[p, 2] = g2
                gdb[p, 3] = g3


class _Interpolate(torch.autograd.Function):
    """Private: :func:`fused_interpolate`'s autograd node."""

    @staticmethod
    def forward(ctx, sel, attr, rast, tri, rast_db):
        N, H, W, _ = rast.shape
        V, C = attr.shape[-2], attr.shape[-1]
        vper = V if (attr.dim() == 3 and attr.shape[0] == N and N > 1) else 0
        a = attr.detach().reshape(-1, C).contiguous().numpy()
        r = rast.detach().reshape(-1, 4).contiguous().numpy()
        t = tri.detach().to(torch.int64).contiguous().numpy()
        use_db = rast_db is not None
        d = rast_db.detach().reshape(-1, 4).contiguous().numpy() if use_db else np.zeros((1, 4), a.dtype)
        s = np.asarray(sel, np.int64)
        P = r.shape[0]
        out = torch.empty((P, C), dtype=attr.dtype)
        da = torch.empty((P, 2 * len(sel)) if use_db else (1, 1), dtype=attr.dtype)
        _forward(a, vper, V, H * W, r, t, d, s, use_db, out.numpy(), da.numpy())
        ctx.arrays = (a, vper, V, H * W, r, t, d, s, use_db)
        ctx.shapes = (attr.shape, (N, H, W))
        da = da.reshape(N, H, W, 2 * len(sel)) if use_db else torch.zeros((N, H, W, 0), dtype=attr.dtype)
        return out.reshape(N, H, W, C), da

    @staticmethod
    @once_differentiable
    def backward(ctx, gout, gda):
        a, vper, V, hw, r, t, d, s, use_db = ctx.arrays
        ashape, (N, H, W) = ctx.shapes
        need = ctx.needs_input_grad
        P, C = r.shape[0], a.shape[1]
        dt = a.dtype
        n_chunks = max(1, min(8, numba.get_num_threads(), P // 16384 or 1)) if need[1] else 1
        gattr = np.zeros((n_chunks,) + a.shape if need[1] else (1, 1, C), dt)
        grast = np.zeros((P, 4), dt)
        gdb = np.zeros((P, 4), dt)
        tdt = torch.from_numpy(a[:0]).dtype
        go = gout.detach().to(tdt).reshape(P, C).contiguous().numpy() if gout is not None else np.zeros((P, C), dt)
        use_gda = use_db and gda is not None and gda.numel() > 0
        gd = gda.detach().to(tdt).reshape(P, -1).contiguous().numpy() if use_gda else np.zeros((1, 1), dt)
        _backward(a, vper, V, hw, r, t, d, s, use_db, go, gd, use_gda, need[1], n_chunks, gattr, grast, gdb)
        g_attr = torch.from_numpy(gattr.sum(0) if n_chunks > 1 else gattr[0]).reshape(ashape) if need[1] else None
        g_rast = torch.from_numpy(grast).reshape(N, H, W, 4) if need[2] else None
        g_db = torch.from_numpy(gdb).reshape(N, H, W, 4) if (need[4] and use_db) else None
        return None, g_attr, g_rast, None, g_db


def fused_interpolate(attr, rast, tri, rast_db, sel):
    """``interpolate``'s (out, out_da) for CPU float tensors of one dtype; ``rast_db`` None when no
    derivatives are wanted (then out_da is (N, H, W, 0)); ``sel`` the attribute indices to differentiate."""
    return _Interpolate.apply(tuple(sel), attr, rast, tri, rast_db)
