"""Visibility: which faces touch each pixel, nearest first (the only hot loop of diffras).

``rasterize_visibility`` validates its inputs and dispatches to one of three interchangeable backends
that return identical ``pix_to_face``:

- ``"numba"``: compiled CPU kernel, faces binned into screen tiles, tiles rasterized in parallel
  (``diffras.raster._visibility_numba``);
- ``"torch"``: vectorised over (face, pixel) candidate pairs from each face's box, in memory-bounded
  chunks; runs on any torch device (``diffras.raster._visibility_torch``);
- ``"reference"``: brute force over every (pixel, face) pair in plain Python floats, written to be
  read, not to be fast; tests compare the other backends against it on small scenes
  (``diffras.raster._visibility_reference``).

Each backend computes steps 1-7 and the covering faces of step 8: the ``"numba"`` kernel in the same pass
(``diffras.raster._covering_numba``: only pixels whose full list may lack it are searched), the others by a
second K = 1 pass without blur (:func:`visible_faces`); :func:`keep_covering_face` applies step 8, once,
here, for all of them.

Semantics: PyTorch3D's ``rasterize_meshes`` (its CPU/CUDA kernels: same tests, same comparisons, same
constants). PyTorch3D computes in float32, so bit-level agreement with it is impossible anyway; diffras
decides in float64 with algebraically identical expressions arranged to need at most one division per
(pixel, face) pair (the barycentric denominators cancel), and every backend evaluates exactly the
expressions below in the same order, without fused multiply-add, so their ``pix_to_face`` agree bit
for bit. For image n, pixel centre p = (px, py) in NDC (``diffras.raster._rule.pixel_center``)
and packed face f of mesh n with corners v0, v1, v2 = (x, y, z) (x, y in NDC, z the view-space depth),
with ``edge(p, a, b) = (p.x - a.x) * (b.y - a.y) - (p.y - a.y) * (b.x - a.x)`` (``_rule.edge``), and
``1e-8`` and ``1e-5`` being ``_rule.EPS`` and ``_rule.CLIP_SUM_MIN``:

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
8. Keep the covering face (``keep_covering=True``, the default; ``False`` is PyTorch3D's strict rule, which
   stops at step 7). The face *covering* the pixel is the one steps 1-7 keep with ``blur_radius = 0``,
   ``clip_barycentric_coords = False`` and K = 1 (the rest unchanged): among the faces whose ``inside`` is
   true (step 6), the one with the smallest ``(pz, f)``, ``pz`` the unclipped depth; what a hard render
   shows. (Unclipped and clipped depths of such a face are equal with perspective correction, and equal
   up to rounding without.) If there is one and step 7 did not keep it (K faces nearer than it lie
   within ``blur_radius``), it replaces the K-th entry; the list stays sorted, since it touches the pixel
   and is farther than all the others. With ``blur_radius == 0`` every touching face covers the pixel
   and this step changes nothing.
"""
from __future__ import annotations

import warnings
from dataclasses import replace
from typing import TYPE_CHECKING, Optional, Tuple

import torch

from .._validation import check_index_range, check_same_device, check_tensor
from .settings import BACKENDS, RasterSettings, check_bool, setting_defaults

if TYPE_CHECKING:
    from .settings import ImageSize

__all__ = ["BACKENDS", "covering_lost", "keep_covering_face", "rasterize_visibility", "visible_faces", "warn_lost_covering"]

_D = setting_defaults()


