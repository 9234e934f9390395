"""The per-pixel K-nearest list of the binned Numba kernels (mesh faces and points alike).

A pixel's list lives in two flat buffers at ``[base, base + K)``: depths ``zb`` (float64) and entries
``ib`` (int64), sorted by ``(depth, index)`` with ties in depth to the lower index. An entry is an index
(packed face or point) possibly carrying mark bits above ``INDEX_MASK`` (the mesh kernel marks the faces
that cover the pixel, ``diffras.raster._covering_numba``); comparisons use the index only.
"""
from __future__ import annotations

import numba

__all__ = ["INDEX_MASK", "insert_sorted"]

#: Entries are indices below 2**62; bits from 62 up are marks (``entry & INDEX_MASK`` is the index).
INDEX_MASK = (1 << 62) - 1

_JIT = dict(cache=True, nogil=True, error_model="numpy")


@numba.njit(inline="always", **_JIT)
def insert_sorted(zb, ib, base, c, K, z, index, entry):
    """Insert ``(z, index)`` into the list of ``c`` entries at ``base`` keeping it sorted; when full
    (``c == K``) the last entry falls off (the caller has checked ``(z, index)`` precedes it). Stores
    ``entry`` (``index`` with any marks). Returns the new length."""
    k = c if c < K else K - 1
    while k > 0:
        zp = zb[base + k - 1]
        if zp > z or (zp == z and (ib[base + k - 1] & INDEX_MASK) > index):
            zb[base + k] = zp
            ib[base + k] = ib[base + k - 1]
            k -= 1
        else:
            break
    zb[base + k] = z
    ib[base + k] = entry
    return c + 1 if c < K else c
