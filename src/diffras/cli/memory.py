"""Memory estimates the commands check before they allocate: refuse with a sentence, never meet the OOM killer.

Each estimate is a peak-memory model of one command, calibrated by measuring the peak resident memory of
the command at a few sizes (the constants below; ``benchmarks/cli_memory.py`` prints measured beside
estimated). They are deliberately on the generous side: refusing a run that would just have fitted costs
a smaller ``--size``; accepting one that does not fit costs the machine.
"""
from __future__ import annotations

import os
from typing import Optional

import torch

__all__ = [
    "available_memory",
    "check_fits",
    "fit_bytes",
    "format_bytes",
    "render_view_bytes",
    "texture_bytes",
]

# Bytes per (supersampled) pixel of one hard (K = 1) render: fragments (pix_to_face, zbuf, barycentrics,
# distances), interpolated normals / positions / colours, the lit image and the temporaries between them.
# Measured: about 100 (cow, hard Phong, 0.6 to 4.2 megapixels); twice that for margin.
_RENDER_PIXEL = 200
# Extra bytes per pixel and fragment slot beyond the first (K > 1: soft shaders keep K fragments). The
# issue's soft-Phong K = 8 render at 4096 px took 10 GB: about 70 per slot.
_RENDER_SLOT = 150
# One soft-rasterized training pixel and slot with its autograd graph (silhouette + Phong, kept for backward).
# Measured: about 220 (fit --size 128 -> 256).
_FIT_SLOT = 400
# One face of the optimised mesh with its autograd graph, Adam state and regularisers (edges, Laplacian).
# Measured: about 1,300 (ico-sphere level 4 -> 6); level 10 (21M faces) would need about 50 GB.
_FIT_FACE = 2500
# One texel of the optimised map: parameter, gradient, two Adam moments, the mip pyramid and its gradient,
# the snapshots' renders. Measured: about 310 (texture size 512 -> 2048).
_TEXEL = 600
# The texture workflow's own fixed cost beyond _BASE: the source mesh's texture map and its mip pyramid.
_TEXTURE_BASE = 500 * 2**20
# Fixed overhead: the interpreter, torch, numba and the loaded mesh (measured 450 to 600 MiB).
_BASE = 600 * 2**20


def format_bytes(n: float) -> str:
    """``1.5 GiB``-style size for messages."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


def available_memory(device: Optional[torch.device] = None) -> Optional[int]:
    """Bytes a new allocation on ``device`` can get without swapping, or None when unknown.

    CPU: ``MemAvailable`` from ``/proc/meminfo`` (Linux), else free physical pages from ``os.sysconf``,
    else None. CUDA: ``torch.cuda.mem_get_info``. Other devices: None (not checked).
    """
    dev = torch.device(device) if device is not None else torch.device("cpu")
    if dev.type == "cuda":
        try:
            return int(torch.cuda.mem_get_info(dev)[0])
        except Exception:  # no driver, or a device that cannot report: unknown
            return None
    if dev.type != "cpu":
        return None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def check_fits(need: float, what: str, device: Optional[torch.device] = None,
               available: Optional[int] = None) -> None:
    """Raise ``ValueError`` when an estimated ``need`` (bytes) exceeds the memory available on ``device``.

    ``what`` names the options that drive the estimate, e.g. ``"--size 16384 with --supersample 3"``; the
    message names them, the estimate and what is available. ``available`` overrides the measurement
    (tests). The environment variable ``DIFFRAS_MEMORY_LIMIT`` (bytes) lowers the limit further.
    """
    avail = available if available is not None else available_memory(device)
    limit = os.environ.get("DIFFRAS_MEMORY_LIMIT")
    if limit:
        try:
            avail = min(int(float(limit)), avail) if avail is not None else int(float(limit))
        except ValueError:
            raise ValueError(f"DIFFRAS_MEMORY_LIMIT: expected a number of bytes, got {limit!r}") from None
    if avail is not None and need > avail:
        raise ValueError(
            f"{what}: needs about {format_bytes(need)} of memory, but only {format_bytes(avail)} is available; "
            "choose a smaller value"
        )


def render_view_bytes(height: int, width: int, faces_per_pixel: int = 1, faces: int = 0) -> int:
    """Peak bytes of rendering one (height x width) view with K = ``faces_per_pixel`` of a mesh with
    ``faces`` faces (already supersampled sizes)."""
    pixels = height * width
    return _BASE + pixels * (_RENDER_PIXEL + _RENDER_SLOT * (faces_per_pixel - 1)) + faces * 300


def fit_bytes(image_size: int, views: int, views_per_iter: int, faces_per_pixel: int, faces: int) -> int:
    """Peak bytes of an optimisation over soft renders (``fit_mesh``, ``fit_pose``): ``views`` target
    renders, one batch of ``views_per_iter`` soft renders with autograd, a mesh of ``faces`` faces."""
    targets = views * image_size**2 * 16
    batch = views_per_iter * image_size**2 * faces_per_pixel * _FIT_SLOT
    return _BASE + targets + batch + faces * _FIT_FACE


def texture_bytes(texture_size: int, image_size: int, views: int, views_per_iter: int) -> int:
    """Peak bytes of ``fit_texture``: the map and its optimiser state, the views, one batch of renders."""
    texels = texture_size**2
    images = views * image_size**2 * (16 + 60)  # RGBA photographs + their fixed fragments
    batch = views_per_iter * image_size**2 * _RENDER_PIXEL
    return _BASE + _TEXTURE_BASE + texels * _TEXEL + images + batch
