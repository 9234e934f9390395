"""Fused CPU kernels of ``diffras.nv.texture`` for 2D maps (the pyramid and its adjoint: ``_mip_numba``): the
filtered lookup, forward and a hand-written backward to tex (all levels), uv, uv_da and mip_level_bias.

Why here and not ``textures/_sample_numba``: nvdiffrast's lookup differs from TexturesUV's in ways that
kernel does not carry: the row order (t = 0 is row 0), the level computed from ``uv_da`` and
``mip_level_bias`` *with* gradients (the level's blend weight is differentiable in nvdiffrast), and the
clamp rule (coordinates clamped to the edge texels' centres). What could be shared later: the tap
addressing and the bilinear tap weights are the same arithmetic.

Semantics are exactly the plain-torch path of ``diffras.nv.texture`` (the reference, used on other devices,
for cube maps and in the tests): every formula below mirrors a line there. Layout: all levels of all B
maps in one (T, C) texel table; level l of map b starts at ``offs[l] + b * hs[l] * ws[l]``.

Mode codes: boundary 0 wrap, 1 clamp, 2 zero; filter 0 nearest, 1 linear, 2 linear-mipmap-nearest,
3 linear-mipmap-linear.
"""
from __future__ import annotations

import math

import numba
import numpy as np
import torch
from numba import prange
from torch.autograd.function import once_differentiable

from ._mip_numba import build_levels, fold_levels

_JIT = dict(cache=True, nogil=True, error_model="numpy")
BOUNDARY = {"wrap": 0, "clamp": 1, "zero": 2}
FILTER = {"nearest": 0, "linear": 1, "linear-mipmap-nearest": 2, "linear-mipmap-linear": 3}
_LN2 = math.log(2.0)


@numba.njit(inline="always", **_JIT)
def _wrap_index(i, n, mode):
    """(index in range, valid) of integer texel index i on a side of n texels."""
    if mode == 0:
        # Taps of wrapped coordinates lie in [-1, n]: avoid the (slow) integer modulo for them.
        if i < 0:
            i += n
        elif i >= n:
            i -= n
        if i < 0 or i >= n:
            i = i % n
        return i, True
    valid = True
    if mode == 2:
        valid = i >= 0 and i < n
    return min(max(i, 0), n - 1), valid


@numba.njit(inline="always", **_JIT)
def _level(da, bias, p, use_da, use_bias, w0, h0, lmax):
    """(clamped level, d level / d raw level (1 inside [0, lmax], else 0), A, B, Cc, l2a, Q)."""
    fl = 0.0
    A = B = Cc = l2a = Q = 0.0
    if use_da:
        dsdx = da[p, 0] * w0
        dsdy = da[p, 1] * w0
        dtdx = da[p, 2] * h0
        dtdy = da[p, 3] * h0
        A = dsdx * dsdx + dtdx * dtdx
        B = dsdy * dsdy + dtdy * dtdy
        Cc = dsdx * dsdy + dtdx * dtdy
        l2b = 0.5 * (A + B)
        l2a = math.sqrt(0.25 * (A - B) * (A - B) + Cc * Cc + 1e-30)
        Q = l2b + l2a
        # log2 is the costly part; a footprint under a texel without bias is level 0 with no gradient
        # (any negative level says so: it is clamped to 0 with live = 0 below).
        fl = 0.5 * math.log2(max(Q, 1e-30)) if (Q >= 1.0 or use_bias) else -1.0
    if use_bias:
        fl += bias[p]
    live = 1.0 if (fl >= 0.0 and fl <= lmax) else 0.0
    return min(max(fl, 0.0), float(lmax)), live, A, B, Cc, l2a, Q


@numba.njit(inline="always", **_JIT)
def _coords(s, t, h, w, mode):
    """Continuous texel coordinates (x, y) of (s, t) on an h x w level and dx/ds, dy/dt."""
    x = s * w - 0.5
    y = t * h - 0.5
    dx = float(w)
    dy = float(h)
    if mode == 1:
        if not x >= 0.0:  # torch.clamp passes the gradient at the bound itself
            x, dx = 0.0, 0.0
        elif x > w - 1:
            x, dx = float(w - 1), 0.0
        if not y >= 0.0:
            y, dy = 0.0, 0.0
        elif y > h - 1:
            y, dy = float(h - 1), 0.0
    return x, y, dx, dy


