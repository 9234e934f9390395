"""Mip pyramid of ``diffras.nv.texture``'s fused path, in its flat texel table, and the pyramid's adjoint.

Layout: all levels of all B maps in one (T, C) table; level l of map b starts at
``offs[l] + b * hs[l] * ws[l]``. The rule is ``diffras.textures.mipmap.build_pyramid``'s for the sizes
nvdiffrast accepts (each side even or 1): 2 x 2 box averages, 1 x 2 or 2 x 1 where a side is 1.
"""
from __future__ import annotations

import numba
from numba import prange

_JIT = dict(cache=True, nogil=True, error_model="numpy")


@numba.njit(parallel=True, **_JIT)
def build_levels(table, B, hs, ws, offs):
    """Fill levels 1.. of ``table`` from level 0: 2 x 2 box averages (1 x 2 or 2 x 1 where a side is 1),
    ``diffras.textures.mipmap.build_pyramid``'s rule for the sizes nvdiffrast accepts."""
    C = table.shape[1]
    for lev in range(1, hs.shape[0]):
        hp, wp, h, w = hs[lev - 1], ws[lev - 1], hs[lev], ws[lev]
        fy = 2 if hp > 1 else 1
        fx = 2 if wp > 1 else 1
        scale = 1.0 / (fy * fx)
        for r in prange(B * h):
            b = r // h
            i = r - b * h
            src = offs[lev - 1] + b * hp * wp
            dst = offs[lev] + b * h * w + i * w
            for j in range(w):
                for c in range(C):
                    acc = 0.0
                    for a in range(fy):
                        for e in range(fx):
                            acc += table[src + (fy * i + a) * wp + fx * j + e, c]
                    table[dst + j, c] = acc * scale


@numba.njit(parallel=True, **_JIT)
def fold_levels(g, B, hs, ws, offs):
    """Adjoint of :func:`build_levels`, in place: the gradient of every level l >= 1 is spread back onto
    level l - 1 (coarsest first), so ``g``'s level-0 rows end with the full gradient of the base map."""
    C = g.shape[1]
    for lev in range(hs.shape[0] - 1, 0, -1):
        hp, wp, h, w = hs[lev - 1], ws[lev - 1], hs[lev], ws[lev]
        fy = 2 if hp > 1 else 1
        fx = 2 if wp > 1 else 1
        scale = 1.0 / (fy * fx)
        for r in prange(B * h):
            b = r // h
            i = r - b * h
            dst = offs[lev - 1] + b * hp * wp
            src = offs[lev] + b * h * w + i * w
            for j in range(w):
                for c in range(C):
                    v = g[src + j, c] * scale
                    for a in range(fy):
                        for e in range(fx):
                            g[dst + (fy * i + a) * wp + fx * j + e, c] += v
