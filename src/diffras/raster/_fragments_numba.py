"""Fused CPU fragments: the torch math of ``fragments.fragment_values`` in one numba pass, forward and
a hand-written backward (private; ``compute_fragments`` uses it for CPU tensors).

Why: on the CPU the torch path runs ~100 elementwise ops over every filled slot, each a full pass
through memory; for K=8 soft rasterization that dominated the whole rasterizer. Here each slot is
computed once, in float64 registers, straight into the packed (P,) outputs, and the backward accumulates
per-chunk vertex gradients without atomics. Tests check values and gradients against the torch path.

The expressions are those of ``fragments.fragment_values`` (PyTorch3D's): see there for meanings.
One deliberate simplification in the backward: the distance's dependence through the clamped
projection parameter t is dropped, because d(dist)/dt is exactly 0 at the interior optimum and t is
constant where clamped; torch's autograd gives the same up to rounding.
"""
from __future__ import annotations

import numba
import numpy as np
import torch
from numba import prange
from torch.autograd.function import once_differentiable

from ._rule import CLIP_SUM_MIN as _CLIP_SUM_MIN
from ._rule import EPS as _EPS
from ._rule import edge, pixel_center

_MAX_CHUNKS = 8
# The shared rule (raster/_rule.py), compiled inline: the same expressions as every other backend.
_edge = numba.njit(cache=True, inline="always")(edge)
_pixel_center = numba.njit(cache=True, inline="always")(pixel_center)


@numba.njit(cache=True, inline="always")
def _seg(px, py, ax, ay, bx, by):
    """Squared distance to segment a-b and the closest point's parameter t (-1 for a short segment)."""
    dx = bx - ax
    dy = by - ay
    l2 = dx * dx + dy * dy
    if l2 <= _EPS:
        qx = px - bx
        qy = py - by
        return qx * qx + qy * qy, -1.0
    t = (dx * (px - ax) + dy * (py - ay)) / l2
    t = min(max(t, 0.0), 1.0)
    ex = px - (ax + t * dx)
    ey = py - (ay + t * dy)
    return ex * ex + ey * ey, t


@numba.njit(cache=True, inline="always")
def _guard(x, floor):
    """(value, passes_gradient): |x| < floor replaced by +-floor, as fragments._away_from_zero."""
    if abs(x) < floor:
        return (-floor if x < 0 else floor), False
    return x, True


