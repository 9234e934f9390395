"""The ``"numba"`` visibility backend: binned, tile-parallel CPU rasterization.

Faces are prepared, ordered and binned into square screen tiles by ``_visibility_prep`` (counting
sorts: bins grow as needed, no face is ever dropped). Then ``_raster_tiles`` (``prange`` over tiles)
tests every face of a tile against the pixels of its range inside the tile, and a per-pixel buffer
keeps the K smallest ``(depth, face)`` pairs sorted.
Division-free tests that provably imply the rule's skips reject most (pixel, face) pairs before the one
division of the exact depth.

The per-pixel arithmetic is the reference rule written with the same float64 operations in the same
order (only operand loads are hoisted), with ``error_model="numpy"`` for IEEE division and no
fastmath, so that decisions match the reference bit for bit.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Optional, Tuple

import numba
import numpy as np
import torch

from ._covering_numba import (
    COVER_ALL,
    COVER_FULL,
    COVER_FULL_WITHOUT,
    FACE_MASK,
    IN_I,
    NO_COVER,
    TAME,
    _cover_tile,
)
from ._klist import insert_sorted
from ._rule import CLIP_SUM_MIN, EPS, pixel_center
from ._visibility_prep import (
    _HI0,
    _HI1,
    _HJ0,
    _HJ1,
    _I0,
    _I1,
    _INVQ,
    _J0,
    _J1,
    _L0,
    _L1,
    _L2,
    _NCOL,
    _NRANGE,
    _QN,
    _S0,
    _S1,
    _S2,
    _SG,
    _X0,
    _X1,
    _X2,
    _Y0,
    _Y1,
    _Y2,
    _Z0,
    _Z1,
    _Z2,
    _bin_faces,
    _edge,
    _face_ranges,
    _face_table,
    _order_faces,
)

if TYPE_CHECKING:
    from .settings import RasterSettings

# Below this many candidate (pixel, face) tests the kernel runs on the calling thread.
SERIAL_WORK = 1 << 16
# Division-free depth rejection (see _raster_tiles): ``num > zl * den * _REJECT_SLACK`` proves
# ``fl(num / den) > zl`` when the threshold is a normal number (the slack is far above the 3 ulp of
# rounding it must cover) and zl is not tiny (no subnormal depths).
_REJECT_SLACK = 1.0 + 1e-12
_TINY = 1e-290

_JIT = dict(cache=True, nogil=True, error_model="numpy")


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


@numba.njit(inline="always", **_JIT)
def _tile_order(table, bin_rows, lo, hi, cx, cy, perspective_correct, clip):
    """Rows ``bin_rows[lo:hi]`` of a tile ordered by the depth of each face's plane at the tile centre
    (cx, cy), or by its nearest corner when clipping (clipped depths stay within the corners' range)."""
    keys = np.empty(hi - lo, dtype=np.float64)
    for q_ in range(lo, hi):
        row = bin_rows[q_]
        x0, y0, z0 = table[row, _X0], table[row, _Y0], table[row, _Z0]
        x1, y1, z1 = table[row, _X1], table[row, _Y1], table[row, _Z1]
        x2, y2, z2 = table[row, _X2], table[row, _Y2], table[row, _Z2]
        a0 = _edge(cx, cy, x1, y1, x2, y2)
        a1 = _edge(cx, cy, x2, y2, x0, y0)
        a2 = _edge(cx, cy, x0, y0, x1, y1)
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
        key = (a0 * z0 + a1 * z1 + a2 * z2) / aq
        if clip:
            key = min(z0, min(z1, z2))
        keys[q_ - lo] = key if aq > 0.0 and key == key else np.inf
    return np.argsort(keys)


@numba.njit(parallel=True, **_JIT)
def _raster_tiles(
    table, rows_range, perm, bin_start, bin_rows, pxs, pys, T, nty, ntx, K, blur_radius, perspective_correct,
    clip, cover_mode, out, cover, lost, counts,
):
    """Fill ``out`` (N, H, W, K) with the K-nearest lists (steps 1-7 of the rule) and ``counts`` (N, H, W) with
    their lengths (a list fills ``out[n, i, j, :counts[n, i, j]]``), tiles in parallel, and,
    unless ``cover_mode`` is 0, ``cover`` (N, H, W) with the covering faces and ``lost`` (N, H, W) with the
    pixels whose list lacks it (step 8, ``_covering_numba``)."""
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
        if K > 1:
            cx = 0.5 * (pxs[tj0] + pxs[tj1])
            cy = 0.5 * (pys[ti0] + pys[ti1])
            order = _tile_order(table, bin_rows, lo, hi, cx, cy, perspective_correct, clip)
        else:
            order = np.arange(hi - lo)
        # Whole-tile rejection. When depths are convex combinations of the corners' (clipped
        # barycentrics, or inside-only tests with perspective correction), pz >= zmin * (1 - 5 eps);
        # once every pixel of the tile holds K faces, a face whose zmin exceeds the largest K-th
        # depth of the tile cannot enter any pixel. tmax only decreases, so a stale value is safe.
        zmin_bound = clip or (perspective_correct and not blur)
        nfull = 0
        tmax = np.inf
        since = 0
        for q_o in range(hi - lo):
            row = bin_rows[lo + order[q_o]]
            x0, y0, z0 = table[row, _X0], table[row, _Y0], table[row, _Z0]
            x1, y1, z1 = table[row, _X1], table[row, _Y1], table[row, _Z1]
            x2, y2, z2 = table[row, _X2], table[row, _Y2], table[row, _Z2]
            # Below every depth this face can produce (only meaningful when zmin_bound).
            zlo = min(z0, min(z1, z2)) * (1.0 - 1e-12)
            if zmin_bound and nfull == npix:
                if since >= 32 or tmax == np.inf:
                    tmax = zb[K - 1]
                    for p in range(1, npix):
                        tmax = max(tmax, zb[p * K + K - 1])
                    since = 0
                since += 1
                if zlo > tmax:
                    continue
            f = perm[row]
            i0 = max(rows_range[row, _I0], ti0)
            i1 = min(rows_range[row, _I1], ti1)
            j0 = max(rows_range[row, _J0], tj0)
            j1 = min(rows_range[row, _J1], tj1)
            hi0, hi1 = rows_range[row, _HI0], rows_range[row, _HI1]
            hj0, hj1 = rows_range[row, _HJ0], rows_range[row, _HJ1]
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
                # Row-constant halves of the three edge values: _rule.edge(p, v1, v2), edge(p, v2, v0),
                # edge(p, v0, v1) with the same operations in the same order, the row part hoisted.
                r0 = (py - y1) * (x2 - x1)
                r1 = (py - y2) * (x0 - x2)
                r2 = (py - y0) * (x1 - x0)
                prow = (i - ti0) * tw - tj0
                for j in range(j0, j1 + 1):
                    p = prow + j
                    if zmin_bound and cnt[p] == K and zlo > zb[p * K + K - 1]:
                        continue
                    px = pxs[j]
                    e0 = (px - x1) * dy12 - r0
                    e1 = (px - x2) * dy20 - r1
                    e2 = (px - x0) * dy01 - r2
                    # Inside needs h_0, h_1, h_2 of one strict sign, hence e0, e1, e2 of one strict
                    # sign: without blur nothing else can pass.
                    if not blur and not ((e0 > 0.0 and e1 > 0.0 and e2 > 0.0) or (e0 < 0.0 and e1 < 0.0 and e2 < 0.0)):
                        continue
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
                    if full and (pz > zl or (pz == zl and f > (fb[base + K - 1] & FACE_MASK))):
                        continue
                    inside = (h0 > 0.0 and h1 > 0.0 and h2 > 0.0) or (q < 0.0 and h0 < 0.0 and h1 < 0.0 and h2 < 0.0)
                    if not inside:
                        # Beyond an edge's line by sqrt(blur_radius) or more: no segment is near.
                        if (h0 < 0.0 and e0 * e0 >= bl0) or (h1 < 0.0 and e1 * e1 >= bl1) or (h2 < 0.0 and e2 * e2 >= bl2):
                            continue
                        if not (
                            _seg_dist2(px, py, x0, y0, x1, y1, e2) < blur_radius
                            or _seg_dist2(px, py, x0, y0, x2, y2, e1) < blur_radius
                            or _seg_dist2(px, py, x1, y1, x2, y2, e0) < blur_radius
                        ):
                            continue
                    # The entry, marked when the face is in I (inside, within the plain box, unclipped
                    # depth >= 0: in mode 1 that depth is pz itself; see _covering_numba).
                    fi = f
                    if inside and cover_mode and hi0 <= i and i <= hi1 and hj0 <= j and j <= hj1:
                        if cover_mode == COVER_FULL_WITHOUT or (h0 * z0 + h1 * z1 + h2 * z2) * invq >= 0.0:
                            fi = f | IN_I
                    # Keep (depth, face) sorted; the last entry falls off when full.
                    cnt[p] = insert_sorted(zb, fb, base, c, K, pz, f, fi)
                    if c + 1 == K:
                        nfull += 1
        for i in range(ti0, ti1 + 1):
            for j in range(tj0, tj1 + 1):
                p = (i - ti0) * tw + (j - tj0)
                counts[n, i, j] = cnt[p]
                for k in range(cnt[p]):
                    out[n, i, j, k] = fb[p * K + k] & FACE_MASK
        if cover_mode:
            _cover_tile(
                table, rows_range, perm, bin_rows, lo, hi, pxs, pys, ti0, ti1, tj0, tj1, K, perspective_correct,
                cover_mode, fb, cnt, n, cover, lost,
            )


def auto_bin_size(H: int, W: int) -> int:
    """Tile side: about 16 tiles across the longer side, between 8 and 64 pixels."""
    side = 1 << max(int(math.ceil(math.log2(max(H, W)))), 0)
    return int(min(max(side // 16, 8), 64))


def cover_mode(settings: "RasterSettings", fv: np.ndarray) -> int:
    """Which pixels ``_raster_tiles`` searches for their covering face (``_covering_numba``)."""
    if settings.blur_radius == 0.0:
        return NO_COVER
    if not settings.clip_barycentric_coords or settings.perspective_correct:
        return COVER_FULL_WITHOUT
    return COVER_FULL if fv.size == 0 or float(np.abs(fv).max()) < TAME else COVER_ALL


def rasterize_numba(
    face_verts: torch.Tensor,
    first: torch.Tensor,
    num: torch.Tensor,
    settings: "RasterSettings",
    K: int,
    covering: bool = False,
    counts: bool = False,
):
    """Steps 1-7 and, with ``covering``, step 8's covering faces, in one pass over the tiles.

    Args: those of ``diffras.raster.visibility.visible_faces``: ``face_verts`` (F, 3, 3) float64 on the
    CPU, ``first``/``num`` (N,) int64, K the list length; ``covering`` asks for the covering faces.
    ``counts``: also return the list lengths, and leave the slots past them uninitialised (for a caller that
    packs the lists at once: the (N, H, W, K) buffer is then never filled with -1 and its untouched pages
    never mapped).

    Returns:
        ``(pix_to_face, cover, lost)``: (N, H, W, K) int64 strict K-nearest lists; (N, H, W) int64 covering
        faces (-1 where none) and (N, H, W) bool pixels whose list lacks its covering face, both None
        unless ``covering`` and ``blur_radius > 0``. With ``counts``, a fourth entry: (N, H, W) int32 list
        lengths (``pix_to_face[n, i, j, :counts[n, i, j]]`` is the list; the rest is garbage).
    """
    H, W = settings.image_size
    N = first.shape[0]
    blur_radius = float(settings.blur_radius)
    fv = np.ascontiguousarray(face_verts.detach().cpu().numpy().reshape(-1, 9), dtype=np.float64)
    first_np = np.ascontiguousarray(first.cpu().numpy(), dtype=np.int64)
    num_np = np.ascontiguousarray(num.cpu().numpy(), dtype=np.int64)
    mode = cover_mode(settings, fv) if covering else NO_COVER
    out = np.empty((N, H, W, K), dtype=np.int64) if counts else np.full((N, H, W, K), -1, dtype=np.int64)
    cover = np.full((N, H, W) if mode else (0, 0, 0), -1, dtype=np.int64)
    lost = np.zeros((N, H, W) if mode else (0, 0, 0), dtype=np.bool_)
    lengths = np.zeros((N, H, W), dtype=np.int32)
    result = (
        torch.from_numpy(out),
        torch.from_numpy(cover) if mode else None,
        torch.from_numpy(lost) if mode else None,
    ) + ((torch.from_numpy(lengths),) if counts else ())
    if N == 0 or fv.shape[0] == 0:
        return result
    bin_size = settings.bin_size
    T = auto_bin_size(H, W) if bin_size is None else (max(H, W) if bin_size == 0 else int(bin_size))
    # At most 512 x 512 tiles per image: a tiny bin_size on a huge image changes speed, not memory.
    T = max(T, -(-max(H, W) // 512))
    nty = (H + T - 1) // T
    ntx = (W + T - 1) // T
    S = float(min(H, W))
    pxs = pixel_center(np.arange(W, dtype=np.float64), W, S)
    pys = pixel_center(np.arange(H, dtype=np.float64), H, S)
    F = fv.shape[0]
    pix_range = np.empty((F, _NRANGE), dtype=np.int32)
    zmin = np.empty(F, dtype=np.float64)
    _face_ranges(fv, pxs, pys, blur_radius, bool(settings.cull_backfaces), pix_range, zmin)
    # Ordering cells: tiles, or coarser so that the sort keys stay few (<= 64 x 64 cells).
    C = max(T, -(-max(H, W) // 64))
    perm = _order_faces(pix_range, zmin, C, (W + C - 1) // C, (H + C - 1) // C)
    table = np.empty((perm.shape[0], _NCOL), dtype=np.float64)
    rows_range = np.empty((perm.shape[0], _NRANGE), dtype=np.int32)
    _face_table(fv, perm, pix_range, table, rows_range)
    bin_start, bin_rows = _bin_faces(first_np, num_np, perm, rows_range, T, nty, ntx)
    args = (
        table, rows_range, perm, bin_start, bin_rows, pxs, pys, T, nty, ntx, K, blur_radius,
        bool(settings.perspective_correct), bool(settings.clip_barycentric_coords), mode, out, cover, lost, lengths,
    )
    # Waking the worker threads costs more than a small scene takes on one thread (and, on a busy
    # machine, up to a scheduler time slice): run small workloads on the calling thread only.
    work = int(((rows_range[:, _I1] - rows_range[:, _I0] + 1) * (rows_range[:, _J1] - rows_range[:, _J0] + 1)).sum())
    if work < SERIAL_WORK and numba.get_num_threads() > 1:
        threads = numba.get_num_threads()
        numba.set_num_threads(1)
        try:
            _raster_tiles(*args)
        finally:
            numba.set_num_threads(threads)
    else:
        _raster_tiles(*args)
    return result
