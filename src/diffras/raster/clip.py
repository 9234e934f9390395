"""Near-plane clipping and frustum culling of projected faces, before visibility (PyTorch3D's rules).

Faces are ``(x_ndc, y_ndc, z_view)`` corners. A face is split by the plane ``z_view = z_clip_value``
into the part in front of it (``z >= z_clip_value``), following PyTorch3D's four cases:

1. all corners in front: unchanged;
2. all corners behind (or culled by the frustum): removed;
3. two corners behind: one smaller triangle ``(p4, p5, p1)``, p1 the corner in front;
4. one corner behind: a quadrilateral split into ``(p4, p2, p5)`` and ``(p5, p2, p3)``, p1 the corner
   behind.

Here p1 is the odd corner, p2 and p3 the next ones in the face's own order (so every piece keeps the
face's winding, and back-face culling still works), p4 on edge p1-p2 and p5 on edge p1-p3 where
``z = z_clip_value``. The new points are placed on the edges in *view space*: under perspective their
``x_ndc * z`` (linear in view space for any pinhole projection) is interpolated and divided by the new
depth. Each piece keeps the barycentric coordinates of its corners with respect to the original face,
so fragments on a piece convert back exactly (``bary_original = bary_piece @ conversion``).
Everything is differentiable with respect to the face corners. :func:`rasterize_clipped` rasterizes the
pieces and maps their fragments back to the original faces.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Tuple

import torch

from .fragments import Fragments, fragment_values, pixel_centers_of, scatter_fragments
from .visibility import covering_lost, visible_faces, warn_lost_covering

if TYPE_CHECKING:
    from .settings import RasterSettings

__all__ = ["ClippedFaces", "clip_faces", "frustum_cull_mask", "rasterize_clipped"]


@dataclass
class ClippedFaces:
    """The faces to rasterize after clipping, and how to map their fragments back.

    - ``face_verts``: (F', 3, 3) pieces, mesh by mesh (each mesh's pieces contiguous, original order).
    - ``mesh_to_face_first_idx``, ``num_faces_per_mesh``: (N,) int64 ranges of each mesh in it.
    - ``to_original``: (F',) int64, the original packed face of each piece.
    - ``conversion``: (F', 3, 3) float, row j = barycentrics of piece corner j w.r.t. the original face.
    - ``neighbor``: (F',) int64, for a case-4 piece the index of its twin piece, else -1.
    """

    face_verts: torch.Tensor
    mesh_to_face_first_idx: torch.Tensor
    num_faces_per_mesh: torch.Tensor
    to_original: torch.Tensor
    conversion: torch.Tensor
    neighbor: torch.Tensor


def frustum_cull_mask(face_verts: torch.Tensor, image_size: Tuple[int, int], blur_radius: float) -> torch.Tensor:
    """(F,) bool: faces whose three corners all lie beyond the same side of the image in x or y.

    The image spans ``|x_ndc| <= W / S``, ``|y_ndc| <= H / S`` (``S = min(H, W)``), grown by
    ``sqrt(blur_radius)`` so that no face that could touch a pixel centre is culled. (PyTorch3D culls
    at +-1 on both axes, which wrongly drops visible faces on the long side of non-square images.)
    """
    H, W = image_size
    S = float(min(H, W))
    r = math.sqrt(blur_radius)
    xm, ym = W / S + r, H / S + r
    x, y = face_verts[..., 0], face_verts[..., 1]
    out = (x > xm).all(1) | (x < -xm).all(1) | (y > ym).all(1) | (y < -ym).all(1)
    return out


def _take(fv: torch.Tensor, corner: torch.Tensor) -> torch.Tensor:
    """fv (T, 3, 3), corner (T,) -> (T, 3) the chosen corner of each face."""
    return fv.gather(1, corner[:, None, None].expand(-1, 1, 3)).squeeze(1)


def _on_plane(a: torch.Tensor, b: torch.Tensor, z_clip: float, perspective: bool):
    """Point where segment a-b (T, 3) crosses z = z_clip, and its weight w along a->b (T,).

    a and b are strictly on opposite sides, so the denominator never vanishes."""
    w = (a[:, 2] - z_clip) / (a[:, 2] - b[:, 2])
    ww = w[:, None]
    p = a * (1 - ww) + b * ww
    if perspective:
        xy = (a[:, :2] * a[:, 2:3] * (1 - ww) + b[:, :2] * b[:, 2:3] * ww) / z_clip
        p = torch.cat((xy, p[:, 2:3]), dim=1)
    return p, w


def clip_faces(
    face_verts: torch.Tensor,
    mesh_to_face_first_idx: torch.Tensor,
    num_faces_per_mesh: torch.Tensor,
    z_clip_value: float,
    *,
    perspective_correct: bool,
    culled: Optional[torch.Tensor] = None,
) -> Optional[ClippedFaces]:
    """Clip faces at ``z_view = z_clip_value`` (module docstring); None if no face crosses the plane.

    Args:
        face_verts: (F, 3, 3) float packed faces ``(x_ndc, y_ndc, z_view)``.
        mesh_to_face_first_idx, num_faces_per_mesh: (N,) int64, each mesh's range of faces; the
            ranges must be contiguous and in order (``first = cumsum(num) - num``, covering all F).
        z_clip_value: > 0, the clipping depth.
        perspective_correct: place new corners for a perspective projection (else affine).
        culled: optional (F,) bool faces to drop as well (e.g. the frustum culling).

    Returns:
        :class:`ClippedFaces`, or None when no face has corners on both sides of the plane (then the
        caller only needs to drop the faces wholly behind it, which visibility does by itself).
    """
    F = face_verts.shape[0]
    device = face_verts.device
    behind = face_verts[..., 2] < z_clip_value  # (F, 3)
    nb = behind.sum(1)
    if culled is None:
        culled = torch.zeros(F, dtype=torch.bool, device=device)
    case3 = (nb == 2) & ~culled
    case4 = (nb == 1) & ~culled
    if not bool((case3 | case4).any()):
        return None
    case2 = (nb == 3) | culled
    case1 = ~(case2 | case3 | case4)

    # New layout: every face keeps its place in order; case 2 takes no slot, case 4 takes two.
    count = 1 + case4.long() - case2.long()
    new_idx = torch.cumsum(count, 0) - count
    F_new = int(count.sum())
    # Callers pack meshes contiguously and in order (first = cumsum(num) - num), so piece counts
    # per mesh give the new ranges directly.
    mesh_of_face = torch.repeat_interleave(
        torch.arange(num_faces_per_mesh.shape[0], device=device), num_faces_per_mesh, output_size=F
    )
    num_new = torch.zeros_like(num_faces_per_mesh).index_add_(0, mesh_of_face, count)
    first_new = torch.cumsum(num_new, 0) - num_new

    dtype = face_verts.dtype
    eye = torch.eye(3, dtype=dtype, device=device)
    idx1 = torch.nonzero(case1).squeeze(1)
    idx3 = torch.nonzero(case3).squeeze(1)
    idx4 = torch.nonzero(case4).squeeze(1)

    # Case 3: p1 is the one corner in front; case 4: p1 is the one corner behind.
    fv3, fv4 = face_verts[idx3], face_verts[idx4]
    c3 = (~behind[idx3]).long().argmax(1)
    c4 = behind[idx4].long().argmax(1)

    def corners(fv, c1):
        c2, c3_ = (c1 + 1) % 3, (c1 + 2) % 3
        p1, p2, p3 = _take(fv, c1), _take(fv, c2), _take(fv, c3_)
        p4, w2 = _on_plane(p1, p2, z_clip_value, perspective_correct)
        p5, w3 = _on_plane(p1, p3, z_clip_value, perspective_correct)
        e1, e2, e3 = eye[c1], eye[c2], eye[c3_]
        b4 = e1 * (1 - w2[:, None]) + e2 * w2[:, None]
        b5 = e1 * (1 - w3[:, None]) + e3 * w3[:, None]
        return (p1, p2, p3, p4, p5), (e1, e2, e3, b4, b5)

    (p1, _, _, p4, p5), (e1, _, _, b4, b5) = corners(fv3, c3)
    piece3, conv3 = torch.stack((p4, p5, p1), 1), torch.stack((b4, b5, e1), 1)
    (_, q2, q3, q4, q5), (_, f2, f3, g4, g5) = corners(fv4, c4)
    piece4a, conv4a = torch.stack((q4, q2, q5), 1), torch.stack((g4, f2, g5), 1)
    piece4b, conv4b = torch.stack((q5, q2, q3), 1), torch.stack((g5, f2, f3), 1)

    dst = torch.cat((new_idx[idx1], new_idx[idx3], new_idx[idx4], new_idx[idx4] + 1))
    src_verts = torch.cat((face_verts[idx1], piece3, piece4a, piece4b))
    src_conv = torch.cat((eye.expand(idx1.shape[0], 3, 3), conv3, conv4a, conv4b))
    # index_copy out of place: differentiable with respect to the pieces.
    out_verts = face_verts.new_zeros((F_new, 3, 3)).index_copy(0, dst, src_verts)
    to_original = torch.zeros(F_new, dtype=torch.int64, device=device).index_copy(
        0, dst, torch.cat((idx1, idx3, idx4, idx4))
    )
    neighbor = torch.full((F_new,), -1, dtype=torch.int64, device=device)
    neighbor[new_idx[idx4]] = new_idx[idx4] + 1
    neighbor[new_idx[idx4] + 1] = new_idx[idx4]
    # The conversion depends on where the plane cuts the edges; keep it differentiable too.
    conversion = face_verts.new_zeros((F_new, 3, 3)).index_copy(0, dst, src_conv)
    return ClippedFaces(out_verts, first_new, num_new, to_original, conversion, neighbor)



def rasterize_clipped(clipped: ClippedFaces, settings: "RasterSettings") -> Fragments:
    """Rasterize clipped pieces and map the fragments back to the original faces.

    A face cut into two pieces (case 4) may have both in one pixel's list (with ``blur_radius > 0``
    near their shared diagonal). As PyTorch3D, only one piece is kept, the other slot is removed and
    the list closes up; visibility is asked for 2K faces so that the K kept are exactly the K nearest.
    The piece kept has the smaller *signed* distance (the one containing the pixel centre; on a tie the
    lower piece index). PyTorch3D compares unsigned distances, which ties for every pixel near the
    diagonal and can keep the piece that does not contain the pixel (clipped barycentrics, wrong
    sign of ``dists``, and a gradient discontinuity).

    Step 8 of the rule (``settings.keep_covering``) then applies to original faces: the covering face
    of a pixel is the original face of its nearest covering piece; when the K entries lack it, its
    covering piece takes the K-th slot.

    Fragments are computed in torch here (the fused kernel knows no pieces), whatever ``settings.fragments``.

    Args:
        clipped: the pieces, from :func:`clip_faces`.
        settings: resolved :class:`RasterSettings`.

    Returns:
        :class:`Fragments` (N, H, W, K) indexing the original faces.
    """
    H, W = settings.image_size
    K = settings.faces_per_pixel
    frag_kw = dict(
        perspective_correct=settings.perspective_correct,
        clip_barycentric_coords=settings.clip_barycentric_coords,
    )
    fvc = clipped.face_verts
    has_pairs = bool((clipped.neighbor >= 0).any())
    K2 = min(2 * K, 2048) if has_pairs else K
    p2f, covering, _ = visible_faces(
        fvc.detach(), clipped.mesh_to_face_first_idx, clipped.num_faces_per_mesh, settings, faces_per_pixel=K2
    )
    N = p2f.shape[0]
    flat = p2f.reshape(-1)
    slot = torch.nonzero(flat >= 0).squeeze(1)
    piece = flat[slot]
    pix = slot // K2
    px, py = pixel_centers_of(pix, (H, W), fvc.dtype)
    bary, zbuf, dists = fragment_values(fvc[piece], px, py, **frag_kw)

    if has_pairs and slot.numel():
        Fc = fvc.shape[0]
        key = pix * Fc + piece
        sorted_key, order = torch.sort(key)
        partner = clipped.neighbor[piece]
        pkey = pix * Fc + partner.clamp_min(0)
        pos = torch.searchsorted(sorted_key, pkey).clamp_max(key.numel() - 1)
        found = (partner >= 0) & (sorted_key[pos] == pkey)
        other = order[pos]
        d_self, d_other = dists.detach(), dists.detach()[other]
        drop = found & ((d_self > d_other) | ((d_self == d_other) & (piece > partner)))
        keep = torch.nonzero(~drop).squeeze(1)
        slot, piece, pix = slot[keep], piece[keep], pix[keep]
        bary, zbuf, dists = bary[keep], zbuf[keep], dists[keep]

    # Rank of each kept entry within its pixel (entries are in slot order: pixel, then near to far).
    if slot.numel():
        _, counts = torch.unique_consecutive(pix, return_counts=True)
        starts = torch.cumsum(counts, 0) - counts
        rank = torch.arange(pix.numel(), device=pix.device) - torch.repeat_interleave(starts, counts)
    else:
        rank = pix
    within = torch.nonzero(rank < K).squeeze(1)
    new_slot = pix[within] * K + rank[within]
    piece, pix, rank = piece[within], pix[within], rank[within]
    bary, zbuf, dists = bary[within], zbuf[within], dists[within]
    out = torch.full((N * H * W * K,), -1, dtype=torch.int64, device=p2f.device)
    out[new_slot] = clipped.to_original[piece]

    if covering is not None and out.numel():
        cov_piece = covering.reshape(-1)
        cov_orig = torch.where(cov_piece >= 0, clipped.to_original[cov_piece.clamp_min(0)], -1)
        lost = covering_lost(out.view(-1, K), cov_orig)
        if not settings.keep_covering:
            warn_lost_covering(int(lost.sum()), K)
        else:
            # The covering piece replaces the K-th entry of each pixel that lacks its original face.
            lost_pix = torch.nonzero(lost).squeeze(1)
            stay = torch.nonzero(~(lost[pix] & (rank == K - 1))).squeeze(1)
            add_piece = cov_piece[lost_pix]
            apx, apy = pixel_centers_of(lost_pix, (H, W), fvc.dtype)
            abary, azbuf, adists = fragment_values(fvc[add_piece], apx, apy, **frag_kw)
            new_slot = torch.cat((new_slot[stay], lost_pix * K + K - 1))
            piece = torch.cat((piece[stay], add_piece))
            bary, zbuf, dists = (torch.cat((a[stay], b)) for a, b in ((bary, abary), (zbuf, azbuf), (dists, adists)))
            out[lost_pix * K + K - 1] = clipped.to_original[add_piece]
            order = torch.argsort(new_slot)  # back to slot order
            new_slot, piece, bary, zbuf, dists = (t[order] for t in (new_slot, piece, bary, zbuf, dists))

    bary = (bary.unsqueeze(1) @ clipped.conversion[piece]).squeeze(1)
    return scatter_fragments(out.view(N, H, W, K), new_slot, bary, zbuf, dists)