@numba.njit(cache=True, parallel=True)
def _forward(verts, faces, slot, face, H, W, K, persp, clip, zbuf, bary, dists):
    """Values of the P filled slots: ``slot[p]`` flat into (N, H, W, K), ``face[p]`` its face."""
    S = float(min(H, W))
    for p in prange(slot.shape[0]):
        pix = slot[p] // K
        x = pix % W
        y = (pix // W) % H
        px = _pixel_center(x, W, S)
        py = _pixel_center(y, H, S)
        f = face[p]
        i0, i1, i2 = faces[f, 0], faces[f, 1], faces[f, 2]
        x0, y0, z0 = float(verts[i0, 0]), float(verts[i0, 1]), float(verts[i0, 2])
        x1, y1, z1 = float(verts[i1, 0]), float(verts[i1, 1]), float(verts[i1, 2])
        x2, y2, z2 = float(verts[i2, 0]), float(verts[i2, 1]), float(verts[i2, 2])
        A, _ = _guard(_edge(x2, y2, x0, y0, x1, y1) + _EPS, _EPS)
        w0 = _edge(px, py, x1, y1, x2, y2) / A
        w1 = _edge(px, py, x2, y2, x0, y0) / A
        w2 = _edge(px, py, x0, y0, x1, y1) / A
        if persp:
            t0 = w0 * z1 * z2
            t1 = w1 * z0 * z2
            t2 = w2 * z0 * z1
            sm, _ = _guard(t0 + t1 + t2, _EPS)
            w0, w1, w2 = t0 / sm, t1 / sm, t2 / sm
        inside = w0 > 0 and w1 > 0 and w2 > 0
        if clip:
            m0, m1, m2 = max(w0, 0.0), max(w1, 0.0), max(w2, 0.0)
            sc = max(m0 + m1 + m2, _CLIP_SUM_MIN)
            w0, w1, w2 = m0 / sc, m1 / sc, m2 / sc
        zbuf[p] = w0 * z0 + w1 * z1 + w2 * z2
        bary[p, 0] = w0
        bary[p, 1] = w1
        bary[p, 2] = w2
        d01, _ = _seg(px, py, x0, y0, x1, y1)
        d02, _ = _seg(px, py, x0, y0, x2, y2)
        d12, _ = _seg(px, py, x1, y1, x2, y2)
        d = min(min(d01, d02), d12)
        dists[p] = -d if inside else d


@numba.njit(cache=True, inline="always")
def _seg_grad(g, ia, ib, px, py, ax, ay, bx, by, gval):
    """Accumulate d(seg dist)/d(a, b) * gval into g[vertex, coord] (t held fixed, see module doc)."""
    dx = bx - ax
    dy = by - ay
    l2 = dx * dx + dy * dy
    if l2 <= _EPS:
        g[ib, 0] += -2.0 * (px - bx) * gval
        g[ib, 1] += -2.0 * (py - by) * gval
        return
    t = (dx * (px - ax) + dy * (py - ay)) / l2
    t = min(max(t, 0.0), 1.0)
    ex = px - (ax + t * dx)
    ey = py - (ay + t * dy)
    g[ia, 0] += -2.0 * ex * (1.0 - t) * gval
    g[ia, 1] += -2.0 * ey * (1.0 - t) * gval
    g[ib, 0] += -2.0 * ex * t * gval
    g[ib, 1] += -2.0 * ey * t * gval


@numba.njit(cache=True, inline="always")
def _edge_grad(g, ia, ib, px, py, ax, ay, bx, by, ge):
    """Accumulate d edge(p, a, b) / d(a, b) * ge (p is a constant pixel centre)."""
    g[ia, 0] += (py - by) * ge
    g[ia, 1] += (bx - px) * ge
    g[ib, 0] += -(py - ay) * ge
    g[ib, 1] += (px - ax) * ge


@numba.njit(cache=True, parallel=True)
def _backward(verts, faces, slot, face, H, W, K, persp, clip, gz_out, gb_out, gd_out, n_chunks, grad):
    """grad: (n_chunks, V, 3) float64 zeros; chunk j accumulates the slots of its range (no atomics).

    The incoming gradients are (P,) / (P, 3) with whatever strides they have: a ``loss = zbuf.sum()``
    sends stride-0 expanded tensors, which are never materialised."""
    P = slot.shape[0]
    S = float(min(H, W))
    per = (P + n_chunks - 1) // n_chunks
    for ch in prange(n_chunks):
        g = grad[ch]
        for s in range(ch * per, min(P, (ch + 1) * per)):
            pix = slot[s] // K
            x = pix % W
            y = (pix // W) % H
            px = _pixel_center(x, W, S)
            py = _pixel_center(y, H, S)
            f = face[s]
            i0, i1, i2 = faces[f, 0], faces[f, 1], faces[f, 2]
            x0, y0, z0 = float(verts[i0, 0]), float(verts[i0, 1]), float(verts[i0, 2])
            x1, y1, z1 = float(verts[i1, 0]), float(verts[i1, 1]), float(verts[i1, 2])
            x2, y2, z2 = float(verts[i2, 0]), float(verts[i2, 1]), float(verts[i2, 2])
            # ---- recompute the forward ----
            A, A_live = _guard(_edge(x2, y2, x0, y0, x1, y1) + _EPS, _EPS)
            e0 = _edge(px, py, x1, y1, x2, y2)
            e1 = _edge(px, py, x2, y2, x0, y0)
            e2 = _edge(px, py, x0, y0, x1, y1)
            w0, w1, w2 = e0 / A, e1 / A, e2 / A
            c0, c1, c2 = w0, w1, w2
            t0 = t1 = t2 = 0.0
            sm = 1.0
            sm_live = False
            if persp:
                t0 = w0 * z1 * z2
                t1 = w1 * z0 * z2
                t2 = w2 * z0 * z1
                sm, sm_live = _guard(t0 + t1 + t2, _EPS)
                c0, c1, c2 = t0 / sm, t1 / sm, t2 / sm
            inside = c0 > 0 and c1 > 0 and c2 > 0
            b0, b1, b2 = c0, c1, c2
            m0 = m1 = m2 = 0.0
            sc_raw = 0.0
            sc = 1.0
            if clip:
                m0, m1, m2 = max(c0, 0.0), max(c1, 0.0), max(c2, 0.0)
                sc_raw = m0 + m1 + m2
                sc = max(sc_raw, _CLIP_SUM_MIN)
                b0, b1, b2 = m0 / sc, m1 / sc, m2 / sc
            # ---- backward ----
            gz = float(gz_out[s])
            gb0 = float(gb_out[s, 0]) + gz * z0
            gb1 = float(gb_out[s, 1]) + gz * z1
            gb2 = float(gb_out[s, 2]) + gz * z2
            g[i0, 2] += gz * b0
            g[i1, 2] += gz * b1
            g[i2, 2] += gz * b2
            if clip:
                gsc = -(gb0 * m0 + gb1 * m1 + gb2 * m2) / (sc * sc)
                add = gsc if sc_raw >= _CLIP_SUM_MIN else 0.0
                gc0 = (gb0 / sc + add) if c0 >= 0.0 else 0.0
                gc1 = (gb1 / sc + add) if c1 >= 0.0 else 0.0
                gc2 = (gb2 / sc + add) if c2 >= 0.0 else 0.0
            else:
                gc0, gc1, gc2 = gb0, gb1, gb2
            if persp:
                gt0, gt1, gt2 = gc0 / sm, gc1 / sm, gc2 / sm
                if sm_live:
                    gs = -(gc0 * t0 + gc1 * t1 + gc2 * t2) / (sm * sm)
                    gt0 += gs
                    gt1 += gs
                    gt2 += gs
                gw0 = gt0 * z1 * z2
                gw1 = gt1 * z0 * z2
                gw2 = gt2 * z0 * z1
                g[i0, 2] += gt1 * w1 * z2 + gt2 * w2 * z1
                g[i1, 2] += gt0 * w0 * z2 + gt2 * w2 * z0
                g[i2, 2] += gt0 * w0 * z1 + gt1 * w1 * z0
            else:
                gw0, gw1, gw2 = gc0, gc1, gc2
            ge0, ge1, ge2 = gw0 / A, gw1 / A, gw2 / A
            _edge_grad(g, i1, i2, px, py, x1, y1, x2, y2, ge0)
            _edge_grad(g, i2, i0, px, py, x2, y2, x0, y0, ge1)
            _edge_grad(g, i0, i1, px, py, x0, y0, x1, y1, ge2)
            if A_live:
                gA = -(gw0 * e0 + gw1 * e1 + gw2 * e2) / (A * A)
                # A = edge(v2, v0, v1): v2 plays the point, v0 and v1 the segment.
                g[i0, 0] += (y2 - y1) * gA
                g[i0, 1] += (x1 - x2) * gA
                g[i1, 0] += -(y2 - y0) * gA
                g[i1, 1] += (x2 - x0) * gA
                g[i2, 0] += (y1 - y0) * gA
                g[i2, 1] += -(x1 - x0) * gA
            # Signed distance: the gradient goes to the nearest segment (first one on ties).
            gd = float(gd_out[s])
            gd = -gd if inside else gd
            d01, _ = _seg(px, py, x0, y0, x1, y1)
            d02, _ = _seg(px, py, x0, y0, x2, y2)
            d12, _ = _seg(px, py, x1, y1, x2, y2)
            if d01 <= d02 and d01 <= d12:
                _seg_grad(g, i0, i1, px, py, x0, y0, x1, y1, gd)
            elif d02 <= d12:
                _seg_grad(g, i0, i2, px, py, x0, y0, x2, y2, gd)
            else:
                _seg_grad(g, i1, i2, px, py, x1, y1, x2, y2, gd)


@numba.njit(cache=True, parallel=True)
def _count_filled(flat, n_blocks, counts):
    n = flat.shape[0]
    per = (n + n_blocks - 1) // n_blocks
    for b in prange(n_blocks):
        c = 0
        for i in range(b * per, min(n, (b + 1) * per)):
            if flat[i] >= 0:
                c += 1
        counts[b] = c


@numba.njit(cache=True, parallel=True)
def _fill_filled(flat, n_blocks, starts, slot, face):
    n = flat.shape[0]
    per = (n + n_blocks - 1) // n_blocks
    for b in prange(n_blocks):
        j = starts[b]
        for i in range(b * per, min(n, (b + 1) * per)):
            f = flat[i]
            if f >= 0:
                slot[j] = i
                face[j] = f
                j += 1


def filled_slots(flat: torch.Tensor):
    """``(slot, face)``: the increasing flat indices (P,) int64 of the entries of a CPU int64 ``flat``
    (``pix_to_face.reshape(-1)``) that are >= 0, and those entries. Two parallel passes over ``flat`` instead
    of torch's mask, ``nonzero`` and gather (three passes and a (N H W K,) bool mask)."""
    a = flat.contiguous().numpy()
    n_blocks = 64 if a.shape[0] >= (1 << 16) else 1
    counts = np.empty(n_blocks, dtype=np.int64)
    _count_filled(a, n_blocks, counts)
    starts = np.zeros(n_blocks, dtype=np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    P = int(counts.sum())
    slot = np.empty(P, dtype=np.int64)
    face = np.empty(P, dtype=np.int64)
    _fill_filled(a, n_blocks, starts, slot, face)
    return torch.from_numpy(slot), torch.from_numpy(face)


@numba.njit(cache=True, parallel=True)
def _listed(flat, counts, K, starts, slot, face):
    for q in prange(counts.shape[0]):
        j = starts[q]
        for k in range(counts[q]):
            slot[j + k] = q * K + k
            face[j + k] = flat[q * K + k]


def listed_slots(flat: torch.Tensor, counts: torch.Tensor, K: int):
    """:func:`filled_slots` when pixel q's entries are exactly its first ``counts[q]`` ones (the rasterizer's
    lists): reads those entries and the (N H W,) counts only, never the rest of ``flat``."""
    c = counts.contiguous().numpy()
    starts = np.zeros(c.shape[0], dtype=np.int64)
    if c.shape[0] > 1:
        np.cumsum(c[:-1], out=starts[1:])
    P = int(starts[-1] + c[-1]) if c.shape[0] else 0
    slot = np.empty(P, dtype=np.int64)
    face = np.empty(P, dtype=np.int64)
    if P:
        _listed(flat.contiguous().numpy(), c, K, starts, slot, face)
    return torch.from_numpy(slot), torch.from_numpy(face)


class _FusedFragments(torch.autograd.Function):
    @staticmethod
    def forward(ctx, verts, faces, slot, face, shape, persp, clip):
        H, W, K = shape
        v = verts.detach().contiguous()
        fc = faces.contiguous()
        slot = slot.contiguous()
        face = face.contiguous()
        P = slot.shape[0]
        zbuf = torch.empty((P,), dtype=v.dtype)
        bary = torch.empty((P, 3), dtype=v.dtype)
        dists = torch.empty((P,), dtype=v.dtype)
        if P:
            _forward(v.numpy(), fc.numpy(), slot.numpy(), face.numpy(), H, W, K, persp, clip, zbuf.numpy(),
                     bary.numpy(), dists.numpy())
        ctx.save_for_backward(v, fc, slot, face)
        ctx.meta = (H, W, K, persp, clip)
        return bary, zbuf, dists

    @staticmethod
    @once_differentiable
    def backward(ctx, g_bary, g_zbuf, g_dists):
        v, fc, slot, face = ctx.saved_tensors
        H, W, K, persp, clip = ctx.meta
        P = slot.shape[0]
        # Unused outputs arrive as None: a stride-0 zero keeps the kernel branch-free at no cost.
        zero = v.new_zeros(())
        gz = g_zbuf if g_zbuf is not None else zero.expand(P)
        gb = g_bary if g_bary is not None else zero.expand(P, 3)
        gd = g_dists if g_dists is not None else zero.expand(P)
        # One private accumulator per chunk of slots (no atomics); a few chunks keep both cores busy.
        n_chunks = max(1, min(_MAX_CHUNKS, numba.get_num_threads(), P // 64 or 1))
        grad = np.zeros((n_chunks, v.shape[0], 3), dtype=np.float64)
        if P and fc.shape[0]:
            _backward(v.numpy(), fc.numpy(), slot.numpy(), face.numpy(), H, W, K, persp, clip,
                      gz.detach().to(v.dtype).numpy(), gb.detach().to(v.dtype).numpy(),
                      gd.detach().to(v.dtype).numpy(), n_chunks, grad)
        g = torch.from_numpy(grad.sum(0) if n_chunks > 1 else grad[0]).to(v.dtype)
        return g, None, None, None, None, None, None


def fused_fragments_packed(verts: torch.Tensor, faces: torch.Tensor, slot: torch.Tensor, face: torch.Tensor, shape,
                           perspective_correct: bool, clip_barycentric_coords: bool):
    """(bary (P, 3), zbuf (P,), dists (P,)) of the P filled slots ``slot`` (flat into (N, H, W, K), ``shape``
    = (H, W, K)) holding faces ``face`` (P,), for CPU float32/float64 projected ``verts`` (V, 3) and
    ``faces`` (F, 3) int64 indexing them. Gradients flow to ``verts`` directly, without materialising
    (F, 3, 3) face corners."""
    return _FusedFragments.apply(verts, faces, slot, face, tuple(int(s) for s in shape), bool(perspective_correct),
                                 bool(clip_barycentric_coords))