@numba.njit(inline="always", **_JIT)
def _sample_px(table, p, b, s, t, lev, hs, ws, offs, mode, nearest, out, c_lo):
    """Write the lookup at level ``lev`` into out[c_lo:c_lo + C] (a scratch row)."""
    C = table.shape[1]
    h = hs[lev]
    w = ws[lev]
    base = offs[lev] + b * h * w
    if nearest:
        xi, xv = _wrap_index(int(math.floor(s * w)), w, mode)
        yi, yv = _wrap_index(int(math.floor(t * h)), h, mode)
        for c in range(C):
            out[c_lo + c] = table[base + yi * w + xi, c] if (xv and yv) else 0.0
        return
    x, y, _, _ = _coords(s, t, h, w, mode)
    x0 = math.floor(x)
    y0 = math.floor(y)
    fx = x - x0
    fy = y - y0
    i0, v0 = _wrap_index(int(y0), h, mode)
    i1, v1 = _wrap_index(int(y0) + 1, h, mode)
    j0, u0 = _wrap_index(int(x0), w, mode)
    j1, u1 = _wrap_index(int(x0) + 1, w, mode)
    for c in range(C):
        t00 = table[base + i0 * w + j0, c] if (v0 and u0) else 0.0
        t01 = table[base + i0 * w + j1, c] if (v0 and u1) else 0.0
        t10 = table[base + i1 * w + j0, c] if (v1 and u0) else 0.0
        t11 = table[base + i1 * w + j1, c] if (v1 and u1) else 0.0
        top = t00 * (1.0 - fx) + t01 * fx
        bot = t10 * (1.0 - fx) + t11 * fx
        out[c_lo + c] = top * (1.0 - fy) + bot * fy


@numba.njit(inline="always", **_JIT)
def _wrap_st(uv, p, mode):
    s = uv[p, 0]
    t = uv[p, 1]
    if mode == 0:
        s = s - math.floor(s)
        t = t - math.floor(t)
    return s, t


@numba.njit(inline="always", **_JIT)
def _same(uv, da, bias, use_da, use_bias, p):
    """Whether point p's lookup inputs equal point p - 1's."""
    if uv[p, 0] != uv[p - 1, 0] or uv[p, 1] != uv[p - 1, 1]:
        return False
    if use_da:
        for k in range(4):
            if da[p, k] != da[p - 1, k]:
                return False
    return not use_bias or bias[p] == bias[p - 1]


@numba.njit(parallel=True, **_JIT)
def texture_fwd(table, uv, da, bias, use_da, use_bias, hw, bmaps, hs, ws, offs, mode, filt, n_chunks, out):
    """out (P, C): the lookup of every point p (map ``p // hw`` if ``bmaps`` > 1 else 0)."""
    P = uv.shape[0]
    C = table.shape[1]
    lmax = hs.shape[0] - 1
    per = (P + n_chunks - 1) // n_chunks
    for ch in prange(n_chunks):
        row = np.empty(2 * C, table.dtype)
        for p in range(ch * per, min(P, (ch + 1) * per)):
            b = p // hw if bmaps > 1 else 0
            if p > ch * per and (p % hw) and _same(uv, da, bias, use_da, use_bias, p):
                # Same inputs as the previous pixel (e.g. the runs of empty pixels): same value.
                for c in range(C):
                    out[p, c] = out[p - 1, c]
                continue
            s, t = _wrap_st(uv, p, mode)
            lev0 = 0
            frac = 0.0
            if filt >= 2:
                fl, _, _, _, _, _, _ = _level(da, bias, p, use_da, use_bias, ws[0], hs[0], lmax)
                lev0 = min(int(math.floor(fl)), lmax)
                frac = fl - lev0
            _sample_px(table, p, b, s, t, lev0, hs, ws, offs, mode, filt == 0, row, 0)
            if filt == 3 and frac > 0.0:
                _sample_px(table, p, b, s, t, min(lev0 + 1, lmax), hs, ws, offs, mode, False, row, C)
                for c in range(C):
                    out[p, c] = row[c] + (row[C + c] - row[c]) * frac
            else:
                for c in range(C):
                    out[p, c] = row[c]


