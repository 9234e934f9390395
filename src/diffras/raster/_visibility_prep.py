"""Per-face preparation for the ``"numba"`` visibility backend (``_visibility_numba``).

1. ``_face_ranges``: the per-face tests of the rule in ``diffras.raster.visibility`` that do not
   depend on the pixel (depth validity, culling, zero area) and the exact ranges of pixels whose centre
   passes the bounding-box test grown by ``sqrt(blur_radius)`` and the one without growth (the covering
   faces' search, step 8, needs only the latter).
2. ``_order_faces``: a counting sort of the surviving faces by (coarse nearest depth, screen tile),
   so that a tile reads its faces' rows from a few contiguous runs of memory, near faces first.
3. ``_face_table``: one row of per-face constants per surviving face, in that order.
4. ``_bin_faces``: a counting sort of (image, face) pairs into square tiles of ``bin_size`` pixels:
   count, prefix sum, fill. Bins are exactly as large as needed, so no face is ever dropped however
   dense the scene (PyTorch3D's ``max_faces_per_bin`` overflow cannot happen here).

All serial and O(F): they cost little next to the tile kernel, and serial kernels compile fast.
"""
from __future__ import annotations

import math

import numba
import numpy as np

from ._rule import EPS, edge

# Columns of the per-face table built by _face_table (one row per surviving face, sorted): the corners
# (x, y, z) of v0, v1, v2; the barycentric denominator ``den = edge(v2, v0, v1) + EPS`` and its sign
# ``sg``; ``q`` without perspective correction (``den * sg``) and its inverse; the per-corner factors
# ``sg * z_j * z_k`` of the perspective-corrected numerators; the squared lengths of the edges opposite
# each corner. Named, so that the kernels read ``table[row, _Z1]``, never a bare column number. The input
# ``fv`` (F, 9) of the kernels below has the same first nine columns (``face_verts.reshape(F, 9)``).
_X0, _Y0, _Z0, _X1, _Y1, _Z1, _X2, _Y2, _Z2 = range(9)
_DEN, _SG, _QN, _INVQ, _S0, _S1, _S2, _L0, _L1, _L2 = range(9, 19)
_NCOL = 19
# Columns of the pixel ranges (``pix_range`` (F, _NRANGE) and the per-row ``rows_range``, int32: eight
# columns in the bytes of four int64), inclusive, empty when the first index exceeds the second: rows
# [i0, i1] and columns [j0, j1] whose centres pass the grown bounding-box test (step 3), then the same
# without growth (``blur_radius = 0``, step 8's test).
_I0, _I1, _J0, _J1, _HI0, _HI1, _HJ0, _HJ1 = range(8)
_NRANGE = 8
_ZBUCKETS = 32

_JIT = dict(cache=True, nogil=True, error_model="numpy")

# The rule's edge function compiled into the kernels (inlined: the same operations as the reference).
_edge = numba.njit(inline="always", **_JIT)(edge)


@numba.njit(**_JIT)
def _centre_range(centres, S, lo, hi):
    """Inclusive index range [k0, k1] of the pixel centres with ``lo <= centres[k] <= hi`` (empty when
    k0 > k1). Centres ``(n - 2k - 1) / S`` decrease with k: guess the range in closed form, then settle it
    with the very comparisons of the rule, so the kernel needs no per-pixel bounding-box test. Serves
    both columns (x) and rows (y)."""
    n = centres.shape[0]
    k0 = int(math.floor(min(max((n - 1.0 - hi * S) * 0.5, 0.0), n - 1.0)))
    while k0 > 0 and centres[k0 - 1] <= hi:
        k0 -= 1
    while k0 < n and centres[k0] > hi:
        k0 += 1
    k1 = int(math.ceil(min(max((n - 1.0 - lo * S) * 0.5, -1.0), n - 1.0)))
    while k1 < n - 1 and centres[k1 + 1] >= lo:
        k1 += 1
    while k1 >= 0 and centres[k1] < lo:
        k1 -= 1
    return k0, k1


