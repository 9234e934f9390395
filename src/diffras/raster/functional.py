"""``rasterize``: the functional rasterizer on already-projected vertices (nvdiffrast's way of thinking).

(Module named ``functional`` so that ``diffras.raster.rasterize`` is only ever the function.)

Pipeline: optional frustum culling and near-plane clipping (``diffras.raster.clip``) -> visibility
(``diffras.raster.rasterize_visibility``, integer, no gradients) -> differentiable fragments recomputed
in torch on the filled slots only (``diffras.raster.fragments``) -> clipped pieces mapped back to their
original faces.
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

import torch

from .._validation import (
    check_float,
    check_image_size,
    check_index_range,
    check_int,
    check_same_device,
    check_tensor,
)
from .clip import clip_faces, frustum_cull_mask
from .fragments import Fragments, compute_fragments, fragment_values, pixel_centers_of, scatter_fragments
from .settings import BACKENDS
from .visibility import rasterize_visibility

__all__ = ["rasterize"]


def rasterize(
    verts_ndc: torch.Tensor,
    faces: torch.Tensor,
    image_size: Any,
    *,
    num_faces_per_mesh: Optional[torch.Tensor] = None,
    faces_per_pixel: int = 1,
    blur_radius: float = 0.0,
    perspective_correct: bool = False,
    clip_barycentric_coords: Optional[bool] = None,
    cull_backfaces: bool = False,
    z_clip_value: Optional[float] = None,
    cull_to_frustum: bool = False,
    backend: str = "auto",
    bin_size: Optional[int] = None,
    max_faces_per_bin: Optional[int] = None,
) -> Fragments:
    """Rasterize triangles whose corners are already projected to ``(x_ndc, y_ndc, z_view)``.

    Two layouts (symbols of docs/conventions.md):

    - **shared topology**: ``verts_ndc`` (N, V, 3) and ``faces`` (F, 3); image n shows ``verts_ndc[n][faces]``
      and ``pix_to_face`` holds packed indices ``n * F + f``.
    - **packed**: ``verts_ndc`` (sum V, 3) and ``faces`` (sum F, 3) indexing it, mesh n owning the
      ``num_faces_per_mesh[n]`` faces that follow those of meshes 0..n-1 (one mesh if None);
      ``pix_to_face`` holds indices into ``faces``. This is what ``rasterize_meshes`` passes
      (``Meshes.verts_packed()``, ``faces_packed()``, ``num_faces_per_mesh()``).

    ``x_ndc, y_ndc`` follow PyTorch3D's NDC (+X left, +Y up, the shorter image side spans [-1, 1]);
    ``z_view`` is the view-space depth, > 0 in front of the camera. Faces with a corner at
    ``z_view < 1e-8`` are dropped by visibility (their projection is wrong); set ``z_clip_value`` to clip
    them to their visible part instead.

    Args:
        verts_ndc: (N, V, 3) or (sum V, 3) float, finite; gradients flow back to it.
        faces: (F, 3) int, indices into the vertices of each mesh (shared) or into ``verts_ndc`` (packed).
        image_size: int or (H, W).
        num_faces_per_mesh: (N,) int, packed layout only.
        faces_per_pixel, blur_radius, perspective_correct, clip_barycentric_coords, cull_backfaces,
        z_clip_value, cull_to_frustum, backend, bin_size, max_faces_per_bin: as in
            :class:`diffras.raster.RasterSettings`, except that ``perspective_correct`` is a plain bool
            here (this function does not know the camera; PyTorch3D's default, False) and
            ``clip_barycentric_coords=None`` means ``blur_radius > 0``.

    Returns:
        :class:`Fragments` of shape (N, H, W, K) (see its docstring), on ``verts_ndc.device``, in
        ``verts_ndc.dtype``. ``zbuf``, ``bary_coords`` and ``dists`` are differentiable w.r.t. ``verts_ndc``.

    Example:
        >>> v = torch.tensor([[[0.5, 0.5, 1.0], [-0.5, 0.5, 1.0], [0.0, -0.5, 2.0]]])
        >>> f = torch.tensor([[0, 1, 2]])
        >>> frags = rasterize(v, f, (8, 8), perspective_correct=True)
        >>> frags.pix_to_face.shape
        torch.Size([1, 8, 8, 1])
    """
    check_tensor(verts_ndc, "verts_ndc", dtype="float", finite=True)
    if verts_ndc.dim() not in (2, 3) or verts_ndc.shape[-1] != 3:
        raise ValueError(f"verts_ndc: expected shape (N, V, 3) or (sum V, 3), got {tuple(verts_ndc.shape)}")
    check_tensor(faces, "faces", shape=(None, 3), dtype="int")
    check_same_device(verts_ndc=verts_ndc, faces=faces, num_faces_per_mesh=num_faces_per_mesh)
    faces = faces.to(torch.int64)
    check_index_range(faces, "faces", verts_ndc.shape[-2])
    if verts_ndc.dim() == 3:
        if num_faces_per_mesh is not None:
            raise ValueError(
                "num_faces_per_mesh: expected None with batched (N, V, 3) verts_ndc and shared faces, got a tensor"
            )
        N, V, F = verts_ndc.shape[0], verts_ndc.shape[1], faces.shape[0]
        verts_packed = verts_ndc.reshape(N * V, 3)
        faces = (faces[None] + V * torch.arange(N, device=faces.device)[:, None, None]).reshape(N * F, 3)
        num = torch.full((N,), F, dtype=torch.int64, device=verts_ndc.device)
    else:
        F = faces.shape[0]
        if num_faces_per_mesh is None:
            num = torch.full((1,), F, dtype=torch.int64, device=verts_ndc.device)
        else:
            check_tensor(num_faces_per_mesh, "num_faces_per_mesh", ndim=1, dtype="int")
            num = num_faces_per_mesh.to(torch.int64)
            check_index_range(num, "num_faces_per_mesh", F + 1)
            if int(num.sum()) != F:
                raise ValueError(
                    f"num_faces_per_mesh: expected entries summing to the number of faces {F}, "
                    f"got sum {int(num.sum())}"
                )
        verts_packed = verts_ndc
    return rasterize_face_verts(
        verts_packed[faces],
        num,
        image_size,
        faces_per_pixel=faces_per_pixel,
        blur_radius=blur_radius,
        perspective_correct=perspective_correct,
        clip_barycentric_coords=clip_barycentric_coords,
        cull_backfaces=cull_backfaces,
        z_clip_value=z_clip_value,
        cull_to_frustum=cull_to_frustum,
        backend=backend,
        bin_size=bin_size,
        max_faces_per_bin=max_faces_per_bin,
        verts_faces=(verts_packed, faces),
    )


def _check_flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name}: expected a bool, got {type(value).__name__} {value!r}")
    return value


def rasterize_face_verts(
    face_verts: torch.Tensor,
    num_faces_per_mesh: torch.Tensor,
    image_size: Any,
    *,
    faces_per_pixel: int = 1,
    blur_radius: float = 0.0,
    perspective_correct: bool = False,
    clip_barycentric_coords: Optional[bool] = None,
    cull_backfaces: bool = False,
    z_clip_value: Optional[float] = None,
    cull_to_frustum: bool = False,
    backend: str = "auto",
    bin_size: Optional[int] = None,
    max_faces_per_bin: Optional[int] = None,
    verts_faces: Optional[Tuple[torch.Tensor, torch.Tensor]] = None,
) -> Fragments:
    """:func:`rasterize` on packed face corners ``face_verts`` (F, 3, 3), meshes contiguous in order
    with ``num_faces_per_mesh`` (N,) faces each (PyTorch3D's ``rasterize_meshes`` internals).

    ``verts_faces``: optional ``(verts (V, 3), faces (F, 3))`` with ``face_verts == verts[faces]``;
    the fused CPU fragment kernel then reads and differentiates ``verts`` directly (no (F, 3, 3)
    gradient scattered back through the gather)."""
    H, W = check_image_size(image_size)
    K = check_int(faces_per_pixel, "faces_per_pixel", min=1, max=1024)
    blur_radius = check_float(blur_radius, "blur_radius", min=0.0)
    perspective_correct = _check_flag(perspective_correct, "perspective_correct")
    if clip_barycentric_coords is None:
        clip_barycentric_coords = blur_radius > 0.0
    clip_barycentric_coords = _check_flag(clip_barycentric_coords, "clip_barycentric_coords")
    cull_backfaces = _check_flag(cull_backfaces, "cull_backfaces")
    cull_to_frustum = _check_flag(cull_to_frustum, "cull_to_frustum")
    if z_clip_value is not None:
        z_clip_value = check_float(z_clip_value, "z_clip_value", min=0.0, min_exclusive=True)
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {list(BACKENDS)}, got {backend!r}")
    # Finiteness is checked once, by rasterize_visibility, on what it rasterizes.
    check_tensor(face_verts, "face_verts", shape=(None, 3, 3), dtype="float")
    num = num_faces_per_mesh.to(torch.int64)
    first = torch.cumsum(num, 0) - num
    vis_kw = dict(
        blur_radius=blur_radius,
        perspective_correct=perspective_correct,
        clip_barycentric_coords=clip_barycentric_coords,
        cull_backfaces=cull_backfaces,
        backend=backend,
        bin_size=bin_size,
        max_faces_per_bin=max_faces_per_bin,
    )
    frag_kw = dict(perspective_correct=perspective_correct, clip_barycentric_coords=clip_barycentric_coords)

    culled = frustum_cull_mask(face_verts, (H, W), blur_radius) if cull_to_frustum else None
    clipped = None
    if z_clip_value is not None and face_verts.shape[0]:
        # Common case first: every corner in front of the plane, nothing to clip (one reduction).
        zmin = face_verts.detach()[..., 2].amin(1)
        if bool((zmin < z_clip_value).any()):
            clipped = clip_faces(
                face_verts, first, num, z_clip_value, perspective_correct=perspective_correct, culled=culled
            )
            if clipped is None:
                # Nothing crosses the plane: only faces wholly behind it go (visibility keeps z >= 1e-8).
                behind = (face_verts.detach()[..., 2] < z_clip_value).all(1)
                culled = behind if culled is None else culled | behind

    if clipped is None:
        vis = face_verts.detach()
        if culled is not None and bool(culled.any()):
            # Culled faces stay in place (indices unchanged) as a point behind the camera: zero area
            # and z < 0, which every visibility backend drops.
            sentinel = vis.new_tensor([[0.0, 0.0, -1.0]] * 3)
            vis = torch.where(culled[:, None, None], sentinel, vis)
        p2f = rasterize_visibility(vis, first, num, (H, W), faces_per_pixel=K, **vis_kw)
        # The fused CPU fragment kernel goes with the compiled visibility; "torch" and "reference" keep
        # the plain-autograd path (device-agnostic, and the reference the fused kernel is tested against).
        fused = (
            backend in ("auto", "numba")
            and face_verts.device.type == "cpu"
            and face_verts.dtype in (torch.float32, torch.float64)
        )
        return compute_fragments(face_verts, p2f, fused=fused, verts_faces=verts_faces if fused else None, **frag_kw)
    return _rasterize_clipped(clipped, (H, W), K, vis_kw, frag_kw)


def _rasterize_clipped(clipped, image_size, K: int, vis_kw: dict, frag_kw: dict) -> Fragments:
    """Rasterize clipped pieces and map the fragments back to the original faces.

    A face cut into two pieces (case 4) may have both in one pixel's list (with ``blur_radius > 0``
    near their shared diagonal). As PyTorch3D, only one piece is kept, the other slot is removed and
    the list closes up; visibility is asked for 2K faces so that the K kept are exactly the K nearest.
    The piece kept has the smaller *signed* distance (the one containing the pixel centre; on a tie the
    lower piece index). PyTorch3D compares unsigned distances, which ties for every pixel near the
    diagonal and can keep the piece that does not contain the pixel (clipped barycentrics, wrong
    sign of ``dists``, and a gradient discontinuity).
    """
    H, W = image_size
    fvc = clipped.face_verts
    has_pairs = bool((clipped.neighbor >= 0).any())
    K2 = min(2 * K, 2048) if has_pairs else K
    p2f = rasterize_visibility(
        fvc.detach(), clipped.mesh_to_face_first_idx, clipped.num_faces_per_mesh, (H, W), faces_per_pixel=K2, **vis_kw
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
    piece = piece[within]
    bary, zbuf, dists = bary[within], zbuf[within], dists[within]

    bary = (bary.unsqueeze(1) @ clipped.conversion[piece]).squeeze(1)
    out = torch.full((N * H * W * K,), -1, dtype=torch.int64, device=p2f.device)
    out[new_slot] = clipped.to_original[piece]
    return scatter_fragments(out.view(N, H, W, K), new_slot, bary, zbuf, dists)