@numba.njit(inline="always", **_JIT)
def _bilinear_bwd(table, gtab, b, s, t, lev, hs, ws, offs, mode, g, wl, need_tex, row, c_lo, cs, ct):
    """Scatter wl * g into the taps' gradient, add this level's d out_c / ds and d out_c / dt (times wl)
    to cs[c] and ct[c], and leave the lookup value in row[c_lo:c_lo + C]."""
    C = table.shape[1]
    h = hs[lev]
    w = ws[lev]
    base = offs[lev] + b * h * w
    x, y, dxds, dydt = _coords(s, t, h, w, mode)
    x0 = math.floor(x)
    y0 = math.floor(y)
    fx = x - x0
    fy = y - y0
    i0, v0 = _wrap_index(int(y0), h, mode)
    i1, v1 = _wrap_index(int(y0) + 1, h, mode)
    j0, u0 = _wrap_index(int(x0), w, mode)
    j1, u1 = _wrap_index(int(x0) + 1, w, mode)
    a00 = base + i0 * w + j0
    a01 = base + i0 * w + j1
    a10 = base + i1 * w + j0
    a11 = base + i1 * w + j1
    for c in range(C):
        t00 = table[a00, c] if (v0 and u0) else 0.0
        t01 = table[a01, c] if (v0 and u1) else 0.0
        t10 = table[a10, c] if (v1 and u0) else 0.0
        t11 = table[a11, c] if (v1 and u1) else 0.0
        top = t00 * (1.0 - fx) + t01 * fx
        bot = t10 * (1.0 - fx) + t11 * fx
        row[c_lo + c] = top * (1.0 - fy) + bot * fy
        cs[c] += wl * ((t01 - t00) * (1.0 - fy) + (t11 - t10) * fy) * dxds
        ct[c] += wl * (bot - top) * dydt
        if need_tex:
            gc = g[c] * wl
            if v0 and u0:
                gtab[a00, c] += gc * (1.0 - fx) * (1.0 - fy)
            if v0 and u1:
                gtab[a01, c] += gc * fx * (1.0 - fy)
            if v1 and u0:
                gtab[a10, c] += gc * (1.0 - fx) * fy
            if v1 and u1:
                gtab[a11, c] += gc * fx * fy


