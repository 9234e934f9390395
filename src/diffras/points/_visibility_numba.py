"""The ``"numba"`` point visibility backend: binned, tile-parallel CPU rasterization.

1. ``_point_ranges`` (parallel over points): the exact range of pixel rows and columns each point can
   touch (a superset of the rule's hits, settled with the rule's own subtraction, see ``_axis_range``).
2. ``_bin_points``: a counting sort of the (image, point) pairs into square tiles (count, prefix sum,
   fill), reading the points in order; bins are exactly as large as needed, so no point is ever dropped
   (no ``max_points_per_bin`` overflow).
3. ``_raster_tiles`` (``prange`` over tiles): each tile copies its points in (depth bucket, index) order
   (a local counting sort over ``_ZBUCKETS`` buckets of the batch's depth range) and keeps a per-pixel
   buffer of the K smallest ``(z, p)`` pairs. Once every pixel of the tile holds K points, a point in a
   deeper bucket than the tile's largest K-th depth cannot enter, nor can any later one: the tile stops
   there. Dense clouds therefore cost about the points in front, not all of them.

The per-pixel test is the reference rule with the same float64 operations in the same order and no
fastmath, so decisions match the reference bit for bit.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import numba
import numpy as np
import torch

from ..raster._klist import insert_sorted
from ..raster._visibility_numba import SERIAL_WORK

# Depth buckets of the ordering sort: more buckets stop full tiles earlier, at O(buckets) cost.
_ZBUCKETS = 1024
# Bound on the (tile, point) entries of the bins (int64 each): beyond it tiles grow until it fits.
_MAX_BIN_ENTRIES = 1 << 26

_JIT = dict(cache=True, nogil=True, error_model="numpy")


@numba.njit(inline="always", **_JIT)
def _axis_range(c, S, x, r):
    """Inclusive range [k0, k1] of the indices k with ``-r <= x - c[k] <= r`` (empty when k0 > k1), for
    centres ``c[k] = (n - 2k - 1) / S`` decreasing in k. ``fl(x - c[k])`` is monotone in k, so the range
    is an interval; a closed-form guess is settled with the exact comparisons. Every pixel a point
    touches lies in it: ``|dx| > r`` implies ``dx * dx >= r * r`` (rounding is monotone), so ``d2 >= r * r``."""
    n = c.shape[0]
    k0 = int(math.floor(min(max((n - 1.0 - (x + r) * S) * 0.5, 0.0), n - 1.0)))
    while k0 > 0 and x - c[k0 - 1] >= -r:
        k0 -= 1
    while k0 < n and not (x - c[k0] >= -r):
        k0 += 1
    k1 = int(math.ceil(min(max((n - 1.0 - (x - r) * S) * 0.5, -1.0), n - 1.0)))
    while k1 < n - 1 and x - c[k1 + 1] <= r:
        k1 += 1
    while k1 >= 0 and not (x - c[k1] <= r):
        k1 -= 1
    return k0, k1


@numba.njit(parallel=True, **_JIT)
def _point_ranges(pts, rad, pxs, pys, rng):
    """``rng`` (P, 4) = [i0, i1, j0, j1] inclusive pixel range of each point; i0 > i1 when it touches
    nothing (behind the camera, or outside the image)."""
    H = pys.shape[0]
    W = pxs.shape[0]
    S = float(min(H, W))
    for p in numba.prange(pts.shape[0]):
        rng[p, 0] = 1
        rng[p, 1] = 0
        rng[p, 2] = 1
        rng[p, 3] = 0
        if pts[p, 2] < 0.0:
            continue
        j0, j1 = _axis_range(pxs, S, pts[p, 0], rad[p])
        i0, i1 = _axis_range(pys, S, pts[p, 1], rad[p])
        if j0 > j1 or i0 > i1:
            continue
        rng[p, 0] = i0
        rng[p, 1] = i1
        rng[p, 2] = j0
        rng[p, 3] = j1


@numba.njit(**_JIT)
def _depth_range(pts, rng):
    """Smallest and largest z of the points that touch some pixel (inf, -inf if none)."""
    lo = np.inf
    hi = -np.inf
    for p in range(pts.shape[0]):
        if rng[p, 0] <= rng[p, 1]:
            lo = min(lo, pts[p, 2])
            hi = max(hi, pts[p, 2])
    return lo, hi


@numba.njit(**_JIT)
def _count_entries(first, num, rng, T):
    """Number of (tile, point) entries binning with tiles of side T would create."""
    total = 0
    for n in range(first.shape[0]):
        for p in range(first[n], first[n] + num[n]):
            if rng[p, 0] <= rng[p, 1]:
                total += (rng[p, 1] // T - rng[p, 0] // T + 1) * (rng[p, 3] // T - rng[p, 2] // T + 1)
    return total


@numba.njit(**_JIT)
def _bin_points(first, num, rng, T, nty, ntx):
    """Counting sort of the (image, point) pairs into tiles, in point order (sequential reads); the
    points of tile ``b = (n * nty + ty) * ntx + tx`` are ``bin_pts[bin_start[b]:bin_start[b + 1]]``."""
    N = first.shape[0]
    nbins = N * nty * ntx
    counts = np.zeros(nbins + 1, dtype=np.int64)
    for n in range(N):
        for p in range(first[n], first[n] + num[n]):
            if rng[p, 0] > rng[p, 1]:
                continue
            for ty in range(rng[p, 0] // T, rng[p, 1] // T + 1):
                base = (n * nty + ty) * ntx
                for tx in range(rng[p, 2] // T, rng[p, 3] // T + 1):
                    counts[base + tx + 1] += 1
    for b in range(nbins):
        counts[b + 1] += counts[b]
    bin_pts = np.empty(counts[nbins], dtype=np.int64)
    fill = counts[:nbins].copy()
    for n in range(N):
        for p in range(first[n], first[n] + num[n]):
            if rng[p, 0] > rng[p, 1]:
                continue
            for ty in range(rng[p, 0] // T, rng[p, 1] // T + 1):
                base = (n * nty + ty) * ntx
                for tx in range(rng[p, 2] // T, rng[p, 3] // T + 1):
                    bin_pts[fill[base + tx]] = p
                    fill[base + tx] += 1
    return counts, bin_pts


@numba.njit(inline="always", **_JIT)
def _bucket(z, zlo, zscale, nb):
    # Monotone in z: bucket(z1) > bucket(z2) implies z1 > z2.
    return min(int((z - zlo) * zscale), nb - 1)


@numba.njit(parallel=True, **_JIT)
def _raster_tiles(pts, rad, rng, zlo, zscale, bin_start, bin_pts, pxs, pys, T, nty, ntx, K, out):
    H = pys.shape[0]
    W = pxs.shape[0]
    nbins = bin_start.shape[0] - 1
    nb = _ZBUCKETS
    for b in numba.prange(nbins):
        lo = bin_start[b]
        hi = bin_start[b + 1]
        m = hi - lo
        if m == 0:
            continue
        n = b // (nty * ntx)
        ti0 = ((b // ntx) % nty) * T
        ti1 = min(ti0 + T, H) - 1
        tj0 = (b % ntx) * T
        tj1 = min(tj0 + T, W) - 1
        tw = tj1 - tj0 + 1
        npix = (ti1 - ti0 + 1) * tw
        # The tile's points copied in (depth bucket, index) order by a counting sort: the buffers then
        # fill with near points first, and the loop below can stop early (reads stay sequential).
        cnt_b = np.zeros(nb + 1, dtype=np.int64)
        for e in range(lo, hi):
            cnt_b[_bucket(pts[bin_pts[e], 2] + 0.0, zlo, zscale, nb) + 1] += 1
        for k in range(nb):
            cnt_b[k + 1] += cnt_b[k]
        lx = np.empty(m, dtype=np.float64)
        ly = np.empty(m, dtype=np.float64)
        lz = np.empty(m, dtype=np.float64)
        lr2 = np.empty(m, dtype=np.float64)
        lp = np.empty(m, dtype=np.int64)
        lb = np.empty(m, dtype=np.int64)
        lrng = np.empty((m, 4), dtype=np.int64)
        for e in range(lo, hi):
            p = bin_pts[e]
            z = pts[p, 2] + 0.0  # -0.0 and 0.0 are the same depth
            bk = _bucket(z, zlo, zscale, nb)
            at = cnt_b[bk]
            cnt_b[bk] = at + 1
            lx[at] = pts[p, 0]
            ly[at] = pts[p, 1]
            lz[at] = z
            lr2[at] = rad[p] * rad[p]
            lp[at] = p
            lb[at] = bk
            lrng[at, 0] = max(rng[p, 0], ti0)
            lrng[at, 1] = min(rng[p, 1], ti1)
            lrng[at, 2] = max(rng[p, 2], tj0)
            lrng[at, 3] = min(rng[p, 3], tj1)
        zb = np.empty(npix * K, dtype=np.float64)
        pb = np.empty(npix * K, dtype=np.int64)
        cnt = np.zeros(npix, dtype=np.int64)
        nfull = 0
        stop_bucket = nb  # once the tile is full: points in a deeper bucket than its largest K-th depth
        for q in range(m):
            if nfull == npix:
                if stop_bucket == nb or q % 64 == 0:
                    tmax = zb[K - 1]
                    for t in range(1, npix):
                        tmax = max(tmax, zb[t * K + K - 1])
                    # bucket(z) > bucket(tmax) implies z > tmax: such a point enters no pixel, nor any
                    # later one (buckets only grow).
                    stop_bucket = _bucket(tmax, zlo, zscale, nb)
                if lb[q] > stop_bucket:
                    break
            x = lx[q]
            y = ly[q]
            z = lz[q]
            r2 = lr2[q]
            p = lp[q]
            for i in range(lrng[q, 0], lrng[q, 1] + 1):
                dy = y - pys[i]
                dy2 = dy * dy
                prow = (i - ti0) * tw - tj0
                for j in range(lrng[q, 2], lrng[q, 3] + 1):
                    dx = x - pxs[j]
                    if not dx * dx + dy2 < r2:
                        continue
                    t = prow + j
                    c = cnt[t]
                    base = t * K
                    if c == K and (z > zb[base + K - 1] or (z == zb[base + K - 1] and p > pb[base + K - 1])):
                        continue
                    # Keep (z, p) sorted; the last entry falls off when full.
                    cnt[t] = insert_sorted(zb, pb, base, c, K, z, p, p)
                    if c + 1 == K:
                        nfull += 1
        for i in range(ti0, ti1 + 1):
            for j in range(tj0, tj1 + 1):
                t = (i - ti0) * tw + (j - tj0)
                for k in range(cnt[t]):
                    out[n, i, j, k] = pb[t * K + k]


def auto_bin_size(H: int, W: int) -> int:
    """Tile side: 16 pixels up to 256 x 256 images, 32 above (enough tiles to share out, small buffers)."""
    return 16 if max(H, W) <= 256 else 32


def visibility_numba(
    points: torch.Tensor,
    radius: torch.Tensor,
    first: torch.Tensor,
    num: torch.Tensor,
    image_size: Tuple[int, int],
    K: int,
    *,
    bin_size: Optional[int] = None,
) -> torch.Tensor:
    """Arguments as ``diffras.points.visibility.points_visibility`` after validation: ``points`` (P, 3)
    and ``radius`` (P,) float64 on the CPU, ``first``/``num`` (N,) int64. Returns (N, H, W, K) int64."""
    H, W = image_size
    N = first.shape[0]
    pts = np.ascontiguousarray(points.numpy(), dtype=np.float64)
    rad = np.ascontiguousarray(radius.numpy(), dtype=np.float64)
    first_np = np.ascontiguousarray(first.cpu().numpy(), dtype=np.int64)
    num_np = np.ascontiguousarray(num.cpu().numpy(), dtype=np.int64)
    out = np.full((N, H, W, K), -1, dtype=np.int64)
    if N == 0 or pts.shape[0] == 0:
        return torch.from_numpy(out)
    S = float(min(H, W))
    # The pixel-centre formula of diffras.raster.pixel_centers_ndc, evaluated once in float64.
    pxs = (W - 2.0 * np.arange(W, dtype=np.float64) - 1.0) / S
    pys = (H - 2.0 * np.arange(H, dtype=np.float64) - 1.0) / S
    rng = np.empty((pts.shape[0], 4), dtype=np.int64)
    _point_ranges(pts, rad, pxs, pys, rng)
    zlo, zhi = _depth_range(pts, rng)
    if not zlo <= zhi:
        return torch.from_numpy(out)  # no point touches any pixel
    zlo, zhi = zlo + 0.0, zhi + 0.0
    zscale = _ZBUCKETS / (zhi - zlo) if zhi > zlo else 0.0
    if not zscale < 1e300:  # a subnormal depth range: one bucket (0 * inf would be NaN)
        zscale = 0.0
    T = auto_bin_size(H, W) if bin_size is None else (max(H, W) if bin_size == 0 else int(bin_size))
    # At most 512 x 512 tiles per image; then grow tiles until the bins fit the entry budget (huge
    # radii would otherwise put every point in every small tile).
    T = max(T, -(-max(H, W) // 512))
    entries = _count_entries(first_np, num_np, rng, T)
    while T < max(H, W) and entries > _MAX_BIN_ENTRIES:
        T *= 2
        entries = _count_entries(first_np, num_np, rng, T)
    nty = (H + T - 1) // T
    ntx = (W + T - 1) // T
    bin_start, bin_pts = _bin_points(first_np, num_np, rng, T, nty, ntx)
    args = (pts, rad, rng, zlo, zscale, bin_start, bin_pts, pxs, pys, T, nty, ntx, K, out)
    # Waking the worker threads costs more than a small scene takes on one thread.
    if entries < SERIAL_WORK // 16 and numba.get_num_threads() > 1:
        threads = numba.get_num_threads()
        numba.set_num_threads(1)
        try:
            _raster_tiles(*args)
        finally:
            numba.set_num_threads(threads)
    else:
        _raster_tiles(*args)
    return torch.from_numpy(out)
