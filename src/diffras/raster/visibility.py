"""Visibility: which faces touch each pixel, nearest first (the only hot loop of diffras).

``rasterize_visibility`` validates its inputs and dispatches to one of three interchangeable backends
that return identical ``pix_to_face``:

- ``"numba"``: compiled CPU kernel, faces binned into screen tiles, tiles rasterized in parallel
  (``diffras.raster._visibility_numba``);
- ``"torch"``: vectorised over (face, pixel) candidate pairs from each face's box, in memory-bounded
  chunks; runs on any torch device (``diffras.raster._visibility_torch``);
- ``"reference"``: brute force over every (pixel, face) pair in plain Python floats, written to be
  read, not to be fast; tests compare the other backends against it on small scenes.

Semantics: PyTorch3D's ``rasterize_meshes`` (its CPU/CUDA kernels: same tests, same comparisons, same
constants). PyTorch3D computes in float32, so bit-level agreement with it is impossible anyway; diffras
decides in float64 with algebraically identical expressions arranged to need at most one division per
(pixel, face) pair (the barycentric denominators cancel), and every backend evaluates exactly the
expressions below in the same order, without fused multiply-add, so their ``pix_to_face`` agree bit
for bit. For image n, pixel centre p = (px, py) in NDC (``diffras.raster.pixels.pixel_centers_ndc``)
and packed face f of mesh n with corners v0, v1, v2 = (x, y, z) (x, y in NDC, z the view-space depth),
with ``edge(p, a, b) = (p.x - a.x) * (b.y - a.y) - (p.y - a.y) * (b.x - a.x)``:

1. Skip f if ``min(z0, z1, z2) < 1e-8``: PyTorch3D drops every face with a corner behind (or on) the
   camera plane, since its projection is wrong; clip such faces before rasterizing.
2. ``face_area = edge(v0, v1, v2)``. Skip f if ``cull_backfaces`` and ``face_area < 0`` (clockwise in
   PyTorch3D's NDC, +X left: facing away from the camera); skip ``-1e-8 <= face_area <= 1e-8``.
3. Skip if p lies outside f's (x, y) bounding box grown by ``r = sqrt(blur_radius)``:
   ``px > xmax + r or px < xmin - r or py > ymax + r or py < ymin - r``.
4. Barycentric numerators ``e0 = edge(p, v1, v2)``, ``e1 = edge(p, v2, v0)``, ``e2 = edge(p, v0, v1)``;
   PyTorch3D's denominator ``den = edge(v2, v0, v1) + 1e-8`` and ``sg = 1 if den > 0 else -1``, so that
   the screen barycentrics are ``b_i = e_i / den = h_i / q`` with, without perspective correction,
   ``h_i = e_i * sg`` and ``q = den * sg``; with it (``w_i = b_i z_j z_k / sum(b z z)``),
   ``h_0 = e0 * (sg * (z1 * z2))``, ``h_1 = e1 * (sg * (z0 * z2))``, ``h_2 = e2 * (sg * (z0 * z1))`` and
   ``q = (h_0 + h_1) + h_2``. PyTorch3D's (corrected) barycentrics are ``w_i = h_i / q``.
5. Depth. Unclipped: ``num = (h_0 * z0 + h_1 * z1) + h_2 * z2``; ``pz = num * (1 / q)`` without
   perspective correction (``1 / q`` computed once per face), ``pz = num / q`` with it. Clipped
   (``clip_barycentric_coords``, i.e. ``c_i = max(w_i, 0) / max(sum_j max(w_j, 0), 1e-5)``):
   ``m_i = max(h_i, 0)`` if ``q > 0`` else ``max(-h_i, 0)``; ``pz = ((m_0 * z0 + m_1 * z1) + m_2 * z2) /
   max((m_0 + m_1) + m_2, 1e-5 * abs(q))``. Skip unless ``pz >= 0`` (PyTorch3D skips ``pz < 0``; a NaN
   depth, possible only when ``q == 0``, is skipped too).
6. ``inside`` = every ``w_i > 0`` (unclipped), i.e. ``h_0, h_1, h_2 > 0``, or ``q < 0`` and
   ``h_0, h_1, h_2 < 0``. If not inside, skip if some ``h_i < 0`` has ``e_i * e_i >= blur_radius *
   l_i`` (``l_i`` the squared length of the edge opposite corner i, as computed below: p lies beyond
   that edge's line by at least ``sqrt(blur_radius)``, so ``dist >= blur_radius``, a shortcut implied
   by PyTorch3D's test); then skip unless ``dist < blur_radius``, i.e. unless the squared
   distance from p to one of the segments (a, b) = (v0, v1), (v0, v2), (v1, v2) is ``< blur_radius``
   (checked in that order, stopping at the first), each distance being, with
   ``d = b - a``, ``l2 = d.x * d.x + d.y * d.y``, ``s = d.x * (p.x - a.x) + d.y * (p.y - a.y)``:
   ``|p - b|^2`` if ``l2 <= 1e-8``, else ``|p - a|^2`` if ``s <= 0``, else ``|p - b|^2`` if ``s >= l2``,
   else ``e * e / l2`` with e the edge value of that segment's line (e2, e1, e0 respectively);
   ``|u|^2 = u.x * u.x + u.y * u.y``. (PyTorch3D's clamped projection, case by case.)
7. Keep the K faces with the smallest ``(pz, f)`` pairs, sorted: ties in depth go to the lower packed
   face index (a stable order, identical in every backend). Empty slots are -1.
"""
from __future__ import annotations

