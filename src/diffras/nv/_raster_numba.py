"""The CPU visibility kernel of ``diffras.nv.rasterize``: which triangle each pixel centre sees.

Homogeneous (clip-space) rasterization, so triangles with vertices behind the eye (w <= 0) need no
explicit clipping: for pixel centre p = (xn, yn, 1) in NDC and clip-space corners v_k = (x_k, y_k, w_k),
the edge functions ``e_k = p . (v_i x v_j)`` for (k, i, j) in ((0, 1, 2), (1, 2, 0), (2, 0, 1)) are
proportional to the perspective-correct barycentrics, and ``det = v_0 . (v_1 x v_2) = sum_k e_k w_k``
gives the sign of the interpolated w. The centre is covered, in front of the eye, iff every
``s * e_k >= 0`` with ``s = sign(det)`` (edges with ``e_k == 0`` are included only on their "top-left"
side, ``s * (a_k, b_k) > (0, 0)`` lexicographically, so a pixel centre on an edge shared by two
triangles of equal winding goes to exactly one of them), and the depth ``z/w = sum_k e_k z_k / det``
lies in [-1, 1] (near and far clipping). Among the covering triangles the smallest z/w wins, ties to the
lower triangle index. With ``prev_depth`` (depth peeling) points at ``z/w <= prev_depth`` are culled.

Everything in float64. ``rasterize_reference`` in tests/nv is the same rule as a plain Python loop.
"""
from __future__ import annotations

import numba
import numpy as np

_JIT = dict(cache=True, nogil=True, error_model="numpy")

# Per-triangle setup columns: 3 edge coefficient rows (a, b, c), det, sign, z0..z2, pixel box.
_NCOL = 18
_BOX_EPS = 1e-3


def _setup_py(pos, tri, vbase, lo, hi, H, W, table):
    """One row of constants per (image, triangle) in ``table[n, t - lo[n]]``."""
    N = lo.shape[0]
    for n in range(N):
        for t in numba.prange(lo[n], hi[n]):
            row = table[n, t - lo[n]]
            row[16] = 1.0  # empty box (ymin > ymax) unless set below
            row[17] = 0.0
            i0 = tri[t, 0] + vbase[n]
            i1 = tri[t, 1] + vbase[n]
            i2 = tri[t, 2] + vbase[n]
            x0, y0, z0, w0 = pos[i0, 0], pos[i0, 1], pos[i0, 2], pos[i0, 3]
            x1, y1, z1, w1 = pos[i1, 0], pos[i1, 1], pos[i1, 2], pos[i1, 3]
            x2, y2, z2, w2 = pos[i2, 0], pos[i2, 1], pos[i2, 2], pos[i2, 3]
            # Trivial frustum rejection: all three corners outside one clip plane.
            if (x0 > w0 and x1 > w1 and x2 > w2) or (x0 < -w0 and x1 < -w1 and x2 < -w2):
                continue
            if (y0 > w0 and y1 > w1 and y2 > w2) or (y0 < -w0 and y1 < -w1 and y2 < -w2):
                continue
            if (z0 > w0 and z1 > w1 and z2 > w2) or (z0 < -w0 and z1 < -w1 and z2 < -w2):
                continue
            # Edge k: cross product of the other two corners (x, y, w).
            a0 = y1 * w2 - w1 * y2
            b0 = w1 * x2 - x1 * w2
            c0 = x1 * y2 - y1 * x2
            a1 = y2 * w0 - w2 * y0
            b1 = w2 * x0 - x2 * w0
            c1 = x2 * y0 - y2 * x0
            a2 = y0 * w1 - w0 * y1
            b2 = w0 * x1 - x0 * w1
            c2 = x0 * y1 - y0 * x1
            det = c0 * w0 + (a0 * x0 + b0 * y0)
            if det == 0.0 or not np.isfinite(det):
                continue
            s = 1.0 if det > 0.0 else -1.0
            row[0] = a0
            row[1] = b0
            row[2] = c0
            row[3] = a1
            row[4] = b1
            row[5] = c1
            row[6] = a2
            row[7] = b2
            row[8] = c2
            row[9] = det
            row[10] = s
            row[11] = z0
            row[12] = z1
            row[13] = z2
            if w0 > 0.0 and w1 > 0.0 and w2 > 0.0:
                # Pixel box of the projected triangle (pixel j's centre is at x = j + 0.5).
                px0 = (x0 / w0 + 1.0) * 0.5 * W
                px1 = (x1 / w1 + 1.0) * 0.5 * W
                px2 = (x2 / w2 + 1.0) * 0.5 * W
                py0 = (y0 / w0 + 1.0) * 0.5 * H
                py1 = (y1 / w1 + 1.0) * 0.5 * H
                py2 = (y2 / w2 + 1.0) * 0.5 * H
                # Pixels whose centres lie in the box, with 1/1000 pixel of margin for the rounding of
                # x / w (far below it); the exact test decides. Clamped so the int casts stay in range.
                row[14] = min(max(0.0, np.ceil(min(px0, px1, px2) - 0.5 - _BOX_EPS)), float(W))
                row[15] = max(min(W - 1.0, np.floor(max(px0, px1, px2) - 0.5 + _BOX_EPS)), -1.0)
                row[16] = min(max(0.0, np.ceil(min(py0, py1, py2) - 0.5 - _BOX_EPS)), float(H))
                row[17] = max(min(H - 1.0, np.floor(max(py0, py1, py2) - 0.5 + _BOX_EPS)), -1.0)
            else:
                # A corner at or behind the eye: the projected box is unbounded; test every pixel.
                row[14] = 0.0
                row[15] = W - 1.0
                row[16] = 0.0
                row[17] = H - 1.0


