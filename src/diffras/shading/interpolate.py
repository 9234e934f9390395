"""Barycentric interpolation of per-face-corner attributes over the fragments."""
from __future__ import annotations

import torch

from .._validation import check_finite, check_index_range, check_same_device, check_tensor

__all__ = ["interpolate_face_attributes"]


def _filled(pix_to_face: torch.Tensor) -> torch.Tensor:
    """Flat indices (P,) of the fragment slots that hold a face."""
    return (pix_to_face.reshape(-1) >= 0).nonzero().squeeze(1)


def interpolate_face_attributes(
    pix_to_face: torch.Tensor,
    bary_coords: torch.Tensor,
    face_attributes: torch.Tensor,
) -> torch.Tensor:
    """Interpolate per-face-corner attributes at every fragment with its barycentric coordinates.

    ``out[n, y, x, k] = sum_i bary_coords[n, y, x, k, i] * face_attributes[f, i]`` with
    ``f = pix_to_face[n, y, x, k]``, and ``0`` where ``f == -1`` (empty slot). Only filled slots are
    computed (gather, weighted sum, scatter), so the cost is proportional to the covered fragments.

    Args:
        pix_to_face: (N, H, W, K) int64, packed face index per fragment, -1 where empty
            (``Fragments.pix_to_face``).
        bary_coords: (N, H, W, K, 3) float, barycentric coordinates of each fragment
            (``Fragments.bary_coords``); empty slots are ignored whatever they hold.
        face_attributes: (F, 3, D) float, the attribute at each corner of each packed face
            (e.g. ``verts_colors[faces_packed]``).

    Returns:
        (N, H, W, K, D) in the promoted dtype of ``bary_coords`` and ``face_attributes``. Differentiable
        with respect to ``bary_coords`` and ``face_attributes``.

    Example:
        >>> p2f = torch.tensor([0, -1]).view(1, 1, 2, 1)
        >>> bary = torch.tensor([[0.2, 0.3, 0.5], [-1.0, -1.0, -1.0]]).view(1, 1, 2, 1, 3)
        >>> attrs = torch.tensor([[[1.0], [2.0], [3.0]]])
        >>> [round(v, 4) for v in interpolate_face_attributes(p2f, bary, attrs).flatten().tolist()]
        [2.3, 0.0]
    """
    sizes: dict = {}
    check_tensor(pix_to_face, "pix_to_face", shape=("N", "H", "W", "K"), dtype="int", sizes=sizes)
    check_tensor(bary_coords, "bary_coords", shape=("N", "H", "W", "K", 3), dtype="float", sizes=sizes)
    check_tensor(face_attributes, "face_attributes", shape=(None, 3, None), dtype="float")
    check_same_device(pix_to_face=pix_to_face, bary_coords=bary_coords, face_attributes=face_attributes)
    check_finite(face_attributes, "face_attributes")
    check_index_range(pix_to_face, "pix_to_face", face_attributes.shape[0], allow=(-1,))

    dtype = torch.promote_types(bary_coords.dtype, face_attributes.dtype)
    N, H, W, K = pix_to_face.shape
    D = face_attributes.shape[2]
    sel = _filled(pix_to_face)
    faces = pix_to_face.reshape(-1)[sel]
    bary = bary_coords.reshape(-1, 3)[sel].to(dtype)
    check_finite(bary, "bary_coords")
    vals = torch.einsum("pi,pid->pd", bary, face_attributes.to(dtype)[faces])
    out = vals.new_zeros(N * H * W * K, D).index_copy(0, sel, vals)
    return out.view(N, H, W, K, D)