import math
from typing import Any, Optional, Tuple

import torch

from .._validation import (
    check_choice,
    check_float,
    check_image_size,
    check_index_range,
    check_int,
    check_same_device,
    check_tensor,
)

__all__ = ["BACKENDS", "rasterize_visibility"]

BACKENDS = ("auto", "numba", "torch", "reference")

# PyTorch3D's kEpsilon (utils/geometry_utils.h): z validity, zero-area faces, barycentric denominator,
# zero-length segments. The clip floor of the barycentric sum is 1e-5, as in PyTorch3D.
EPS = 1e-8
CLIP_SUM_MIN = 1e-5


def rasterize_visibility(
    face_verts: torch.Tensor,
    mesh_to_face_first_idx: torch.Tensor,
    num_faces_per_mesh: torch.Tensor,
    image_size: Any,
    *,
    faces_per_pixel: int = 1,
    blur_radius: float = 0.0,
    perspective_correct: bool = False,
    clip_barycentric_coords: bool = False,
    cull_backfaces: bool = False,
    backend: str = "auto",
    bin_size: Optional[int] = None,
    max_faces_per_bin: Optional[int] = None,
) -> torch.Tensor:
    """For every pixel, the K nearest faces touching its centre (PyTorch3D's ``rasterize_meshes``).

    Args:
        face_verts: (F, 3, 3) float, packed faces; ``face_verts[f, i] = (x_ndc, y_ndc, z_view)`` of
            corner i of face f, NDC as in docs/conventions.md (+X left, +Y up, shorter side [-1, 1]),
            ``z_view > 0`` in front of the camera.
        mesh_to_face_first_idx: (N,) int, first packed face of each mesh.
        num_faces_per_mesh: (N,) int, faces of each mesh: image n sees the faces
            ``[first[n], first[n] + num[n])``.
        image_size: int or (H, W).
        faces_per_pixel: K >= 1, faces kept per pixel.
        blur_radius: >= 0, squared NDC distance within which a face touches a pixel outside it.
        perspective_correct: correct barycentrics with the corners' depths before interpolating depth.
        clip_barycentric_coords: clip barycentrics to [0, 1] (and renormalise) before interpolating depth.
        cull_backfaces: skip faces whose 2D winding in NDC is clockwise (facing away).
        backend: ``"auto"`` (numba for CPU tensors, torch otherwise), ``"numba"``, ``"torch"`` or
            ``"reference"`` (brute force, small scenes only).
        bin_size: tile side in pixels of the ``"numba"`` backend; None picks one from the image size
            (8 to 64 pixels), 0 means one tile per image (no binning); at least ``max(H, W) / 512``.
            Changes speed, never the result; the other backends ignore it.
        max_faces_per_bin: accepted for PyTorch3D compatibility. Bins always grow to hold every face,
            so nothing is ever dropped and the value has no effect on the result.

    Returns:
        pix_to_face: (N, H, W, K) int64 on ``face_verts.device``. ``pix_to_face[n, y, x, k] = f`` means
        packed face f is the k-th nearest face (by interpolated depth, ties to the lower index)
        touching the centre of pixel (y, x) of image n; -1 if fewer than k + 1 faces do. Not
        differentiable. The exact rule is in this module's docstring.
    """
    sizes: dict = {}
    check_tensor(face_verts, "face_verts", shape=("F", 3, 3), dtype="float", finite=True, sizes=sizes)
    check_tensor(mesh_to_face_first_idx, "mesh_to_face_first_idx", shape=("N",), dtype="int", sizes=sizes)
    check_tensor(num_faces_per_mesh, "num_faces_per_mesh", shape=("N",), dtype="int", sizes=sizes)
    check_same_device(
        face_verts=face_verts,
        mesh_to_face_first_idx=mesh_to_face_first_idx,
        num_faces_per_mesh=num_faces_per_mesh,
    )
    F = face_verts.shape[0]
    first = mesh_to_face_first_idx.to(torch.int64)
    num = num_faces_per_mesh.to(torch.int64)
    check_index_range(num, "num_faces_per_mesh", F + 1)
    check_index_range(first, "mesh_to_face_first_idx", F + 1)
    if num.numel() and bool(((first + num) > F).any()):
        raise ValueError(
            f"num_faces_per_mesh: expected mesh_to_face_first_idx + num_faces_per_mesh <= F = {F} "
            f"for every mesh, got a mesh reaching face {int((first + num).max())}"
        )
    H, W = check_image_size(image_size)
    K = check_int(faces_per_pixel, "faces_per_pixel", min=1)
    blur_radius = check_float(blur_radius, "blur_radius", min=0.0)
    flags = {}
    for name, value in (
        ("perspective_correct", perspective_correct),
        ("clip_barycentric_coords", clip_barycentric_coords),
        ("cull_backfaces", cull_backfaces),
    ):
        if not isinstance(value, bool):
            raise TypeError(f"{name}: expected a bool, got {type(value).__name__} {value!r}")
        flags[name] = value
    check_choice(backend, "backend", BACKENDS)
    if bin_size is not None:
        bin_size = check_int(bin_size, "bin_size", min=0)
    if max_faces_per_bin is not None:
        check_int(max_faces_per_bin, "max_faces_per_bin", min=1)
    if backend == "auto":
        backend = "numba" if face_verts.device.type == "cpu" else "torch"
    if backend == "numba" and face_verts.device.type != "cpu":
        raise ValueError(f"backend: expected a CPU face_verts for 'numba', got device {face_verts.device}")

    args = (face_verts.detach().to(torch.float64), first, num, (H, W), K, blur_radius)
    if backend == "reference":
        out = _rasterize_reference(*args, **flags)
    elif backend == "numba":
        from ._visibility_numba import rasterize_numba

        out = rasterize_numba(*args, **flags, bin_size=bin_size)
    else:
        from ._visibility_torch import rasterize_torch

        out = rasterize_torch(*args, **flags, bin_size=bin_size)
    return out.to(face_verts.device)


