"""The ``"numba"`` visibility backend: binned, tile-parallel CPU rasterization.

Three steps, each over plain float64/int64 arrays:

1. ``_prepare_faces`` (parallel over faces): the per-face tests of the rule in
   ``diffras.raster.visibility`` that do not depend on the pixel (depth validity, culling, zero area),
   the bounding box grown by ``sqrt(blur_radius)``, and a conservative pixel range for it.
2. ``_bin_faces``: a counting sort of (image, face) pairs into square screen tiles of ``bin_size``
   pixels: count, prefix sum, fill. Bins are exactly as large as needed, so no face is ever dropped
   however dense the scene (PyTorch3D's ``max_faces_per_bin`` overflow cannot happen here).
3. ``_raster_tiles`` (``prange`` over tiles): every face of a tile is tested against the pixels of its
   range inside the tile, and a per-pixel buffer keeps the K smallest ``(depth, face)`` pairs sorted.

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

# Columns of the per-face table built by _prepare_faces.
_X0, _Y0, _Z0, _X1, _Y1, _Z1, _X2, _Y2, _Z2 = range(9)
_XLO, _XHI, _YLO, _YHI, _DEN = range(9, 14)
_NCOL = 14

_JIT = dict(cache=True, nogil=True, error_model="numpy")


@numba.njit(parallel=True, **_JIT)
def _prepare_faces(fv, H, W, blur_radius, cull_backfaces, table, pix_range):
    """Fill ``table`` (F, _NCOL) and ``pix_range`` (F, 4) = [i0, i1, j0, j1] (inclusive), with
    ``i0 > i1`` for faces that can touch no pixel."""
    F = fv.shape[0]
    S = float(min(H, W))
    r = math.sqrt(blur_radius)
    for f in numba.prange(F):
        x0, y0, z0 = fv[f, 0], fv[f, 1], fv[f, 2]
        x1, y1, z1 = fv[f, 3], fv[f, 4], fv[f, 5]
        x2, y2, z2 = fv[f, 6], fv[f, 7], fv[f, 8]
        for c in range(9):
            table[f, c] = fv[f, c]
        pix_range[f, 0] = 1
        pix_range[f, 1] = 0
        pix_range[f, 2] = 1
        pix_range[f, 3] = 0
        if min(z0, min(z1, z2)) < EPS:
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
        table[f, _XLO] = xlo
        table[f, _XHI] = xhi
        table[f, _YLO] = ylo
        table[f, _YHI] = yhi
        table[f, _DEN] = (x2 - x0) * (y1 - y0) - (y2 - y0) * (x1 - x0) + EPS
        # Pixel centre j sits at x = (W - 2j - 1) / S (x decreases with j); the exact bbox test runs
        # per pixel, so this range only needs to contain every pixel that may pass it (one pixel of
        # slack absorbs rounding).
        ja = (W - 1.0 - xhi * S) * 0.5 - 1.0
        jb = (W - 1.0 - xlo * S) * 0.5 + 1.0
        ia = (H - 1.0 - yhi * S) * 0.5 - 1.0
        ib = (H - 1.0 - ylo * S) * 0.5 + 1.0
        if jb < 0.0 or ja > W - 1.0 or ib < 0.0 or ia > H - 1.0:
            continue
        pix_range[f, 0] = int(math.floor(max(ia, 0.0)))
        pix_range[f, 1] = int(math.ceil(min(ib, H - 1.0)))
        pix_range[f, 2] = int(math.floor(max(ja, 0.0)))
        pix_range[f, 3] = int(math.ceil(min(jb, W - 1.0)))


@numba.njit(**_JIT)
def _bin_faces(first, num, pix_range, T, nty, ntx):
    """Counting sort of (image, face) pairs into tiles; returns (bin_start, bin_faces) with the faces
    of tile ``b = (n * nty + ty) * ntx + tx`` at ``bin_faces[bin_start[b]:bin_start[b + 1]]``, in
    increasing face order."""
    N = first.shape[0]
    nbins = N * nty * ntx
    counts = np.zeros(nbins + 1, dtype=np.int64)
    for n in range(N):
        for f in range(first[n], first[n] + num[n]):
            i0, i1, j0, j1 = pix_range[f, 0], pix_range[f, 1], pix_range[f, 2], pix_range[f, 3]
            if i0 > i1 or j0 > j1:
                continue
            for ty in range(i0 // T, i1 // T + 1):
                base = (n * nty + ty) * ntx
                for tx in range(j0 // T, j1 // T + 1):
                    counts[base + tx + 1] += 1
    for b in range(nbins):
        counts[b + 1] += counts[b]
    bin_faces = np.empty(counts[nbins], dtype=np.int64)
    fill = counts[:nbins].copy()
    for n in range(N):
        for f in range(first[n], first[n] + num[n]):
            i0, i1, j0, j1 = pix_range[f, 0], pix_range[f, 1], pix_range[f, 2], pix_range[f, 3]
            if i0 > i1 or j0 > j1:
                continue
            for ty in range(i0 // T, i1 // T + 1):
                base = (n * nty + ty) * ntx
                for tx in range(j0 // T, j1 // T + 1):
                    bin_faces[fill[base + tx]] = f
                    fill[base + tx] += 1
    return counts, bin_faces


@numba.njit(inline="always", **_JIT)
def _seg_dist2(px, py, ax, ay, bx, by):
    dx = bx - ax
    dy = by - ay
    l2 = dx * dx + dy * dy
    if l2 <= EPS:
        ex = px - bx
        ey = py - by
        return ex * ex + ey * ey
    t = (dx * (px - ax) + dy * (py - ay)) / l2
    t = min(max(t, 0.0), 1.0)
    ex = px - (ax + t * dx)
    ey = py - (ay + t * dy)
    return ex * ex + ey * ey


@numba.njit(parallel=True, **_JIT)
def _raster_tiles(
    table, pix_range, bin_start, bin_faces, H, W, T, nty, ntx, K, blur_radius, perspective_correct, clip, out
):
    S = float(min(H, W))
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
        for q in range(lo, hi):
            f = bin_faces[q]
            i0 = max(pix_range[f, 0], ti0)
            i1 = min(pix_range[f, 1], ti1)
            j0 = max(pix_range[f, 2], tj0)
            j1 = min(pix_range[f, 3], tj1)
            x0, y0, z0 = table[f, 0], table[f, 1], table[f, 2]
            x1, y1, z1 = table[f, 3], table[f, 4], table[f, 5]
            x2, y2, z2 = table[f, 6], table[f, 7], table[f, 8]
            xlo, xhi, ylo, yhi = table[f, _XLO], table[f, _XHI], table[f, _YLO], table[f, _YHI]
            den = table[f, _DEN]
            dy12 = y2 - y1
            dy20 = y0 - y2
            dy01 = y1 - y0
            for i in range(i0, i1 + 1):
                py = (H - 2.0 * i - 1.0) / S
                if py > yhi or py < ylo:
                    continue
                # Row-constant halves of the three edge functions (same operations as the rule).
                r0 = (py - y1) * (x2 - x1)
                r1 = (py - y2) * (x0 - x2)
                r2 = (py - y0) * (x1 - x0)
                for j in range(j0, j1 + 1):
                    px = (W - 2.0 * j - 1.0) / S
                    if px > xhi or px < xlo:
                        continue
                    e0 = (px - x1) * dy12 - r0
                    e1 = (px - x2) * dy20 - r1
                    e2 = (px - x0) * dy01 - r2
                    # Inside needs three barycentrics of one strict sign, hence three edge values of one
                    # strict sign: without blur, anything else is skipped before dividing.
                    if not blur and not ((e0 > 0.0 and e1 > 0.0 and e2 > 0.0) or (e0 < 0.0 and e1 < 0.0 and e2 < 0.0)):
                        continue
                    w0 = e0 / den
                    w1 = e1 / den
                    w2 = e2 / den
                    if perspective_correct:
                        t0 = w0 * z1 * z2
                        t1 = w1 * z0 * z2
                        t2 = w2 * z0 * z1
                        dn = t0 + t1 + t2
                        w0 = t0 / dn
                        w1 = t1 / dn
                        w2 = t2 / dn
                    if clip:
                        c0 = max(w0, 0.0)
                        c1 = max(w1, 0.0)
                        c2 = max(w2, 0.0)
                        s = max(c0 + c1 + c2, CLIP_SUM_MIN)
                        pz = c0 / s * z0 + c1 / s * z1 + c2 / s * z2
                    else:
                        pz = w0 * z0 + w1 * z1 + w2 * z2
                    if not pz >= 0.0:
                        continue
                    p = (i - ti0) * tw + (j - tj0)
                    c = cnt[p]
                    base = p * K
                    if c == K:
                        zl = zb[base + K - 1]
                        if pz > zl or (pz == zl and f > fb[base + K - 1]):
                            continue
                    if not (w0 > 0.0 and w1 > 0.0 and w2 > 0.0):
                        d = min(
                            min(_seg_dist2(px, py, x0, y0, x1, y1), _seg_dist2(px, py, x0, y0, x2, y2)),
                            _seg_dist2(px, py, x1, y1, x2, y2),
                        )
                        if not d < blur_radius:
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
    table = np.empty((fv.shape[0], _NCOL), dtype=np.float64)
    pix_range = np.empty((fv.shape[0], 4), dtype=np.int64)
    _prepare_faces(fv, H, W, float(blur_radius), bool(cull_backfaces), table, pix_range)
    bin_start, bin_faces = _bin_faces(first_np, num_np, pix_range, T, nty, ntx)
    _raster_tiles(
        table, pix_range, bin_start, bin_faces, H, W, T, nty, ntx, K, float(blur_radius),
        bool(perspective_correct), bool(clip_barycentric_coords), out,
    )
    return torch.from_numpy(out)
