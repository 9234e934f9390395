"""The ``"numba"`` visibility backend: binned, tile-parallel CPU rasterization.

Steps, each over plain float64/int64 arrays:

1. ``_face_ranges``: the per-face tests of the rule in
   ``diffras.raster.visibility`` that do not depend on the pixel (depth validity, culling, zero area)
   and the exact range of pixels whose centre passes the grown bounding-box test.
2. ``_order_faces``: a counting sort of the surviving faces by (coarse nearest depth, screen tile),
   so that a tile reads its faces' rows from a few contiguous runs of memory, near faces first.
3. ``_face_table``: one row of per-face constants per surviving face, in that order.
4. ``_bin_faces``: a counting sort of (image, face) pairs into square tiles of ``bin_size`` pixels:
   count, prefix sum, fill. Bins are exactly as large as needed, so no face is ever dropped however
   dense the scene (PyTorch3D's ``max_faces_per_bin`` overflow cannot happen here).
5. ``_raster_tiles`` (``prange`` over tiles): every face of a tile is tested against the pixels of its
   range inside the tile, and a per-pixel buffer keeps the K smallest ``(depth, face)`` pairs sorted.
   Division-free tests that provably imply the rule's reject most (pixel, face) pairs early.

The per-pixel arithmetic is the reference rule written with the same float64 operations in the same
order (only operand loads are hoisted), with ``error_model="numpy"`` for IEEE division and no
fastmath, so that decisions match the reference bit for bit.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import numba
import numpy as np
import torch

EPS = 1e-8
CLIP_SUM_MIN = 1e-5

# Columns of the per-face table built by _face_table (one row per surviving face, sorted).
_X0, _Y0, _Z0, _X1, _Y1, _Z1, _X2, _Y2, _Z2 = range(9)
_DEN, _SG, _QN, _INVQ, _S0, _S1, _S2, _L0, _L1, _L2 = range(9, 19)
_NCOL = 19
_ZBUCKETS = 32
# Below this many candidate (pixel, face) tests the kernel runs on the calling thread.
SERIAL_WORK = 1 << 16
# Division-free depth rejection (see _raster_tiles): ``num > zl * den * _REJECT_SLACK`` proves
# ``fl(num / den) > zl`` when the threshold is a normal number (the slack is far above the 3 ulp of
# rounding it must cover) and zl is not tiny (no subnormal depths).
_REJECT_SLACK = 1.0 + 1e-12
_TINY = 1e-290

_JIT = dict(cache=True, nogil=True, error_model="numpy")


@numba.njit(**_JIT)
def _face_ranges(fv, pxs, pys, blur_radius, cull_backfaces, pix_range, zmin_out):
    """``pix_range`` (F, 4) = [i0, i1, j0, j1] (inclusive): exactly the pixels whose centre passes the
    rule's bounding-box test, ``i0 > i1`` when the face is skipped; ``zmin_out`` (F,) nearest depth."""
    F = fv.shape[0]
    H = pys.shape[0]
    W = pxs.shape[0]
    S = float(min(H, W))
    r = math.sqrt(blur_radius)
    for f in range(F):
        x0, y0, z0 = fv[f, 0], fv[f, 1], fv[f, 2]
        x1, y1, z1 = fv[f, 3], fv[f, 4], fv[f, 5]
        x2, y2, z2 = fv[f, 6], fv[f, 7], fv[f, 8]
        pix_range[f, 0] = 1
        pix_range[f, 1] = 0
        pix_range[f, 2] = 1
        pix_range[f, 3] = 0
        zmin = min(z0, min(z1, z2))
        zmin_out[f] = zmin
        if zmin < EPS:
            continue
        face_area = (x0 - x1) * (y2 - y1) - (y0 - y1) * (x2 - x1)
        if cull_backfaces and face_area < 0.0:
            continue
        if face_area <= EPS and face_area >= -EPS:
            continue
        xlo = min(x0, min(x1, x2)) - r
        xhi = max(x0, max(x1, x2)) + r
        ylo = min(y0, min(y1, y2)) - r
        yhi = max(y0, max(y1, y2)) + r
        # Centres x = (W - 2j - 1) / S decrease with j: guess the range, then settle it with the very
        # comparisons of the rule, so the kernel needs no per-pixel bounding-box test.
        j0 = int(math.floor(min(max((W - 1.0 - xhi * S) * 0.5, 0.0), W - 1.0)))
        while j0 > 0 and pxs[j0 - 1] <= xhi:
            j0 -= 1
        while j0 < W and pxs[j0] > xhi:
            j0 += 1
        j1 = int(math.ceil(min(max((W - 1.0 - xlo * S) * 0.5, -1.0), W - 1.0)))
        while j1 < W - 1 and pxs[j1 + 1] >= xlo:
            j1 += 1
        while j1 >= 0 and pxs[j1] < xlo:
            j1 -= 1
        i0 = int(math.floor(min(max((H - 1.0 - yhi * S) * 0.5, 0.0), H - 1.0)))
        while i0 > 0 and pys[i0 - 1] <= yhi:
            i0 -= 1
        while i0 < H and pys[i0] > yhi:
            i0 += 1
        i1 = int(math.ceil(min(max((H - 1.0 - ylo * S) * 0.5, -1.0), H - 1.0)))
        while i1 < H - 1 and pys[i1 + 1] >= ylo:
            i1 += 1
        while i1 >= 0 and pys[i1] < ylo:
            i1 -= 1
        if j0 > j1 or i0 > i1:
            continue
        pix_range[f, 0] = i0
        pix_range[f, 1] = i1
        pix_range[f, 2] = j0
        pix_range[f, 3] = j1


