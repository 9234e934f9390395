"""Barycentric interpolation of per-face-corner attributes over the fragments."""
from __future__ import annotations

from typing import Optional

import torch

from .._validation import check_finite, check_index_range, check_same_device, check_tensor
from ..raster.fragments import scatter_packed, use_fused

__all__ = ["interpolate_face_attributes", "interpolate_packed"]


def _filled(pix_to_face: torch.Tensor) -> torch.Tensor:
    """Flat indices (P,) of the fragment slots that hold a face."""
    return (pix_to_face.reshape(-1) >= 0).nonzero().squeeze(1)


def interpolate_packed(face_idx: torch.Tensor, bary: torch.Tensor, face_attributes: torch.Tensor, *,
                       fused: Optional[bool] = None) -> torch.Tensor:
    """``out[p] = sum_i bary[p, i] * face_attributes[face_idx[p], i]`` for P packed fragments.

    Args:
        face_idx: (P,) int64 in [0, F) (``Fragments.face_idx``; not checked here).
        bary: (P, 3) float (``Fragments.bary_packed``).
        face_attributes: (F, 3, D) float.
        fused: None: the fused Numba kernel for CPU float32/float64 inputs of one dtype, else plain torch.

    Returns:
        (P, D) in the promoted dtype; differentiable w.r.t. ``bary`` and ``face_attributes``.
    """
    dtype = torch.promote_types(bary.dtype, face_attributes.dtype)
    bary, face_attributes = bary.to(dtype), face_attributes.to(dtype)
    if fused is None:
        fused = use_fused(bary, face_attributes)
    if fused:
        from ._interpolate_numba import fused_interpolate

        return fused_interpolate(face_idx, bary, face_attributes)
    return torch.einsum("pi,pid->pd", bary, face_attributes[face_idx])


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

    sel = _filled(pix_to_face)
    bary = bary_coords.reshape(-1, 3)[sel]
    check_finite(bary, "bary_coords")
    vals = interpolate_packed(pix_to_face.reshape(-1)[sel], bary, face_attributes)
    return scatter_packed(vals, sel, pix_to_face.shape, 0.0)
