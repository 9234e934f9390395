"""The contract between visibility and shading: ``Fragments``."""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Optional

import torch

__all__ = ["Fragments", "compute_fragments"]


@dataclass(frozen=True)
class Fragments:
    """Per-pixel list of the K nearest faces and where the pixel centre lies on each.

    Shapes (see ``docs/conventions.md`` for the symbols and coordinate frames):

    - ``pix_to_face``: (N, H, W, K) int64. ``pix_to_face[n, y, x, k] = f`` means the k-th nearest face
      covering (or within ``blur_radius`` of) the centre of pixel (y, x) of image n is *packed* face f;
      -1 where fewer than k + 1 faces do. Sorted near to far; equal depths keep the lower face index first.
    - ``zbuf``: (N, H, W, K) float, view-space depth of the fragment; -1 where empty.
    - ``bary_coords``: (N, H, W, K, 3) float, barycentric coordinates of the pixel centre with respect to
      face f (perspective-correct for perspective cameras unless disabled); -1 where empty.
    - ``dists``: (N, H, W, K) float, signed squared distance in NDC (x, y) from the pixel centre to the
      face's 2D triangle boundary, negative inside; -1 where empty.

    ``zbuf``, ``bary_coords`` and ``dists`` are differentiable with respect to vertex positions and camera
    parameters; ``pix_to_face`` is integer and carries no gradient.
    """

    pix_to_face: torch.Tensor
    zbuf: torch.Tensor
    bary_coords: torch.Tensor
    dists: torch.Tensor

    def detach(self) -> "Fragments":
        return Fragments(*(getattr(self, f.name).detach() for f in fields(self)))

    def __iter__(self):
        # Unpacks like PyTorch3D's namedtuple: ``pix_to_face, zbuf, bary, dists = fragments``.
        return iter(tuple(getattr(self, f.name) for f in fields(self)))


# ---------------------------------------------------------------------------------------------
# Differentiable fragment math. Recomputed in torch from ``pix_to_face`` so that autograd gives exact
# gradients on any device; only the filled (pixel, k) slots are touched, so the work scales with the
# fragments found, not with N * H * W * K. Expressions and their order follow PyTorch3D's kernels
# (and diffras.raster.visibility, which decides which faces are here).
# ---------------------------------------------------------------------------------------------

# PyTorch3D's kEpsilon: barycentric denominator offset and zero-length segment threshold.
_EPS = 1e-8
# Floor of the clipped barycentric sum (PyTorch3D's BarycentricClipForward).
_CLIP_SUM_MIN = 1e-5


def _edge(px, py, ax, ay, bx, by):
    return (px - ax) * (by - ay) - (py - ay) * (bx - ax)


def _away_from_zero(x: torch.Tensor, floor: float) -> torch.Tensor:
    """``x`` with magnitudes below ``floor`` replaced by ``+-floor`` (sign kept, 0 -> +floor).

    A denominator guard whose backward stays finite: the replaced entries are constants, so no
    gradient flows through a near-zero division.
    """
    small = x.abs() < floor
    return torch.where(small, torch.where(x < 0, -floor, floor).to(x.dtype), x)


def _segment_dist2(px, py, ax, ay, bx, by):
    """Squared distance from p to segment (a, b); a segment with squared length <= 1e-8 counts as b."""
    dx, dy = bx - ax, by - ay
    l2 = dx * dx + dy * dy
    short = l2 <= _EPS
    # Double-where: the division never sees a tiny l2, so its backward is finite too.
    t = (dx * (px - ax) + dy * (py - ay)) / torch.where(short, torch.ones_like(l2), l2)
    t = t.clamp(0.0, 1.0)
    ex, ey = px - (ax + t * dx), py - (ay + t * dy)
    seg = ex * ex + ey * ey
    qx, qy = px - bx, py - by
    return torch.where(short, qx * qx + qy * qy, seg)


def fragment_values(
    fv: torch.Tensor,
    px: torch.Tensor,
    py: torch.Tensor,
    *,
    perspective_correct: bool,
    clip_barycentric_coords: bool,
):
    """Barycentrics, depth and signed distance of M (face, pixel centre) pairs.

    Args:
        fv: (M, 3, 3) float, the face of each pair, corners ``(x_ndc, y_ndc, z_view)``.
        px, py: (M,) float, the pixel centre of each pair in NDC.
        perspective_correct, clip_barycentric_coords: as in :class:`RasterSettings`.

    Returns:
        ``(bary (M, 3), zbuf (M,), dists (M,))`` with the meanings of :class:`Fragments`: ``bary`` is
        perspective-corrected and/or clipped as asked, ``zbuf = sum(bary * z)``, ``dists`` the squared
        2D distance to the triangle boundary, negative when the (unclipped) barycentrics are all > 0.
        Finite, with finite gradients, for any finite input (degenerate faces included).
    """
    x0, y0, z0 = fv[:, 0].unbind(-1)
    x1, y1, z1 = fv[:, 1].unbind(-1)
    x2, y2, z2 = fv[:, 2].unbind(-1)
    area = _away_from_zero(_edge(x2, y2, x0, y0, x1, y1) + _EPS, _EPS)
    w0 = _edge(px, py, x1, y1, x2, y2) / area
    w1 = _edge(px, py, x2, y2, x0, y0) / area
    w2 = _edge(px, py, x0, y0, x1, y1) / area
    if perspective_correct:
        t0 = w0 * z1 * z2
        t1 = w1 * z0 * z2
        t2 = w2 * z0 * z1
        denom = _away_from_zero(t0 + t1 + t2, _EPS)
        w0, w1, w2 = t0 / denom, t1 / denom, t2 / denom
    w = torch.stack((w0, w1, w2), dim=-1)
    inside = (w > 0).all(dim=-1)
    if clip_barycentric_coords:
        c = w.clamp_min(0.0)
        w = c / c.sum(dim=-1, keepdim=True).clamp_min(_CLIP_SUM_MIN)
    zbuf = w[:, 0] * z0 + w[:, 1] * z1 + w[:, 2] * z2
    dist = torch.minimum(
        torch.minimum(_segment_dist2(px, py, x0, y0, x1, y1), _segment_dist2(px, py, x0, y0, x2, y2)),
        _segment_dist2(px, py, x1, y1, x2, y2),
    )
    return w, zbuf, torch.where(inside, -dist, dist)