@numba.njit(parallel=True, **_JIT)
def texture_bwd(table, uv, da, bias, use_da, use_bias, hw, bmaps, hs, ws, offs, mode, filt, gout,
                need_tex, n_chunks, gtab, guv, gda, gbias):
    """Gradients of :func:`texture_fwd`: ``gtab`` (n_chunks, T, C) zeros, one accumulator per chunk of
    points; ``guv`` (P, 2), ``gda`` (P, 4), ``gbias`` (P,) written per point."""
    P = uv.shape[0]
    C = table.shape[1]
    lmax = hs.shape[0] - 1
    per = (P + n_chunks - 1) // n_chunks
    for ch in prange(n_chunks):
        gt_ch = gtab[ch]
        row = np.empty(2 * C, table.dtype)
        # Per-channel coefficients of the last fully computed pixel: every gradient of a point is linear in
        # its upstream gradient g, so a pixel with the same inputs (runs of empty pixels) needs only dot
        # products with them, and its texel gradient is scattered once per run with the run's summed g.
        cs = np.zeros(C)
        ct = np.zeros(C)
        cl = np.zeros(C)
        fda = np.zeros(4)
        gsum = np.zeros(C)
        junk = np.zeros(2 * C)
        pend = False
        kb = 0
        ks = kt = kfrac = 0.0
        klev = 0
        kblend = False
        lo = ch * per
        hi = min(P, (ch + 1) * per)
        for p in range(lo, hi + 1):
            hit = p < hi and filt != 0 and p > lo and (p % hw) != 0 and _same(uv, da, bias, use_da, use_bias, p)
            if pend and not hit:  # flush the run's texel gradient
                _bilinear_bwd(table, gt_ch, kb, ks, kt, klev, hs, ws, offs, mode, gsum,
                              (1.0 - kfrac) if kblend else 1.0, True, row, 0, junk, junk)
                if kblend:
                    _bilinear_bwd(table, gt_ch, kb, ks, kt, klev + 1, hs, ws, offs, mode, gsum, kfrac, True,
                                  row, C, junk, junk)
                pend = False
            if p == hi:
                break
            g = gout[p]
            if not hit:
                b = p // hw if bmaps > 1 else 0
                s, t = _wrap_st(uv, p, mode)
                if filt == 0:
                    if need_tex:
                        h, w = hs[0], ws[0]
                        xi, xv = _wrap_index(int(math.floor(s * w)), w, mode)
                        yi, yv = _wrap_index(int(math.floor(t * h)), h, mode)
                        if xv and yv:
                            for c in range(C):
                                gt_ch[offs[0] + b * h * w + yi * w + xi, c] += g[c]
                    continue
                lev0 = 0
                frac = 0.0
                live = 0.0
                A = Bq = Cc = l2a = Q = 0.0
                if filt >= 2:
                    fl, live, A, Bq, Cc, l2a, Q = _level(da, bias, p, use_da, use_bias, ws[0], hs[0], lmax)
                    lev0 = min(int(math.floor(fl)), lmax)
                    frac = fl - lev0
                # The upper level is read wherever it has weight or the level has a gradient (torch's rule:
                # at an exact integer level the weight is 0 but d out / d level is not).
                blend = filt == 3 and lev0 < lmax and (frac > 0.0 or live > 0.0)
                for c in range(C):
                    cs[c] = 0.0
                    ct[c] = 0.0
                    cl[c] = 0.0
                _bilinear_bwd(table, gt_ch, b, s, t, lev0, hs, ws, offs, mode, g,
                              (1.0 - frac) if blend else 1.0, need_tex, row, 0, cs, ct)
                if blend:
                    _bilinear_bwd(table, gt_ch, b, s, t, lev0 + 1, hs, ws, offs, mode, g, frac, need_tex,
                                  row, C, cs, ct)
                    for c in range(C):
                        cl[c] = (row[C + c] - row[c]) * live
                for k in range(4):
                    fda[k] = 0.0
                if filt == 3 and use_da and Q >= 1e-30:
                    gq = 0.5 / (Q * _LN2)
                    gA = gq * (0.5 + 0.25 * (A - Bq) / l2a)
                    gB = gq * (0.5 - 0.25 * (A - Bq) / l2a)
                    gC = gq * Cc / l2a
                    w0 = ws[0]
                    h0 = hs[0]
                    dsdx = da[p, 0] * w0
                    dsdy = da[p, 1] * w0
                    dtdx = da[p, 2] * h0
                    dtdy = da[p, 3] * h0
                    fda[0] = (2.0 * gA * dsdx + gC * dsdy) * w0
                    fda[1] = (2.0 * gB * dsdy + gC * dsdx) * w0
                    fda[2] = (2.0 * gA * dtdx + gC * dtdy) * h0
                    fda[3] = (2.0 * gB * dtdy + gC * dtdx) * h0
                kb, ks, kt, klev, kfrac, kblend = b, s, t, lev0, frac, blend
                for c in range(C):
                    gsum[c] = 0.0
            elif need_tex:
                for c in range(C):
                    gsum[c] += g[c]
                pend = True
            gs = 0.0
            gtt = 0.0
            gfl = 0.0
            for c in range(C):
                gs += g[c] * cs[c]
                gtt += g[c] * ct[c]
                gfl += g[c] * cl[c]
            guv[p, 0] = gs
            guv[p, 1] = gtt
            if filt == 3:
                if use_bias:
                    gbias[p] = gfl
                if use_da:
                    for k in range(4):
                        gda[p, k] = gfl * fda[k]


