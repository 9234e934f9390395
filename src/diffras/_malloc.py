"""Allocator settings: let glibc's malloc keep freed memory for the next render instead of returning it.

Why: a render allocates and frees the same large buffers on every call (texture-table gradients, level
temporaries, fragment lists: 1-30 MiB each). glibc's malloc serves blocks above its mmap threshold with a
fresh ``mmap`` and gives the heap's free top back to the kernel above its trim threshold; both adjust
themselves to the largest block freed so far, but only up to twice its size, so a render that frees
several such blocks in a row still hands most of them back. Every call then faults its buffers in again,
page by page. On a virtual machine a fault costs 1-3 us: the textured cow at 256^2 took ~3,000 faults per
forward+backward (~9 ms of ~60), and ~20 with the settings below.

:func:`apply_malloc_policy` runs when ``diffras`` is imported. It raises the mmap threshold to glibc's
maximum (32 MiB: larger blocks are always mmap'd) and the trim threshold to 256 MiB, so up to 256 MiB of
freed heap stays mapped for reuse. It leaves everything as is when the user chose any malloc setting
(``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TOP_PAD_``, ``MALLOC_MMAP_MAX_``, or a
``glibc.malloc`` tunable in ``GLIBC_TUNABLES``; ``MALLOC_TRIM_THRESHOLD_=131072`` restores glibc's default
behaviour), and off glibc (macOS, Windows, musl) where ``mallopt`` does not exist.
"""
from __future__ import annotations

import ctypes
import os
import sys
from typing import Mapping

# mallopt parameter numbers (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 2**20  # glibc's maximum on 64-bit (HEAP_MAX_SIZE / 2)
TRIM_THRESHOLD = 256 * 2**20
_USER_VARS = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_")


def _glibc_mallopt():
    """glibc's ``mallopt``, or None off glibc."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 -- present in glibc only (not musl)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return None
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return mallopt


def apply_malloc_policy(environ: Mapping[str, str] = os.environ) -> dict:
    """Set the keep-freed-memory malloc thresholds unless the user chose malloc settings; return what was
    set (``{}`` if nothing: a user choice, or not glibc)."""
    if any(name in environ for name in _USER_VARS) or "glibc.malloc" in environ.get("GLIBC_TUNABLES", ""):
        return {}
    mallopt = _glibc_mallopt()
    if mallopt is None:
        return {}
    chosen = {}
    for name, param, value in (("mmap_threshold", _M_MMAP_THRESHOLD, MMAP_THRESHOLD),
                               ("trim_threshold", _M_TRIM_THRESHOLD, TRIM_THRESHOLD)):
        if mallopt(param, value) == 1:  # mallopt returns 1 on success
            chosen[name] = value
    return chosen