@numba.njit(inline="always", **_JIT)
def _inside(e, a, b, s):
    v = s * e
    if v > 0.0:
        return True
    if v < 0.0:
        return False
    # Exactly on the edge's line: the top-left rule on the oriented edge normal.
    sa = s * a
    return sa > 0.0 or (sa == 0.0 and s * b > 0.0)


@numba.njit(**_JIT)
def _bin_bands(table, lo, hi, band, nb):
    """Triangles of each (image, band of rows), in index order (the depth tie rule needs that order):
    ``items[start[job]:start[job + 1]]`` for job = n * nb + band index. Serial; a pass over the boxes."""
    N = lo.shape[0]
    start = np.zeros(N * nb + 1, np.int64)
    for n in range(N):
        for t in range(hi[n] - lo[n]):
            ymin = table[n, t, 16]
            ymax = table[n, t, 17]
            if ymin > ymax:
                continue
            for b in range(int(ymin) // band, int(ymax) // band + 1):
                start[n * nb + b + 1] += 1
    for k in range(N * nb):
        start[k + 1] += start[k]
    items = np.empty(start[N * nb], np.int64)
    fill = start[:-1].copy()
    for n in range(N):
        for t in range(hi[n] - lo[n]):
            ymin = table[n, t, 16]
            ymax = table[n, t, 17]
            if ymin > ymax:
                continue
            for b in range(int(ymin) // band, int(ymax) // band + 1):
                items[fill[n * nb + b]] = t
                fill[n * nb + b] += 1
    return start, items


def _raster_bands_py(table, lo, hi, H, W, band, start, items, prev, use_prev, tri_out, z_out):
    N = lo.shape[0]
    nb = (H + band - 1) // band
    for job in numba.prange(N * nb):
        n = job // nb
        r0 = (job % nb) * band
        r1 = min(H, r0 + band)
        for k in range(start[job], start[job + 1]):
            t = items[k]
            row = table[n, t]
            ymin = row[16]
            ymax = row[17]
            if ymin > ymax or ymax < r0 or ymin >= r1:
                continue
            a0, b0, c0 = row[0], row[1], row[2]
            a1, b1, c1 = row[3], row[4], row[5]
            a2, b2, c2 = row[6], row[7], row[8]
            det = row[9]
            s = row[10]
            z0, z1, z2 = row[11], row[12], row[13]
            i_lo = max(r0, int(ymin))
            i_hi = min(r1 - 1, int(ymax))
            j_lo = int(row[14])
            j_hi = int(row[15])
            for i in range(i_lo, i_hi + 1):
                yn = (2.0 * i + 1.0) / H - 1.0
                for j in range(j_lo, j_hi + 1):
                    xn = (2.0 * j + 1.0) / W - 1.0
                    e0 = a0 * xn + b0 * yn + c0
                    if not _inside(e0, a0, b0, s):
                        continue
                    e1 = a1 * xn + b1 * yn + c1
                    if not _inside(e1, a1, b1, s):
                        continue
                    e2 = a2 * xn + b2 * yn + c2
                    if not _inside(e2, a2, b2, s):
                        continue
                    zw = (e0 * z0 + e1 * z1 + e2 * z2) / det
                    if not (zw >= -1.0 and zw <= 1.0):
                        continue
                    if use_prev and zw <= prev[n, i, j]:
                        continue
                    if tri_out[n, i, j] == 0 or zw < z_out[n, i, j]:
                        # Triangles are visited in index order, so an equal depth keeps the lower index.
                        z_out[n, i, j] = zw
                        tri_out[n, i, j] = lo[n] + t + 1


# Each kernel compiled twice: threads pay off only for large work (waking the pool costs more than
# rasterizing a few small triangles, and much more on a loaded machine).
_setup_par = numba.njit(parallel=True, **_JIT)(_setup_py)
_setup_ser = numba.njit(**_JIT)(_setup_py)
_bands_par = numba.njit(parallel=True, **_JIT)(_raster_bands_py)
_bands_ser = numba.njit(**_JIT)(_raster_bands_py)
PARALLEL_WORK = 1 << 16


def rasterize_ids(pos, tri, vbase, lo, hi, H, W, prev=None):
    """Visible triangle (1-based, 0 empty) and its z/w for every pixel; numpy in, numpy out.

    pos: (Vtot, 4) float64 clip space; tri: (T, 3) int64; vbase, lo, hi: (N,) int64 vertex offset and
    triangle range [lo, hi) of each image; prev: None or (N, H, W) float64 depths to peel past.
    Returns (tri_id (N, H, W) int64, zw (N, H, W) float64)."""
    N = lo.shape[0]
    tmax = int((hi - lo).max()) if N else 0
    table = np.zeros((N, max(tmax, 1), _NCOL))
    if tmax:
        (_setup_par if N * tmax >= PARALLEL_WORK // 16 else _setup_ser)(pos, tri, vbase, lo, hi, H, W, table)
    tri_out = np.zeros((N, H, W), np.int64)
    z_out = np.zeros((N, H, W), np.float64)
    use_prev = prev is not None
    if prev is None:
        prev = np.zeros((1, 1, 1))
    band = 8 if H >= 64 else max(1, H // 4)
    nb = (H + band - 1) // band
    start, items = _bin_bands(table, lo, hi, band, nb)
    work = N * H * W + items.shape[0]
    (_bands_par if work >= PARALLEL_WORK else _bands_ser)(table, lo, hi, H, W, band, start, items, prev, use_prev,
                                                          tri_out, z_out)
    return tri_out, z_out
