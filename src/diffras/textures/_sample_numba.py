"""Fused CPU texture sampling of packed points: bilinear / nearest lookups with the four addressing modes
and trilinear mip filtering, forward and a hand-written backward (private; ``mipmap.sample_points`` uses it
for CPU float32/float64 tensors of one dtype).

Why: the torch path runs ~60 elementwise ops and 4-8 gathers over every fragment (each a pass through
memory) and its backward as many again; here each fragment reads its taps once. Semantics are exactly
``mipmap._sample_level`` / ``mipmap.sample_points`` (tests compare values and gradients, and gradcheck in
float64): the level and its blend weight carry no gradient; ``"nearest"`` carries none to ``uv``.
"""
from __future__ import annotations

import math

import numba
import numpy as np
import torch
from numba import prange
from torch.autograd.function import once_differentiable

MODES = {"border": 0, "zeros": 1, "wrap": 2, "reflection": 3}
_MAX_CHUNKS = 8


@numba.njit(cache=True, inline="always")
def _addr(i, size, mode, ac):
    """``mipmap.address`` for one index: (in-range index, valid)."""
    if mode == 0 or mode == 1:
        valid = (i >= 0 and i < size) if mode == 1 else True
        return min(max(i, 0), size - 1), valid
    if mode == 2:
        return i % size, True  # Python's % is the floor remainder, as torch.remainder
    if ac:
        period = max(2 * (size - 1), 1)
        m = i % period
        idx = period - m if m >= size else m
        return min(idx, size - 1), True
    period = 2 * size
    m = i % period
    return (period - 1 - m if m >= size else m), True


@numba.njit(cache=True, inline="always")
def _coords(u, v, h, w, mode, ac):
    """Continuous texel coordinates (x, y) and their derivatives dx/du, dy/dv."""
    if mode == 2:
        u = u - math.floor(u)
        v = v - math.floor(v)
    if ac:
        return u * (w - 1), (1.0 - v) * (h - 1), float(w - 1), -float(h - 1)
    return u * w - 0.5, (1.0 - v) * h - 0.5, float(w), -float(h)


@numba.njit(cache=True, inline="always")
def _taps(x, y, h, w, off, mode, ac, nearest):
    """Rows of the (up to) four taps in the texel table, their validity, and (fx, fy)."""
    if nearest:
        ci, cv = _addr(int(math.floor(x + 0.5)), w, mode, ac)
        ri, rv = _addr(int(math.floor(y + 0.5)), h, mode, ac)
        t = off + ri * w + ci
        return t, t, t, t, cv and rv, False, False, False, 0.0, 0.0
    x0 = math.floor(x)
    y0 = math.floor(y)
    fx = x - x0
    fy = y - y0
    c0, c0v = _addr(int(x0), w, mode, ac)
    c1, c1v = _addr(int(x0) + 1, w, mode, ac)
    r0, r0v = _addr(int(y0), h, mode, ac)
    r1, r1v = _addr(int(y0) + 1, h, mode, ac)
    return (off + r0 * w + c0, off + r0 * w + c1, off + r1 * w + c0, off + r1 * w + c1,
            r0v and c0v, r0v and c1v, r1v and c0v, r1v and c1v, fx, fy)


@numba.njit(cache=True, inline="always")
def _texel(texels, base, nbase, r, c):
    """Row r, channel c of the texel table whose rows [0, nbase) are ``base`` (a map read in place, not
    copied into the table) and rows [nbase, T) are ``texels[r - nbase]``."""
    return base[r, c] if r < nbase else texels[r - nbase, c]


@numba.njit(cache=True, inline="always")
def _levels(lod, use_lod, nlev):
    """(level l0, blend weight t of level l0 + 1) as sample_points: lam = min(max(lod, 0), top)."""
    if not use_lod:
        return 0, 0.0
    top = nlev - 1
    lam = lod
    if not lam > 0.0:  # includes -inf and NaN-free negatives
        lam = 0.0
    if lam > top:
        lam = float(top)
    l0 = int(math.floor(lam))
    return l0, lam - l0