@numba.njit(**_JIT)
def _face_ranges(fv, pxs, pys, blur_radius, cull_backfaces, pix_range, zmin_out):
    """``pix_range`` (F, _NRANGE): exactly the pixels whose centre passes the rule's bounding-box test,
    grown (columns _I0.._J1) and not (_HI0.._HJ1), empty when the face is skipped; ``zmin_out`` (F,)
    nearest depth."""
    F = fv.shape[0]
    H = pys.shape[0]
    W = pxs.shape[0]
    S = float(min(H, W))
    r = math.sqrt(blur_radius)
    for f in range(F):
        x0, y0, z0 = fv[f, _X0], fv[f, _Y0], fv[f, _Z0]
        x1, y1, z1 = fv[f, _X1], fv[f, _Y1], fv[f, _Z1]
        x2, y2, z2 = fv[f, _X2], fv[f, _Y2], fv[f, _Z2]
        for c in range(0, _NRANGE, 2):
            pix_range[f, c] = 1
            pix_range[f, c + 1] = 0
        zmin = min(z0, min(z1, z2))
        zmin_out[f] = zmin
        if zmin < EPS:
            continue
        face_area = _edge(x0, y0, x1, y1, x2, y2)
        if cull_backfaces and face_area < 0.0:
            continue
        if face_area <= EPS and face_area >= -EPS:
            continue
        xmin = min(x0, min(x1, x2))
        xmax = max(x0, max(x1, x2))
        ymin = min(y0, min(y1, y2))
        ymax = max(y0, max(y1, y2))
        j0, j1 = _centre_range(pxs, S, xmin - r, xmax + r)
        i0, i1 = _centre_range(pys, S, ymin - r, ymax + r)
        if j0 > j1 or i0 > i1:
            continue
        pix_range[f, _I0] = i0
        pix_range[f, _I1] = i1
        pix_range[f, _J0] = j0
        pix_range[f, _J1] = j1
        # The reference adds r = 0.0 to the box too: xmax + 0.0 == xmax, so the plain box is the same test.
        if r > 0.0:
            j0, j1 = _centre_range(pxs, S, xmin, xmax)
            i0, i1 = _centre_range(pys, S, ymin, ymax)
        if j0 <= j1 and i0 <= i1:
            pix_range[f, _HI0] = i0
            pix_range[f, _HI1] = i1
            pix_range[f, _HJ0] = j0
            pix_range[f, _HJ1] = j1


@numba.njit(**_JIT)
def _order_faces(pix_range, zmin, T, ntx, nty):
    """Surviving faces sorted by (depth bucket, home tile): a counting sort, O(F)."""
    F = pix_range.shape[0]
    lo = np.inf
    hi = -np.inf
    nv = 0
    for f in range(F):
        if pix_range[f, _I0] <= pix_range[f, _I1]:
            nv += 1
            lo = min(lo, zmin[f])
            hi = max(hi, zmin[f])
    ntiles = ntx * nty
    nkeys = _ZBUCKETS * ntiles
    scale = _ZBUCKETS / (hi - lo) if hi > lo else 0.0
    keys = np.empty(F, dtype=np.int64)
    counts = np.zeros(nkeys + 1, dtype=np.int64)
    for f in range(F):
        if pix_range[f, _I0] <= pix_range[f, _I1]:
            zb = min(int((zmin[f] - lo) * scale), _ZBUCKETS - 1)
            key = zb * ntiles + (pix_range[f, _I0] // T) * ntx + pix_range[f, _J0] // T
            keys[f] = key
            counts[key + 1] += 1
    for k in range(nkeys):
        counts[k + 1] += counts[k]
    perm = np.empty(nv, dtype=np.int64)
    for f in range(F):
        if pix_range[f, _I0] <= pix_range[f, _I1]:
            perm[counts[keys[f]]] = f
            counts[keys[f]] += 1
    return perm


@numba.njit(**_JIT)
def _face_table(fv, perm, pix_range, table, rows_range):
    """Row k: the per-face constants of the rule for face ``perm[k]``."""
    for k in range(perm.shape[0]):
        f = perm[k]
        for c in range(_NRANGE):
            rows_range[k, c] = pix_range[f, c]
        x0, y0, z0 = fv[f, _X0], fv[f, _Y0], fv[f, _Z0]
        x1, y1, z1 = fv[f, _X1], fv[f, _Y1], fv[f, _Z1]
        x2, y2, z2 = fv[f, _X2], fv[f, _Y2], fv[f, _Z2]
        for c in range(9):
            table[k, c] = fv[f, c]  # fv's columns are the table's _X0 .. _Z2
        den = _edge(x2, y2, x0, y0, x1, y1) + EPS
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
            for ty in range(rows_range[k, _I0] // T, rows_range[k, _I1] // T + 1):
                base = (n * nty + ty) * ntx
                for tx in range(rows_range[k, _J0] // T, rows_range[k, _J1] // T + 1):
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
            for ty in range(rows_range[k, _I0] // T, rows_range[k, _I1] // T + 1):
                base = (n * nty + ty) * ntx
                for tx in range(rows_range[k, _J0] // T, rows_range[k, _J1] // T + 1):
                    bin_rows[fill[base + tx]] = k
                    fill[base + tx] += 1
    return counts, bin_rows