@numba.njit(**_JIT)
def _order_faces(pix_range, zmin, T, ntx, nty):
    """Surviving faces sorted by (depth bucket, home tile): a counting sort, O(F)."""
    F = pix_range.shape[0]
    lo = np.inf
    hi = -np.inf
    nv = 0
    for f in range(F):
        if pix_range[f, 0] <= pix_range[f, 1]:
            nv += 1
            lo = min(lo, zmin[f])
            hi = max(hi, zmin[f])
    ntiles = ntx * nty
    nkeys = _ZBUCKETS * ntiles
    scale = _ZBUCKETS / (hi - lo) if hi > lo else 0.0
    keys = np.empty(F, dtype=np.int64)
    counts = np.zeros(nkeys + 1, dtype=np.int64)
    for f in range(F):
        if pix_range[f, 0] <= pix_range[f, 1]:
            zb = min(int((zmin[f] - lo) * scale), _ZBUCKETS - 1)
            key = zb * ntiles + (pix_range[f, 0] // T) * ntx + pix_range[f, 2] // T
            keys[f] = key
            counts[key + 1] += 1
    for k in range(nkeys):
        counts[k + 1] += counts[k]
    perm = np.empty(nv, dtype=np.int64)
    for f in range(F):
        if pix_range[f, 0] <= pix_range[f, 1]:
            perm[counts[keys[f]]] = f
            counts[keys[f]] += 1
    return perm


@numba.njit(**_JIT)
def _face_table(fv, perm, pix_range, table, rows_range):
    """Row k: the per-face constants of the rule for face ``perm[k]``."""
    for k in range(perm.shape[0]):
        f = perm[k]
        for c in range(4):
            rows_range[k, c] = pix_range[f, c]
        x0, y0, z0 = fv[f, 0], fv[f, 1], fv[f, 2]
        x1, y1, z1 = fv[f, 3], fv[f, 4], fv[f, 5]
        x2, y2, z2 = fv[f, 6], fv[f, 7], fv[f, 8]
        for c in range(9):
            table[k, c] = fv[f, c]
        den = (x2 - x0) * (y1 - y0) - (y2 - y0) * (x1 - x0) + EPS
        sg = 1.0 if den > 0.0 else -1.0
        table[k, _DEN] = den
        table[k, _SG] = sg
        table[k, _QN] = den * sg
        table[k, _INVQ] = 1.0 / (den * sg)
        table[k, _S0] = sg * (z1 * z2)
        table[k, _S1] = sg * (z0 * z2)
        table[k, _S2] = sg * (z0 * z1)
        # Squared lengths of the edges opposite each corner: segments (v1, v2), (v0, v2), (v0, v1).
        table[k, _L0] = (x2 - x1) * (x2 - x1) + (y2 - y1) * (y2 - y1)
        table[k, _L1] = (x2 - x0) * (x2 - x0) + (y2 - y0) * (y2 - y0)
        table[k, _L2] = (x1 - x0) * (x1 - x0) + (y1 - y0) * (y1 - y0)


@numba.njit(**_JIT)
def _bin_faces(first, num, perm, rows_range, T, nty, ntx):
    """Counting sort of (image, row) pairs into tiles; returns (bin_start, bin_rows) with the table
    rows of tile ``b = (n * nty + ty) * ntx + tx`` at ``bin_rows[bin_start[b]:bin_start[b + 1]]``."""
    N = first.shape[0]
    R = perm.shape[0]
    nbins = N * nty * ntx
    counts = np.zeros(nbins + 1, dtype=np.int64)
    for n in range(N):
        f_lo = first[n]
        f_hi = f_lo + num[n]
        for k in range(R):
            if perm[k] < f_lo or perm[k] >= f_hi:
                continue
            for ty in range(rows_range[k, 0] // T, rows_range[k, 1] // T + 1):
                base = (n * nty + ty) * ntx
                for tx in range(rows_range[k, 2] // T, rows_range[k, 3] // T + 1):
                    counts[base + tx + 1] += 1
    for b in range(nbins):
        counts[b + 1] += counts[b]
    bin_rows = np.empty(counts[nbins], dtype=np.int64)
    fill = counts[:nbins].copy()
    for n in range(N):
        f_lo = first[n]
        f_hi = f_lo + num[n]
        for k in range(R):
            if perm[k] < f_lo or perm[k] >= f_hi:
                continue
            for ty in range(rows_range[k, 0] // T, rows_range[k, 1] // T + 1):
                base = (n * nty + ty) * ntx
                for tx in range(rows_range[k, 2] // T, rows_range[k, 3] // T + 1):
                    bin_rows[fill[base + tx]] = k
                    fill[base + tx] += 1
    return counts, bin_rows


@numba.njit(inline="always", **_JIT)
def _seg_dist2(px, py, ax, ay, bx, by, e):
    dx = bx - ax
    dy = by - ay
    l2 = dx * dx + dy * dy
    if l2 > EPS:
        s = dx * (px - ax) + dy * (py - ay)
        if s <= 0.0:
            ux = px - ax
            uy = py - ay
            return ux * ux + uy * uy
        if s < l2:
            return e * e / l2
    ux = px - bx
    uy = py - by
    return ux * ux + uy * uy


@numba.njit(parallel=True, **_JIT)
def _raster_tiles(
    table, rows_range, perm, bin_start, bin_rows, pxs, pys, T, nty, ntx, K, blur_radius, perspective_correct,
    clip, out,
):
    H = pys.shape[0]
    W = pxs.shape[0]
    nbins = bin_start.shape[0] - 1
    blur = blur_radius > 0.0
    for b in numba.prange(nbins):
        lo = bin_start[b]
        hi = bin_start[b + 1]
        if lo == hi:
            continue
        n = b // (nty * ntx)
        ty = (b // ntx) % nty
        tx = b % ntx
        ti0 = ty * T
        ti1 = min(ti0 + T, H) - 1
        tj0 = tx * T
        tj1 = min(tj0 + T, W) - 1
        tw = tj1 - tj0 + 1
        npix = (ti1 - ti0 + 1) * tw
        zb = np.empty(npix * K, dtype=np.float64)
        fb = np.empty(npix * K, dtype=np.int64)
        cnt = np.zeros(npix, dtype=np.int64)
        # With K > 1, visit faces by the depth of their plane at the tile centre: buffers then fill
        # with near faces first and most later pairs fail the cheap depth rejection. (Any order
        # gives the same result: the kept set is defined by exact (depth, face) keys.)
        order = np.arange(hi - lo)
        if K > 1:
            keys = np.empty(hi - lo, dtype=np.float64)
            cx = 0.5 * (pxs[tj0] + pxs[tj1])
            cy = 0.5 * (pys[ti0] + pys[ti1])
            for q_ in range(lo, hi):
                row = bin_rows[q_]
                a0 = (cx - table[row, 3]) * (table[row, 7] - table[row, 4]) - (cy - table[row, 4]) * (table[row, 6] - table[row, 3])
                a1 = (cx - table[row, 6]) * (table[row, 1] - table[row, 7]) - (cy - table[row, 7]) * (table[row, 0] - table[row, 6])
                a2 = (cx - table[row, 0]) * (table[row, 4] - table[row, 1]) - (cy - table[row, 1]) * (table[row, 3] - table[row, 0])
                if perspective_correct:
                    a0 *= table[row, _S0]
                    a1 *= table[row, _S1]
                    a2 *= table[row, _S2]
                    aq = a0 + a1 + a2
                else:
                    a0 *= table[row, _SG]
                    a1 *= table[row, _SG]
                    a2 *= table[row, _SG]
                    aq = table[row, _QN]
                key = (a0 * table[row, 2] + a1 * table[row, 5] + a2 * table[row, 8]) / aq
                keys[q_ - lo] = key if aq > 0.0 and key == key else np.inf
            order = np.argsort(keys)
        for q_o in range(hi - lo):
            row = bin_rows[lo + order[q_o]]
            f = perm[row]
            i0 = max(rows_range[row, 0], ti0)
            i1 = min(rows_range[row, 1], ti1)
            j0 = max(rows_range[row, 2], tj0)
            j1 = min(rows_range[row, 3], tj1)
            x0, y0, z0 = table[row, 0], table[row, 1], table[row, 2]
            x1, y1, z1 = table[row, 3], table[row, 4], table[row, 5]
            x2, y2, z2 = table[row, 6], table[row, 7], table[row, 8]
            sg, qn, invq = table[row, _SG], table[row, _QN], table[row, _INVQ]
            s0, s1, s2 = table[row, _S0], table[row, _S1], table[row, _S2]
            bl0 = blur_radius * table[row, _L0]
            bl1 = blur_radius * table[row, _L1]
            bl2 = blur_radius * table[row, _L2]
            dy12 = y2 - y1
            dy20 = y0 - y2
            dy01 = y1 - y0
            for i in range(i0, i1 + 1):
                py = pys[i]
                # Row-constant halves of the three edge values (same operations as the rule).
                r0 = (py - y1) * (x2 - x1)
                r1 = (py - y2) * (x0 - x2)
                r2 = (py - y0) * (x1 - x0)
                prow = (i - ti0) * tw - tj0
                for j in range(j0, j1 + 1):
                    px = pxs[j]
                    e0 = (px - x1) * dy12 - r0
                    e1 = (px - x2) * dy20 - r1
                    e2 = (px - x0) * dy01 - r2
                    # Inside needs h_0, h_1, h_2 of one strict sign, hence e0, e1, e2 of one strict
                    # sign: without blur nothing else can pass.
                    if not blur and not ((e0 > 0.0 and e1 > 0.0 and e2 > 0.0) or (e0 < 0.0 and e1 < 0.0 and e2 < 0.0)):
                        continue
                    p = prow + j
                    c = cnt[p]
                    base = p * K
                    full = c == K
                    zl = zb[base + K - 1] if full else 0.0
                    if perspective_correct:
                        h0 = e0 * s0
                        h1 = e1 * s1
                        h2 = e2 * s2
                        q = h0 + h1 + h2
                    else:
                        h0 = e0 * sg
                        h1 = e1 * sg
                        h2 = e2 * sg
                        q = qn
                    if clip:
                        if q > 0.0:
                            m0 = max(h0, 0.0)
                            m1 = max(h1, 0.0)
                            m2 = max(h2, 0.0)
                        else:
                            m0 = max(-h0, 0.0)
                            m1 = max(-h1, 0.0)
                            m2 = max(-h2, 0.0)
                        num = m0 * z0 + m1 * z1 + m2 * z2
                        dd = max(m0 + m1 + m2, CLIP_SUM_MIN * abs(q))
                        # Full buffer: this division-free test only rejects depths beyond the K-th.
                        if full and zl > _TINY:
                            thr = zl * dd * _REJECT_SLACK
                            if thr > _TINY and num > thr:
                                continue
                        pz = num / dd
                    else:
                        num = h0 * z0 + h1 * z1 + h2 * z2
                        if perspective_correct:
                            if full and q > 0.0 and zl > _TINY:
                                thr = zl * q * _REJECT_SLACK
                                if thr > _TINY and num > thr:
                                    continue
                            pz = num / q
                        else:
                            pz = num * invq
                    if not pz >= 0.0:
                        continue
                    if full and (pz > zl or (pz == zl and f > fb[base + K - 1])):
                        continue
                    if not ((h0 > 0.0 and h1 > 0.0 and h2 > 0.0) or (q < 0.0 and h0 < 0.0 and h1 < 0.0 and h2 < 0.0)):
                        # Beyond an edge's line by sqrt(blur_radius) or more: no segment is near.
                        if (h0 < 0.0 and e0 * e0 >= bl0) or (h1 < 0.0 and e1 * e1 >= bl1) or (h2 < 0.0 and e2 * e2 >= bl2):
                            continue
                        if not (
                            _seg_dist2(px, py, x0, y0, x1, y1, e2) < blur_radius
                            or _seg_dist2(px, py, x0, y0, x2, y2, e1) < blur_radius
                            or _seg_dist2(px, py, x1, y1, x2, y2, e0) < blur_radius
                        ):
                            continue
                    # Insert keeping (depth, face) sorted; the last entry falls off when full.
                    k = c if c < K else K - 1
                    while k > 0:
                        zp = zb[base + k - 1]
                        if zp > pz or (zp == pz and fb[base + k - 1] > f):
                            zb[base + k] = zp
                            fb[base + k] = fb[base + k - 1]
                            k -= 1
                        else:
                            break
                    zb[base + k] = pz
                    fb[base + k] = f
                    if c < K:
                        cnt[p] = c + 1
        for i in range(ti0, ti1 + 1):
            for j in range(tj0, tj1 + 1):
                p = (i - ti0) * tw + (j - tj0)
                for k in range(cnt[p]):
                    out[n, i, j, k] = fb[p * K + k]


def auto_bin_size(H: int, W: int) -> int:
    """Tile side: about 16 tiles across the longer side, between 8 and 64 pixels."""
    side = 1 << max(int(math.ceil(math.log2(max(H, W)))), 0)
    return int(min(max(side // 16, 8), 64))


def rasterize_numba(
    face_verts: torch.Tensor,
    first: torch.Tensor,
    num: torch.Tensor,
    image_size: Tuple[int, int],
    K: int,
    blur_radius: float,
    *,
    perspective_correct: bool,
    clip_barycentric_coords: bool,
    cull_backfaces: bool,
    bin_size: Optional[int] = None,
) -> torch.Tensor:
    """Arguments as ``diffras.raster.visibility.rasterize_visibility`` after validation: ``face_verts``
    (F, 3, 3) float64 on the CPU, ``first``/``num`` (N,) int64. Returns (N, H, W, K) int64."""
    H, W = image_size
    N = first.shape[0]
    fv = np.ascontiguousarray(face_verts.detach().cpu().numpy().reshape(-1, 9), dtype=np.float64)
    first_np = np.ascontiguousarray(first.cpu().numpy(), dtype=np.int64)
    num_np = np.ascontiguousarray(num.cpu().numpy(), dtype=np.int64)
    out = np.full((N, H, W, K), -1, dtype=np.int64)
    if N == 0 or fv.shape[0] == 0:
        return torch.from_numpy(out)
    T = auto_bin_size(H, W) if bin_size is None else (max(H, W) if bin_size == 0 else int(bin_size))
    nty = (H + T - 1) // T
    ntx = (W + T - 1) // T
    S = float(min(H, W))
    # The pixel-centre formula of diffras.raster.pixels, evaluated once in float64.
    pxs = (W - 2.0 * np.arange(W, dtype=np.float64) - 1.0) / S
    pys = (H - 2.0 * np.arange(H, dtype=np.float64) - 1.0) / S
    F = fv.shape[0]
    blur_radius = float(blur_radius)
    pix_range = np.empty((F, 4), dtype=np.int64)
    zmin = np.empty(F, dtype=np.float64)
    _face_ranges(fv, pxs, pys, blur_radius, bool(cull_backfaces), pix_range, zmin)
    perm = _order_faces(pix_range, zmin, T, ntx, nty)
    table = np.empty((perm.shape[0], _NCOL), dtype=np.float64)
    rows_range = np.empty((perm.shape[0], 4), dtype=np.int64)
    _face_table(fv, perm, pix_range, table, rows_range)
    bin_start, bin_rows = _bin_faces(first_np, num_np, perm, rows_range, T, nty, ntx)
    args = (
        table, rows_range, perm, bin_start, bin_rows, pxs, pys, T, nty, ntx, K, blur_radius,
        bool(perspective_correct), bool(clip_barycentric_coords), out,
    )
    # Waking the worker threads costs more than a small scene takes on one thread (and, on a busy
    # machine, up to a scheduler time slice): run small workloads on the calling thread only.
    work = int(((rows_range[:, 1] - rows_range[:, 0] + 1) * (rows_range[:, 3] - rows_range[:, 2] + 1)).sum())
    if work < SERIAL_WORK and numba.get_num_threads() > 1:
        threads = numba.get_num_threads()
        numba.set_num_threads(1)
        try:
            _raster_tiles(*args)
        finally:
            numba.set_num_threads(threads)
    else:
        _raster_tiles(*args)
    return torch.from_numpy(out)