@numba.njit(cache=True, parallel=True)
def _forward(texels, base, nbase, map_idx, uv, lod, use_lod, offset, height, width, nlev, mode, ac, nearest, out):
    C = texels.shape[1]
    for p in prange(map_idx.shape[0]):
        n = map_idx[p]
        l0, t = _levels(lod[p] if use_lod else 0.0, use_lod, nlev[n])
        for c in range(C):
            out[p, c] = 0.0
        for j in range(2):
            if j == 1 and not t > 0.0:
                break
            lev = l0 + j
            wl = (1.0 - t) if j == 0 else t
            h, w, off = height[n, lev], width[n, lev], offset[n, lev]
            x, y, _, _ = _coords(uv[p, 0], uv[p, 1], h, w, mode, ac)
            a, b, cc, d, av, bv, cv, dv, fx, fy = _taps(x, y, h, w, off, mode, ac, nearest)
            for c in range(C):
                if nearest:
                    val = _texel(texels, base, nbase, a, c) if av else 0.0
                else:
                    ta = _texel(texels, base, nbase, a, c) if av else 0.0
                    tb = _texel(texels, base, nbase, b, c) if bv else 0.0
                    tc = _texel(texels, base, nbase, cc, c) if cv else 0.0
                    td = _texel(texels, base, nbase, d, c) if dv else 0.0
                    top = ta + fx * (tb - ta)
                    bot = tc + fx * (td - tc)
                    val = top + fy * (bot - top)
                out[p, c] += wl * val


@numba.njit(cache=True, inline="always")
def _add(gt, r, c, v, r0, r1):
    if r >= r0 and r < r1:
        gt[r, c] += v


@numba.njit(cache=True, parallel=True)
def _backward(texels, base, nbase, map_idx, uv, lod, use_lod, offset, height, width, nlev, mode, ac, nearest,
              g_out, need_tex, need_uv, parts, g_tex, g_uv):
    """Gradients w.r.t. the table (g_tex) and ``uv`` (g_uv), in parallel parts. ``parts`` (n_parts, 6) int64:
    part i accumulates into ``g_tex[parts[i, 0]]`` and ``g_uv[parts[i, 1]]`` (zeros) the gradients of the
    points [parts[i, 4], parts[i, 5]) through the taps in rows [parts[i, 2], parts[i, 3]). Two splits
    (:func:`_parts`):

    - by points: part i owns accumulator i and its own chunk of points, all rows (g_tex (n_parts, T, C): the
      caller sums the copies; g_uv (1, P, 2): the chunks are disjoint);
    - by rows: every part reads all points but handles only the levels that meet its rows (a level wholly
      outside them costs a few comparisons), and of a level cut by its bounds only the taps in its rows
      (g_tex (1, T, C): disjoint rows, no copy, no race). A level's share of uv's gradient goes to the part
      holding the level's first tap, into that part's g_uv (n_parts, P, 2), summed by the caller.

    Rows are those of the whole table (``base``'s included)."""
    C = texels.shape[1]
    n_parts = parts.shape[0]
    for part in prange(n_parts):
        gt = g_tex[parts[part, 0]]
        guv = g_uv[parts[part, 1]]
        r0 = parts[part, 2]
        r1 = parts[part, 3]
        for p in range(parts[part, 4], parts[part, 5]):
            n = map_idx[p]
            l0, t = _levels(lod[p] if use_lod else 0.0, use_lod, nlev[n])
            gu = 0.0
            gv = 0.0
            for j in range(2):
                if j == 1 and not t > 0.0:
                    break
                lev = l0 + j
                h, w, off = height[n, lev], width[n, lev], offset[n, lev]
                if off >= r1 or off + h * w <= r0:
                    continue  # the level lies outside this part's rows
                wl = (1.0 - t) if j == 0 else t
                x, y, dxdu, dydv = _coords(uv[p, 0], uv[p, 1], h, w, mode, ac)
                a, b, cc, d, av, bv, cv, dv, fx, fy = _taps(x, y, h, w, off, mode, ac, nearest)
                uvg = need_uv and not nearest and a >= r0 and a < r1  # the part holding the first tap
                for c in range(C):
                    g = g_out[p, c] * wl
                    if need_tex:
                        if nearest:
                            if av:
                                _add(gt, a, c, g, r0, r1)
                        else:
                            if av:
                                _add(gt, a, c, g * (1.0 - fx) * (1.0 - fy), r0, r1)
                            if bv:
                                _add(gt, b, c, g * fx * (1.0 - fy), r0, r1)
                            if cv:
                                _add(gt, cc, c, g * (1.0 - fx) * fy, r0, r1)
                            if dv:
                                _add(gt, d, c, g * fx * fy, r0, r1)
                    if uvg:
                        ta = _texel(texels, base, nbase, a, c) if av else 0.0
                        tb = _texel(texels, base, nbase, b, c) if bv else 0.0
                        tc = _texel(texels, base, nbase, cc, c) if cv else 0.0
                        td = _texel(texels, base, nbase, d, c) if dv else 0.0
                        top = ta + fx * (tb - ta)
                        bot = tc + fx * (td - tc)
                        gu += g * ((tb - ta) * (1.0 - fy) + (td - tc) * fy) * dxdu
                        gv += g * (bot - top) * dydv
            if need_uv:
                guv[p, 0] += gu
                guv[p, 1] += gv


