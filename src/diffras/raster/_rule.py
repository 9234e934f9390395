"""The shared pieces of the rasterization rule: constants, the edge function, the pixel-centre formula.

A leaf module (imports nothing from diffras): every raster module, compiled or not, takes these from
here, so the visibility backends, the fragment math and the settings cannot drift apart, and no raster
module needs to import another one for a constant. The full rule is written out in the docstring of
``diffras.raster.visibility``.

The functions are plain arithmetic, valid for Python floats, NumPy arrays and torch tensors alike; the
Numba kernels compile them with ``numba.njit(inline="always")`` so that every backend evaluates the very
same expressions in the same order (bit-identical decisions).
"""
from __future__ import annotations

__all__ = ["CLIP_SUM_MIN", "EPS", "edge", "pixel_center"]

#: PyTorch3D's ``kEpsilon`` (utils/geometry_utils.h): minimum view depth of a face's corners, the
#: zero-area threshold, the barycentric denominator offset and the zero-length segment threshold.
EPS = 1e-8
#: Floor of the sum of clipped barycentrics before renormalising (PyTorch3D's BarycentricClipForward).
CLIP_SUM_MIN = 1e-5


def edge(px, py, ax, ay, bx, by):
    """Edge function: twice the signed area of the triangle (a, b, p); positive when p lies to one
    side of the directed line a -> b, negative on the other, 0 on it.

    ``(px - ax) * (by - ay) - (py - ay) * (bx - ax)``, in exactly this order (no fused multiply-add)."""
    return (px - ax) * (by - ay) - (py - ay) * (bx - ax)


def pixel_center(index, n, S):
    """NDC coordinate of the centre of pixel column (or row) ``index`` of ``n``, PyTorch3D's placement.

    ``(n - 2 * index - 1) / S`` with ``S = min(H, W)`` as a float: column 0 has the largest x (+X points
    left), row 0 the largest y (+Y points up), and the shorter image side spans [-1, 1]. ``index`` may be
    an int, a float, or a float array/tensor (convert integer tensors to the wanted float dtype first)."""
    return (n - 2.0 * index - 1.0) / S