# ---------------------------------------------------------------------------------------------
# Reference backend: one Python-float (IEEE double) evaluation per (pixel, face) pair.
# ---------------------------------------------------------------------------------------------


def _edge(px: float, py: float, ax: float, ay: float, bx: float, by: float) -> float:
    return (px - ax) * (by - ay) - (py - ay) * (bx - ax)


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


def pixel_face_depth(
    px: float,
    py: float,
    face: Tuple[float, ...],
    blur_radius: float,
    perspective_correct: bool,
    clip_barycentric_coords: bool,
    cull_backfaces: bool,
) -> Optional[float]:
    """The module docstring's rule for one pixel centre and one face: the depth ``pz`` if the face
    touches the pixel, else None. ``face`` is ``(x0, y0, z0, x1, y1, z1, x2, y2, z2)`` as floats."""
    x0, y0, z0, x1, y1, z1, x2, y2, z2 = face
    if min(z0, z1, z2) < EPS:
        return None
    face_area = _edge(x0, y0, x1, y1, x2, y2)
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
    den = _edge(x2, y2, x0, y0, x1, y1) + EPS
    sg = 1.0 if den > 0.0 else -1.0
    e0 = _edge(px, py, x1, y1, x2, y2)
    e1 = _edge(px, py, x2, y2, x0, y0)
    e2 = _edge(px, py, x0, y0, x1, y1)
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
    return pz


def _div(a: float, b: float) -> float:
    """IEEE division (Python raises on division by zero; the compiled backends return inf/NaN)."""
    if b != 0.0:
        return a / b
    if a == 0.0 or math.isnan(a):
        return math.nan
    return math.copysign(math.inf, a) * math.copysign(1.0, b)


def _rasterize_reference(
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
) -> torch.Tensor:
    H, W = image_size
    N = first.shape[0]
    S = float(min(H, W))
    faces = face_verts.reshape(-1, 9).cpu().tolist()
    out = torch.full((N, H, W, K), -1, dtype=torch.int64)
    for n in range(N):
        f_lo = int(first[n])
        f_hi = f_lo + int(num[n])
        for i in range(H):
            py = (H - 2.0 * i - 1.0) / S
            for j in range(W):
                px = (W - 2.0 * j - 1.0) / S
                hits = []
                for f in range(f_lo, f_hi):
                    pz = pixel_face_depth(
                        px, py, faces[f], blur_radius, perspective_correct, clip_barycentric_coords, cull_backfaces
                    )
                    if pz is not None:
                        hits.append((pz, f))
                hits.sort()
                for k, (_, f) in enumerate(hits[:K]):
                    out[n, i, j, k] = f
    return out