@numba.njit(cache=True, parallel=True)
def _level_weights(lod, use_lod, map_idx, nlev, n_chunks, out):
    """out (n_chunks, N, L) zeros: per chunk of points, the tap weight (1 - t > 0, and t) points of image n
    put on level l. Its sum over chunks gives the lowest level each image reads (the first level of positive
    weight) and the balance of :func:`_backward`'s row parts."""
    P = map_idx.shape[0]
    per = (P + n_chunks - 1) // n_chunks
    for ch in prange(n_chunks):
        for p in range(ch * per, min(P, (ch + 1) * per)):
            n = map_idx[p]
            l0, t = _levels(lod[p] if use_lod else 0.0, use_lod, nlev[n])
            out[ch, n, l0] += 1.0 - t
            if t > 0.0:
                out[ch, n, l0 + 1] += t


def level_weights(lo: torch.Tensor, use_lod: bool, idx: torch.Tensor, nlev: np.ndarray) -> np.ndarray:
    """(N, L) float64: the tap weight the points of image n (``idx`` (P,)) put on level l (``nlev`` (N,) the
    level counts; ``lo`` (P,) the level of detail, read only if ``use_lod``)."""
    k = max(1, min(numba.get_num_threads(), idx.shape[0] // 16384))
    out = np.zeros((k, len(nlev), int(nlev.max()) if len(nlev) else 1))
    if idx.shape[0]:
        _level_weights(lo.numpy(), use_lod, idx.numpy(), nlev, k, out)
    return out.sum(0)


def _parts(P, T, n_parts, rows=None):
    """(n_parts, 6) ``parts`` of :func:`_backward`: split by points (table accumulator i, uv's shared), or by
    ``rows`` ((n_parts + 1,) bounds; the table's accumulator shared, uv accumulator i)."""
    per = (P + n_parts - 1) // n_parts
    out = np.zeros((n_parts, 6), dtype=np.int64)
    for i in range(n_parts):
        if rows is None:
            out[i] = (i, 0, 0, T, min(P, i * per), min(P, (i + 1) * per))
        else:
            out[i] = (0, i, rows[i], rows[i + 1], 0, P)
    return out


def _row_parts(weights, meta, T, n_parts):
    """(n_parts + 1,) int64 row bounds splitting [0, T) into parts of about equal tap weight, from the points'
    weight per (image, level) (:func:`level_weights`). A bound falls between two levels when one is within a
    quarter of a part's share of the goal, as a level cut in two is worked on by both parts; else inside the
    level, its taps taken as spread evenly over its rows."""
    offset, height, width, _ = (m.numpy() for m in meta)
    per_level = {}  # level start row -> (rows, weight); images sharing a map share its levels
    for n, l in zip(*np.nonzero(weights)):
        o, r = int(offset[n, l]), int(height[n, l] * width[n, l])
        per_level[o] = (r, per_level.get(o, (r, 0.0))[1] + float(weights[n, l]))
    starts = sorted(per_level)
    total = sum(c for _, c in per_level.values())
    share = total / n_parts
    cum = np.cumsum([0.0] + [per_level[o][1] for o in starts])  # weight before level i
    bounds = [0]
    for i in range(1, n_parts):
        goal = share * i
        k = int(np.argmin(np.abs(cum - goal)))  # the closest level boundary
        if abs(cum[k] - goal) <= 0.25 * share:
            cut = starts[k] if k < len(starts) else T
        else:  # inside the level holding the goal
            k = max(0, int(np.searchsorted(cum, goal, side="right")) - 1)
            o = starts[min(k, len(starts) - 1)]
            r, c = per_level[o]
            cut = o + (int(r * (goal - cum[k]) / c) if c > 0 else 0)
        bounds.append(min(max(cut, bounds[-1]), T))
    bounds.append(T)
    return np.array(bounds, dtype=np.int64)


class _FusedSample(torch.autograd.Function):
    @staticmethod
    def forward(ctx, texels, uv, map_idx, lod, offset, height, width, nlev, mode, ac, nearest):
        tx = texels.detach().contiguous()
        u = uv.detach().contiguous()
        use_lod = lod is not None
        lo = lod.detach().to(u.dtype).contiguous() if use_lod else u.new_zeros((1,))
        idx = map_idx.contiguous()
        meta = [t.contiguous() for t in (offset, height, width, nlev)]
        out = run_forward(tx, u, idx, lo, use_lod, meta, mode, ac, nearest)
        ctx.save_for_backward(tx, u, idx, lo, *meta)
        ctx.flags = (use_lod, mode, ac, nearest)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, g_out):
        tx, u, idx, lo, *meta = ctx.saved_tensors
        use_lod, mode, ac, nearest = ctx.flags
        need_tex, need_uv = ctx.needs_input_grad[0], ctx.needs_input_grad[1] and not nearest
        g_tex, g_uv = sample_backward(tx, u, idx, lo, use_lod, meta, mode, ac, nearest, g_out, need_tex, need_uv)
        gt = torch.from_numpy(g_tex) if need_tex else None
        gu = torch.from_numpy(g_uv) if need_uv else None
        return gt, gu, None, None, None, None, None, None, None, None, None


def run_forward(tx, u, idx, lo, use_lod, meta, mode, ac, nearest, base=None) -> torch.Tensor:
    """(P, C) samples of the (T, C) table ``tx`` (:class:`_FusedSample`'s forward, tensors already detached,
    contiguous and of one dtype; ``meta`` the (offset, height, width, num_levels) placement). With ``base``
    (B, C), the table's rows [0, B) are ``base`` and ``tx`` holds rows [B, T) (a map read in place)."""
    out = torch.empty((idx.shape[0], tx.shape[1]), dtype=tx.dtype)
    if idx.numel() and tx.shape[1]:
        _forward(tx.numpy(), *_base(tx, base), idx.numpy(), u.numpy(), lo.numpy(), use_lod,
                 *(m.numpy() for m in meta), mode, ac,
                 nearest, out.numpy())
    return out


def _base(tx, base):
    """(base array, nbase) kernel arguments: a (1, C) dummy and 0 without a base."""
    if base is None:
        return np.zeros((1, tx.shape[1]), dtype=tx.numpy().dtype), 0
    return base.numpy(), int(base.shape[0])


def sample_backward(tx, u, idx, lo, use_lod, meta, mode, ac, nearest, g_out, need_tex, need_uv, base=None,
                    weights=None):
    """Gradients of :func:`run_forward`: (T, C) w.r.t. the table (None unless ``need_tex``) and (P, 2) w.r.t.
    ``uv`` (zeros unless ``need_uv``), as numpy arrays. ``weights``: the points' (N, L) :func:`level_weights`
    if the caller has them (else computed here when needed). A large part of the cost is the table
    gradient's size (zeroing, summing copies): callers keep T to the rows that can be touched
    (``_mip_sample``)."""
    P, C = idx.shape[0], tx.shape[1]
    T = tx.shape[0] + (0 if base is None else base.shape[0])
    g = g_out.to(tx.dtype).contiguous()
    # Parts of the work on parallel threads. Split by rows, one table accumulator: every part reads all points
    # but works only on the levels that meet its rows (bounds fall between levels when that balances the parts),
    # so each extra part costs a pass over the points' level lookups (~10 ns each). Split by points: one
    # accumulator copy per part, zeroed and summed (~1 ns per texel channel each). So rows while the points
    # are few for the table (1 view at 256^2: P ~ 0.07 T), points past half its rows (8 views at 512^2: ~2 T).
    n_parts = max(1, min(_MAX_CHUNKS, numba.get_num_threads(), P // 4096 or 1))
    by_rows = need_tex and n_parts > 1 and 2 * P <= T
    n_tex = n_parts if need_tex and not by_rows else 1
    dt = tx.numpy().dtype
    g_tex = np.zeros((n_tex, T, C) if need_tex else (1, 1, C), dtype=dt)
    g_uv = np.zeros((n_parts if by_rows and need_uv else 1, P, 2), dtype=dt)
    rows = None
    if by_rows:
        if weights is None:
            weights = level_weights(lo, use_lod, idx, meta[3].numpy())
        rows = _row_parts(weights, meta, T, n_parts)
    if P and C and (need_tex or need_uv):
        _backward(tx.numpy(), *_base(tx, base), idx.numpy(), u.numpy(), lo.numpy(), use_lod,
                  *(m.numpy() for m in meta), mode, ac, nearest, g.numpy(), need_tex, need_uv,
                  _parts(P, T, n_parts, rows), g_tex, g_uv)
    gu = g_uv.sum(0) if g_uv.shape[0] > 1 else g_uv[0]
    if not need_tex:
        return None, gu
    return (torch.from_numpy(g_tex).sum(0).numpy() if n_tex > 1 else g_tex[0]), gu


def fused_sample(texels, uv, map_idx, lod, offset, height, width, num_levels, padding_mode: str,
                 align_corners: bool, sampling_mode: str) -> torch.Tensor:
    """(P, C) ``mipmap.sample_points`` for CPU tensors: ``texels`` (T, C) and ``uv`` (P, 2) of one float
    dtype, ``map_idx`` (P,), ``lod`` (P,) or None, the table's (N, L) placement and (N,) level counts."""
    return _FusedSample.apply(texels, uv, map_idx, lod, offset, height, width, num_levels, MODES[padding_mode],
                              bool(align_corners), sampling_mode == "nearest")