def pixel_centers_of(flat_pix: torch.Tensor, image_size, dtype: torch.dtype):
    """NDC centre (px, py) of pixels given by flat index ``n * H * W + y * W + x`` (M,) int64.

    Same formula as :func:`diffras.raster.pixels.pixel_centers_ndc` (PyTorch3D's placement)."""
    H, W = image_size
    S = float(min(H, W))
    x = flat_pix % W
    y = (flat_pix // W) % H
    px = (W - 2.0 * x.to(dtype) - 1.0) / S
    py = (H - 2.0 * y.to(dtype) - 1.0) / S
    return px, py


def scatter_fragments(
    pix_to_face: torch.Tensor,
    slot: torch.Tensor,
    bary: torch.Tensor,
    zbuf: torch.Tensor,
    dists: torch.Tensor,
) -> Fragments:
    """Dense :class:`Fragments` from values at M filled slots.

    Args:
        pix_to_face: (N, H, W, K) int64, the final face indices (-1 where empty).
        slot: (M,) int64 flat indices into ``pix_to_face`` of the filled slots.
        bary, zbuf, dists: (M, 3), (M,), (M,) values of those slots (differentiable).
    """
    shape = tuple(pix_to_face.shape)
    total = pix_to_face.numel()
    # Out-of-place index_put keeps the graph: gradients flow to the M values only.
    z = zbuf.new_full((total,), -1.0).index_put((slot,), zbuf)
    d = dists.new_full((total,), -1.0).index_put((slot,), dists)
    b = bary.new_full((total, 3), -1.0).index_put((slot,), bary)
    return Fragments(pix_to_face, z.view(shape), b.view(shape + (3,)), d.view(shape))


def compute_fragments(
    face_verts: torch.Tensor,
    pix_to_face: torch.Tensor,
    *,
    perspective_correct: bool = False,
    clip_barycentric_coords: bool = False,
    fused: Optional[bool] = None,
) -> Fragments:
    """Differentiable :class:`Fragments` from a visibility result and the projected faces.

    Args:
        face_verts: (F, 3, 3) float, packed faces, corners ``(x_ndc, y_ndc, z_view)`` (the input of
            :func:`diffras.raster.rasterize_visibility`); gradients flow back to it.
        pix_to_face: (N, H, W, K) int64 indices into ``face_verts``, -1 where empty.
        perspective_correct, clip_barycentric_coords: as in :class:`RasterSettings`.
        fused: use the fused CPU kernel (one numba pass, hand-written backward, tested against the
            torch path); None: when ``face_verts`` is a float32/float64 CPU tensor. False: plain
            torch autograd (any device).

    Returns:
        :class:`Fragments` with ``pix_to_face`` as given. Work and memory scale with the number of
        filled slots, not with N * H * W * K (the fused kernel scans the K slots of each pixel once).
    """
    if fused is None:
        fused = face_verts.device.type == "cpu" and face_verts.dtype in (torch.float32, torch.float64)
    if fused:
        from ._fragments_numba import fused_fragments

        faces = torch.arange(face_verts.shape[0] * 3, device=face_verts.device).view(-1, 3)
        zbuf, bary, dists = fused_fragments(
            face_verts.reshape(-1, 3), faces, pix_to_face, perspective_correct, clip_barycentric_coords
        )
        return Fragments(pix_to_face, zbuf, bary, dists)
    N, H, W, K = pix_to_face.shape
    flat = pix_to_face.reshape(-1)
    slot = torch.nonzero(flat >= 0).squeeze(1)
    faces = flat[slot]
    px, py = pixel_centers_of(slot // K, (H, W), face_verts.dtype)
    bary, zbuf, dists = fragment_values(
        face_verts[faces],
        px,
        py,
        perspective_correct=perspective_correct,
        clip_barycentric_coords=clip_barycentric_coords,
    )
    return scatter_fragments(pix_to_face, slot, bary, zbuf, dists)