def rasterize_visibility(
    face_verts: torch.Tensor,
    mesh_to_face_first_idx: torch.Tensor,
    num_faces_per_mesh: torch.Tensor,
    image_size: "ImageSize",
    *,
    faces_per_pixel: int = _D["faces_per_pixel"],
    blur_radius: float = _D["blur_radius"],
    perspective_correct: bool = False,
    clip_barycentric_coords: bool = False,
    cull_backfaces: bool = _D["cull_backfaces"],
    backend: str = _D["backend"],
    bin_size: Optional[int] = _D["bin_size"],
    max_faces_per_bin: Optional[int] = _D["max_faces_per_bin"],
    keep_covering: bool = _D["keep_covering"],
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
        keep_covering: step 8 of the rule (see :class:`diffras.raster.RasterSettings`): True keeps each
            pixel's nearest covering face in its list; False is PyTorch3D's strict K-nearest rule and warns
            when it drops covering faces.

    Every keyword but ``perspective_correct`` and ``clip_barycentric_coords`` (plain bools here, default
    False) has the default and the validation of :class:`diffras.raster.RasterSettings`.

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
    settings = RasterSettings(
        image_size,
        blur_radius=blur_radius,
        faces_per_pixel=faces_per_pixel,
        bin_size=bin_size,
        max_faces_per_bin=max_faces_per_bin,
        perspective_correct=check_bool(perspective_correct, "perspective_correct"),
        clip_barycentric_coords=check_bool(clip_barycentric_coords, "clip_barycentric_coords"),
        cull_backfaces=cull_backfaces,
        backend=backend,
        keep_covering=keep_covering,
    )
    p2f, covering, lost = visible_faces(face_verts, first, num, settings)
    return keep_covering_face(p2f, covering, lost, settings.keep_covering)


def visible_faces(
    face_verts: torch.Tensor,
    first: torch.Tensor,
    num: torch.Tensor,
    settings: RasterSettings,
    faces_per_pixel: Optional[int] = None,
    counts: bool = False,
):
    """Steps 1-7 of the rule on already-validated input: the strict lists and the covering faces.

    Args:
        face_verts: (F, 3, 3) float, finite (the caller checked).
        first, num: (N,) int64 mesh ranges, valid (the caller built or checked them).
        settings: resolved :class:`RasterSettings` (``perspective_correct``, ``clip_barycentric_coords``
            are bools); ``image_size``, ``blur_radius``, ``cull_backfaces``, ``backend`` and ``bin_size``
            are used here.
        faces_per_pixel: K of the lists, ``settings.faces_per_pixel`` if None (the near-plane clipping
            asks for more).

    Returns:
        ``(pix_to_face, covering, lost)``: (N, H, W, K) int64 strict K-nearest lists (step 7); (N, H, W)
        int64 the covering face of each pixel (step 8), -1 where none; (N, H, W) bool the pixels whose
        list lacks it (:func:`covering_lost`). Both None when ``blur_radius == 0`` (then the covering face
        is ``pix_to_face[..., 0]``). On ``face_verts.device``.
        The ``"numba"`` backend finds the covering faces inside its tile pass, searching only the pixels
        whose full list may lack it (``diffras.raster._covering_numba``); the ``"torch"`` and
        ``"reference"`` backends run a second, hard (K = 1, no blur) pass.

        ``counts=True`` adds a fourth entry: (N, H, W) int32 list lengths from the ``"numba"`` backend, whose
        ``pix_to_face`` is then valid only in each pixel's first ``counts`` slots (nothing else is written:
        for a caller that packs the lists at once); None from the other backends (their lists are whole).
    """
    K = settings.faces_per_pixel if faces_per_pixel is None else faces_per_pixel
    backend = settings.backend
    if backend == "auto":
        backend = "numba" if face_verts.device.type == "cpu" else "torch"
    if backend == "numba" and face_verts.device.type != "cpu":
        raise ValueError(f"backend: expected a CPU face_verts for 'numba', got device {face_verts.device}")
    fv64 = face_verts.detach().to(torch.float64)
    if backend == "numba":
        from ._visibility_numba import rasterize_numba

        return rasterize_numba(fv64, first, num, settings, K, covering=True, counts=counts)
    if backend == "reference":
        from ._visibility_reference import rasterize_reference as run
    else:
        from ._visibility_torch import rasterize_torch as run
    p2f = run(fv64, first, num, settings, K).to(face_verts.device)
    extra = (None,) if counts else ()
    if settings.blur_radius == 0.0:
        return (p2f, None, None) + extra
    hard = replace(settings, blur_radius=0.0, clip_barycentric_coords=False)
    covering = run(fv64, first, num, hard, 1)[..., 0].to(face_verts.device)
    return (p2f, covering, covering_lost(p2f, covering)) + extra


def covering_lost(pix_to_face: torch.Tensor, covering: torch.Tensor) -> torch.Tensor:
    """(N, H, W) bool: pixels with a covering face (``covering`` (N, H, W) int64, -1 where none) that
    their list ``pix_to_face`` (N, H, W, K) lacks. Such a list is full: had it room, the covering face
    (which touches the pixel) would be in it."""
    return (covering >= 0) & ~(pix_to_face == covering.unsqueeze(-1)).any(-1)


def warn_lost_covering(n_lost: int, K: int) -> None:
    """The strict rule's warning: ``n_lost`` covered pixels lost their covering face (nothing if 0)."""
    if n_lost:
        warnings.warn(
            f"faces_per_pixel: {n_lost} covered pixel(s) lost their covering face: the K={K} nearest faces "
            "within blur_radius are all nearer than the face the pixel centre lies in (PyTorch3D's strict "
            "rule, keep_covering=False). Pass keep_covering=True or a larger faces_per_pixel.",
            stacklevel=4,
        )


def keep_covering_face(
    pix_to_face: torch.Tensor, covering: Optional[torch.Tensor], lost: Optional[torch.Tensor], keep: bool
) -> torch.Tensor:
    """Step 8 of the rule: each pixel's covering face replaces the K-th entry when the list lacks it.

    Args:
        pix_to_face: (N, H, W, K) int64 strict lists (step 7), as from :func:`visible_faces`; changed in
            place.
        covering: (N, H, W) int64 covering faces (-1 where none), or None (nothing to do).
        lost: (N, H, W) bool, :func:`covering_lost` of the two (None with ``covering``).
        keep: True applies step 8; False leaves the lists as they are (PyTorch3D's strict rule) but warns,
            once for the call, when covering faces were dropped.

    Returns:
        ``pix_to_face``.
    """
    if covering is None or pix_to_face.numel() == 0:
        return pix_to_face
    if keep:
        if pix_to_face.is_contiguous():
            # Few pixels lose their covering face: write those slots only (a dense where + copy of the
            # (N, H, W) last slots cost ~10 ms for 8 views at 512^2).
            sel = lost.reshape(-1).nonzero().squeeze(1)
            K = pix_to_face.shape[-1]
            pix_to_face.view(-1)[sel * K + (K - 1)] = covering.reshape(-1)[sel]
        else:
            pix_to_face[..., -1] = torch.where(lost, covering, pix_to_face[..., -1])
    else:
        warn_lost_covering(int(lost.sum()), pix_to_face.shape[-1])
    return pix_to_face
