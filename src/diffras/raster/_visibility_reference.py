"""The ``"reference"`` visibility backend: the rule of ``diffras.raster.visibility``, one pair at a time.

Brute force over every (pixel, face) pair in plain Python floats (IEEE doubles), written to be read, not
to be fast; the tests compare the other backends against it on small scenes, bit for bit.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, List, Optional, Tuple

import torch

from ._rule import CLIP_SUM_MIN, EPS, edge, pixel_center

if TYPE_CHECKING:
    from .settings import RasterSettings

__all__ = ["pixel_face_depth", "rasterize_reference"]


def _len2(ax: float, ay: float, bx: float, by: float) -> float:
    dx, dy = bx - ax, by - ay
    return dx * dx + dy * dy


def _seg_dist2(px: float, py: float, ax: float, ay: float, bx: float, by: float, e: float) -> float:
    dx, dy = bx - ax, by - ay
    l2 = dx * dx + dy * dy
    if l2 > EPS:
        s = dx * (px - ax) + dy * (py - ay)
        if s <= 0.0:
            ux, uy = px - ax, py - ay
            return ux * ux + uy * uy
        if s < l2:
            return e * e / l2
    ux, uy = px - bx, py - by
    return ux * ux + uy * uy


def _div(a: float, b: float) -> float:
    """IEEE division (Python raises on division by zero; the compiled backends return inf/NaN)."""
    if b != 0.0:
        return a / b
    if a == 0.0 or math.isnan(a):
        return math.nan
    return math.copysign(math.inf, a) * math.copysign(1.0, b)


def pixel_face_depth(
    px: float,
    py: float,
    face: Tuple[float, ...],
    blur_radius: float,
    perspective_correct: bool,
    clip_barycentric_coords: bool,
    cull_backfaces: bool,
) -> Optional[Tuple[float, bool]]:
    """The rule for one pixel centre and one face: ``(pz, covers)`` if the face touches the pixel, else
    None; ``covers`` says whether the centre lies strictly inside the triangle (step 6's ``inside``).
    ``face`` is ``(x0, y0, z0, x1, y1, z1, x2, y2, z2)`` as floats."""
    x0, y0, z0, x1, y1, z1, x2, y2, z2 = face
    if min(z0, z1, z2) < EPS:
        return None
    face_area = edge(x0, y0, x1, y1, x2, y2)
    if cull_backfaces and face_area < 0.0:
        return None
    if face_area <= EPS and face_area >= -EPS:
        return None
    r = math.sqrt(blur_radius)
    if (
        px > max(x0, x1, x2) + r
        or px < min(x0, x1, x2) - r
        or py > max(y0, y1, y2) + r
        or py < min(y0, y1, y2) - r
    ):
        return None
    den = edge(x2, y2, x0, y0, x1, y1) + EPS
    sg = 1.0 if den > 0.0 else -1.0
    e0 = edge(px, py, x1, y1, x2, y2)
    e1 = edge(px, py, x2, y2, x0, y0)
    e2 = edge(px, py, x0, y0, x1, y1)
    if perspective_correct:
        h0, h1, h2 = e0 * (sg * (z1 * z2)), e1 * (sg * (z0 * z2)), e2 * (sg * (z0 * z1))
        q = h0 + h1 + h2
    else:
        h0, h1, h2 = e0 * sg, e1 * sg, e2 * sg
        q = den * sg
    if clip_barycentric_coords:
        if q > 0.0:
            m0, m1, m2 = max(h0, 0.0), max(h1, 0.0), max(h2, 0.0)
        else:
            m0, m1, m2 = max(-h0, 0.0), max(-h1, 0.0), max(-h2, 0.0)
        pz = _div(m0 * z0 + m1 * z1 + m2 * z2, max(m0 + m1 + m2, CLIP_SUM_MIN * abs(q)))
    else:
        num = h0 * z0 + h1 * z1 + h2 * z2
        pz = _div(num, q) if perspective_correct else num * _div(1.0, q)
    if not pz >= 0.0:
        return None
    inside = (h0 > 0.0 and h1 > 0.0 and h2 > 0.0) or (q < 0.0 and h0 < 0.0 and h1 < 0.0 and h2 < 0.0)
    if not inside and (
        (h0 < 0.0 and e0 * e0 >= blur_radius * _len2(x1, y1, x2, y2))
        or (h1 < 0.0 and e1 * e1 >= blur_radius * _len2(x0, y0, x2, y2))
        or (h2 < 0.0 and e2 * e2 >= blur_radius * _len2(x0, y0, x1, y1))
    ):
        return None
    if not inside and not (
        _seg_dist2(px, py, x0, y0, x1, y1, e2) < blur_radius
        or _seg_dist2(px, py, x0, y0, x2, y2, e1) < blur_radius
        or _seg_dist2(px, py, x1, y1, x2, y2, e0) < blur_radius
    ):
        return None
    return pz, inside


def rasterize_reference(
    face_verts: torch.Tensor, first: torch.Tensor, num: torch.Tensor, settings: "RasterSettings", K: int
) -> torch.Tensor:
    """The (N, H, W, K) int64 K-nearest lists of ``diffras.raster.visibility.visible_faces``'s arguments
    (``face_verts`` float64)."""
    H, W = settings.image_size
    blur = settings.blur_radius
    flags = (settings.perspective_correct, settings.clip_barycentric_coords, settings.cull_backfaces)
    N = first.shape[0]
    S = float(min(H, W))
    faces = face_verts.reshape(-1, 9).cpu().tolist()
    out = torch.full((N, H, W, K), -1, dtype=torch.int64)
    for n in range(N):
        f_lo = int(first[n])
        f_hi = f_lo + int(num[n])
        for i in range(H):
            py = pixel_center(i, H, S)
            for j in range(W):
                px = pixel_center(j, W, S)
                hits: List[Tuple[float, int]] = []
                for f in range(f_lo, f_hi):
                    hit = pixel_face_depth(px, py, faces[f], blur, *flags)
                    if hit is not None:
                        hits.append((hit[0], f))
                hits.sort()
                for k, (_, f) in enumerate(hits[:K]):
                    out[n, i, j, k] = f
    return out
