"""Step 8 of the rule inside the ``"numba"`` backend's tile kernel: each pixel's covering face, no second pass.

The covering face of a pixel is the face a hard pass (``blur_radius = 0``, no barycentric clipping, K = 1)
keeps there: among the faces whose interior holds the pixel centre (step 6's ``inside``, the plain
bounding box of step 3, an unclipped depth ``pz >= 0``), the smallest ``(pz, f)``. Call that set I.

While the blurred pass fills a pixel's K list, it marks each entry that is in I (bit ``IN_I`` of the
entry, ``_raster_tiles``). Then, per pixel:

- the list is not full: it holds every face touching the pixel, and every face of I touches it (an inside
  face is kept at any blur radius), so the covering face is among the marked entries;
- mode 1 (no clipping, or clipping with perspective correction): the list orders faces of I exactly as the
  covering rule does, since their depth in the list *is* their unclipped depth (with perspective
  correction the clipped weights of an inside face are its unclipped ones and their sum is ``q``, in the
  same order of operations: bit-identical). So the first marked entry is the covering face, and any face
  of I left out of a full list is farther than it. Only full lists without a marked entry are searched;
  their covering face, if any, is lost;
- mode 2 (clipping without perspective correction: clipped depths order faces differently) searches
  every full list and every list with two or more marked entries (one marked entry in a list that is not
  full is the covering face); mode 3 (coordinates so large that a depth may overflow, where an inside face
  could fail the clipped test) searches every pixel.

A search (:func:`_search`) tests the tile's faces with the hard pass's arithmetic only (no distances to
edges), face-major within the box of the searched pixels and each face's plain box, so its cost follows
the pixels that need it, not the blur radius.
"""
from __future__ import annotations

import numba
import numpy as np

from ._klist import INDEX_MASK
from ._visibility_prep import (
    _HI0,
    _HI1,
    _HJ0,
    _HJ1,
    _INVQ,
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
)

#: Covering modes of ``_raster_tiles`` (see the module docstring): 0 none (``blur_radius == 0``: the first
#: entry covers), 1 search full lists without a marked entry, 2 search full lists and lists with two or
#: more marked entries, 3 search every pixel.
NO_COVER, COVER_FULL_WITHOUT, COVER_FULL, COVER_ALL = 0, 1, 2, 3
#: Coordinates below this magnitude keep every depth of the rule finite (products of three coordinate
#: differences and a depth stay far below the largest double): mode 2 suffices, else mode 3.
TAME = 1e100
#: The mark of a K-list entry whose face is in I (``diffras.raster._klist``: indices stay below 2**62);
#: ``FACE_MASK`` recovers the face index.
IN_I = 1 << 62
FACE_MASK = INDEX_MASK

_JIT = dict(cache=True, nogil=True, error_model="numpy")