def _chunks(P: int, T: int) -> int:
    """Texel-gradient accumulators for the backward: one per thread only when the points are many compared
    with the texels (zeroing and summing a copy of the table per extra chunk costs a pass over it)."""
    return max(1, min(8, numba.get_num_threads(), P // 4096 or 1)) if 4 * P > T else 1


class _Texture(torch.autograd.Function):
    """Private: :func:`fused_texture`'s autograd node."""

    @staticmethod
    def forward(ctx, mode, filt, build, tex, uv, uv_da, bias, *levels):
        B, h0, w0, C = tex.shape
        N, H, W, _ = uv.shape
        maps = [tex] + list(levels)
        if build:  # sizes of the pyramid texture() would build (validated there)
            hs, ws = [h0], [w0]
            for _ in range(build):
                hs.append(max(1, hs[-1] // 2))
                ws.append(max(1, ws[-1] // 2))
        else:
            hs, ws = [m.shape[1] for m in maps], [m.shape[2] for m in maps]
        sizes = [B * h * w for h, w in zip(hs, ws)]
        offs = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        hs, ws = np.asarray(hs, np.int64), np.asarray(ws, np.int64)
        t0 = tex.detach().contiguous()
        if len(sizes) == 1:
            table = t0.reshape(-1, C)
        else:
            table = torch.empty((sum(sizes), C), dtype=tex.dtype)
            table[:sizes[0]] = t0.reshape(-1, C)
            if build:
                build_levels(table.numpy(), B, hs, ws, offs)
            else:
                for m, o, n in zip(levels, offs[1:], sizes[1:]):
                    table[o:o + n] = m.detach().reshape(-1, C)
        dt = table.numpy().dtype
        u = uv.detach().reshape(-1, 2).contiguous().numpy()
        da = uv_da.detach().reshape(-1, 4).contiguous().numpy() if uv_da is not None else np.zeros((1, 4), dt)
        bi = bias.detach().reshape(-1).contiguous().numpy() if bias is not None else np.zeros(1, dt)
        P = u.shape[0]
        out = torch.empty((P, C), dtype=tex.dtype)
        if P and C:
            texture_fwd(table.numpy(), u, da, bi, uv_da is not None, bias is not None, H * W, B, hs, ws, offs,
                        mode, filt, max(1, min(P // 1024, 4 * numba.get_num_threads())), out.numpy())
        ctx.save_for_backward(table)
        ctx.arrays = (u, da, bi, hs, ws, offs)
        ctx.meta = (mode, filt, build, uv_da is not None, bias is not None, tex.shape, uv.shape,
                    [m.shape for m in levels])
        return out.reshape(N, H, W, C)

    @staticmethod
    @once_differentiable
    def backward(ctx, gout):
        (table,) = ctx.saved_tensors
        u, da, bi, hs, ws, offs = ctx.arrays
        mode, filt, build, use_da, use_bias, tshape, ushape, lshapes = ctx.meta
        need = ctx.needs_input_grad
        need_tex = need[3] or any(need[7:])
        P, (T, C) = u.shape[0], table.shape
        dt = table.numpy().dtype
        n_chunks = _chunks(P, T) if need_tex else 1
        gtab = np.zeros((n_chunks, T, C) if need_tex else (1, 1, C), dt)
        guv = np.zeros((P, 2), dt)
        gda = np.zeros(da.shape, dt)
        gbias = np.zeros(bi.shape, dt)
        g = gout.detach().to(table.dtype).reshape(P, C).contiguous().numpy()
        if P and C:
            texture_bwd(table.numpy(), u, da, bi, use_da, use_bias, ushape[1] * ushape[2], tshape[0], hs, ws, offs,
                        mode, filt, g, need_tex, n_chunks, gtab, guv, gda, gbias)
        g_tex, g_levels = None, [None] * len(lshapes)
        if need_tex:
            gt = gtab.sum(0) if n_chunks > 1 else gtab[0]
            if build:
                fold_levels(gt, tshape[0], hs, ws, offs)
            n0 = int(np.prod(tshape))
            g_tex = torch.from_numpy(gt[:n0 // C].reshape(tshape))
            for k, shp in enumerate(lshapes):
                o = int(offs[k + 1])
                g_levels[k] = torch.from_numpy(gt[o:o + int(np.prod(shp)) // C].reshape(shp))
        # As the torch path: no gradient to uv through 'nearest', none to the level unless it is blended.
        g_uv = torch.from_numpy(guv).reshape(ushape) if need[4] and filt else None
        g_da = torch.from_numpy(gda).reshape(*ushape[:3], 4) if need[5] and use_da and filt == 3 else None
        g_bias = torch.from_numpy(gbias).reshape(ushape[:3]) if need[6] and use_bias and filt == 3 else None
        return (None, None, None, g_tex, g_uv, g_da, g_bias, *g_levels)


def fused_texture(tex, uv, uv_da, bias, levels, build: int, boundary_mode: str, filter_mode: str):
    """(N, H, W, C) lookups of ``nv.texture`` for CPU float tensors of one dtype and a 2D map.

    tex: (B, Ht, Wt, C), B in (1, N); uv: (N, H, W, 2); uv_da: (N, H, W, 4) or None; bias: (N, H, W) or
    None; ``levels``: the user's mip levels 1.. (each (B, h, w, C)), or empty with ``build`` = the number
    of levels to build here (0 without mipmapping)."""
    return _Texture.apply(BOUNDARY[boundary_mode], FILTER[filter_mode], int(build), tex, uv, uv_da, bias, *levels)