@numba.njit(**_JIT)
def _search(table, rows_range, perm, bin_rows, lo, hi, pxs, pys, ti0, tj0, tw, box, perspective_correct, need, bz, bf):
    """For the pixels with ``need[p]``: the smallest ``(pz, f)`` over the tile's faces of I, into
    ``bz``/``bf`` (which hold a candidate or ``(inf, -1)``). ``box`` = (i0, i1, j0, j1) of those pixels.
    The hard pass's arithmetic, operation for operation (``_raster_tiles`` with blur 0 and no clipping)."""
    for q_ in range(lo, hi):
        row = bin_rows[q_]
        i0 = max(rows_range[row, _HI0], box[0])
        i1 = min(rows_range[row, _HI1], box[1])
        j0 = max(rows_range[row, _HJ0], box[2])
        j1 = min(rows_range[row, _HJ1], box[3])
        if i0 > i1 or j0 > j1:
            continue
        f = perm[row]
        x0, y0, z0 = table[row, _X0], table[row, _Y0], table[row, _Z0]
        x1, y1, z1 = table[row, _X1], table[row, _Y1], table[row, _Z1]
        x2, y2, z2 = table[row, _X2], table[row, _Y2], table[row, _Z2]
        sg, qn, invq = table[row, _SG], table[row, _QN], table[row, _INVQ]
        # With perspective correction an inside face's depth is a convex combination of its corners':
        # never below zlo (as in _raster_tiles' hard pass), so a pixel already holding a nearer face skips it.
        zlo = min(z0, min(z1, z2)) * (1.0 - 1e-12)
        s0, s1, s2 = table[row, _S0], table[row, _S1], table[row, _S2]
        dy12 = y2 - y1
        dy20 = y0 - y2
        dy01 = y1 - y0
        for i in range(i0, i1 + 1):
            py = pys[i]
            r0 = (py - y1) * (x2 - x1)
            r1 = (py - y2) * (x0 - x2)
            r2 = (py - y0) * (x1 - x0)
            prow = (i - ti0) * tw - tj0
            for j in range(j0, j1 + 1):
                p = prow + j
                if not need[p] or (perspective_correct and bf[p] >= 0 and zlo > bz[p]):
                    continue
                px = pxs[j]
                e0 = (px - x1) * dy12 - r0
                e1 = (px - x2) * dy20 - r1
                e2 = (px - x0) * dy01 - r2
                if not ((e0 > 0.0 and e1 > 0.0 and e2 > 0.0) or (e0 < 0.0 and e1 < 0.0 and e2 < 0.0)):
                    continue
                if perspective_correct:
                    h0 = e0 * s0
                    h1 = e1 * s1
                    h2 = e2 * s2
                    q = h0 + h1 + h2
                    pz = (h0 * z0 + h1 * z1 + h2 * z2) / q
                else:
                    h0 = e0 * sg
                    h1 = e1 * sg
                    h2 = e2 * sg
                    q = qn
                    pz = (h0 * z0 + h1 * z1 + h2 * z2) * invq
                if not pz >= 0.0:
                    continue
                if not ((h0 > 0.0 and h1 > 0.0 and h2 > 0.0) or (q < 0.0 and h0 < 0.0 and h1 < 0.0 and h2 < 0.0)):
                    continue
                if bf[p] < 0 or pz < bz[p] or (pz == bz[p] and f < bf[p]):
                    bz[p] = pz
                    bf[p] = f


@numba.njit(**_JIT)
def _cover_tile(
    table, rows_range, perm, bin_rows, lo, hi, pxs, pys, ti0, ti1, tj0, tj1, K, perspective_correct, mode,
    fb, cnt, n, cover, lost,
):
    """Covering faces of one tile's pixels after its K lists are complete (module docstring): writes
    ``cover[n, i, j]`` (-1 where none) and ``lost[n, i, j] = True`` where the strict list lacks it.
    ``fb``/``cnt`` are the tile's marked entries and list lengths, pixel-major."""
    tw = tj1 - tj0 + 1
    npix = (ti1 - ti0 + 1) * tw
    bz = np.full(npix, np.inf)
    bf = np.full(npix, -1, dtype=np.int64)
    need = np.zeros(npix, dtype=np.bool_)
    box = np.array([ti1 + 1, ti0 - 1, tj1 + 1, tj0 - 1], dtype=np.int64)
    for p in range(npix):
        c = cnt[p]
        first = -1
        marked = 0
        for k in range(c):
            e = fb[p * K + k]
            if e & IN_I:
                marked += 1
                if first < 0:
                    first = e & FACE_MASK
        if mode == COVER_FULL_WITHOUT:
            searched = c == K and first < 0
        elif mode == COVER_FULL:
            searched = c == K or marked > 1
        else:
            searched = True
        if not searched:
            bf[p] = first
            continue
        need[p] = True
        i = ti0 + p // tw
        j = tj0 + p % tw
        box[0] = min(box[0], i)
        box[1] = max(box[1], i)
        box[2] = min(box[2], j)
        box[3] = max(box[3], j)
    if box[0] <= box[1]:
        _search(table, rows_range, perm, bin_rows, lo, hi, pxs, pys, ti0, tj0, tw, box, perspective_correct, need, bz, bf)
    for p in range(npix):
        i = ti0 + p // tw
        j = tj0 + p % tw
        f = bf[p]
        cover[n, i, j] = f
        if need[p] and f >= 0:
            found = False
            for k in range(cnt[p]):
                found = found or (fb[p * K + k] & FACE_MASK) == f
            lost[n, i, j] = not found
