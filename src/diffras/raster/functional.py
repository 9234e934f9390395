"""``rasterize``: the functional rasterizer on already-projected vertices (nvdiffrast's way of thinking).

(Module named ``functional`` so that ``diffras.raster.rasterize`` is only ever the function.)

Pipeline, configured by one :class:`RasterSettings` built (and validated) once by the entry point:
optional frustum culling and near-plane clipping (``diffras.raster.clip``) -> visibility
(``diffras.raster.visibility``, integer, no gradients, with the keep-covering rule) -> differentiable
fragments on the filled slots only (``diffras.raster.fragments``: the fused Numba kernel or plain torch,
as ``settings.fragments`` says) -> clipped pieces mapped back to their original faces.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Tuple

import torch

from .._validation import check_index_range, check_same_device, check_tensor
from .clip import clip_faces, frustum_cull_mask, rasterize_clipped
from .fragments import Fragments, compute_fragments
from .settings import RasterSettings, check_bool, setting_defaults
from .visibility import keep_covering_face, visible_faces

if TYPE_CHECKING:
    from .settings import ImageSize

__all__ = ["rasterize"]

_D = setting_defaults()


def rasterize(
    verts_ndc: torch.Tensor,
    faces: torch.Tensor,
    image_size: "ImageSize",
    *,
    num_faces_per_mesh: Optional[torch.Tensor] = None,
    faces_per_pixel: int = _D["faces_per_pixel"],
    blur_radius: float = _D["blur_radius"],
    perspective_correct: bool = False,
    clip_barycentric_coords: Optional[bool] = _D["clip_barycentric_coords"],
    cull_backfaces: bool = _D["cull_backfaces"],
    z_clip_value: Optional[float] = _D["z_clip_value"],
    cull_to_frustum: bool = _D["cull_to_frustum"],
    backend: str = _D["backend"],
    bin_size: Optional[int] = _D["bin_size"],
    max_faces_per_bin: Optional[int] = _D["max_faces_per_bin"],
    keep_covering: bool = _D["keep_covering"],
    fragments: str = _D["fragments"],
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
        z_clip_value, cull_to_frustum, backend, bin_size, max_faces_per_bin, keep_covering, fragments:
            as in :class:`diffras.raster.RasterSettings` (same defaults), except that
            ``perspective_correct`` is a plain bool here (this function does not know the camera;
            PyTorch3D's default, False) and ``clip_barycentric_coords=None`` means ``blur_radius > 0``.

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
    settings = RasterSettings(
        image_size,
        blur_radius=blur_radius,
        faces_per_pixel=faces_per_pixel,
        bin_size=bin_size,
        max_faces_per_bin=max_faces_per_bin,
        perspective_correct=check_bool(perspective_correct, "perspective_correct"),
        clip_barycentric_coords=clip_barycentric_coords,
        cull_backfaces=cull_backfaces,
        z_clip_value=z_clip_value,
        cull_to_frustum=cull_to_frustum,
        backend=backend,
        keep_covering=keep_covering,
        fragments=fragments,
    ).resolve()
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
    return rasterize_face_verts(verts_packed[faces], num, settings, verts_faces=(verts_packed, faces))


def _use_fused_fragments(settings: RasterSettings, face_verts: torch.Tensor) -> bool:
    """Whether ``settings.fragments`` selects the fused Numba fragment kernel for ``face_verts``.

    ``"auto"``: exactly for CPU float32/float64 tensors (the kernel's domain); ``"fused"`` elsewhere is a
    ``ValueError`` naming the setting."""
    fits = face_verts.device.type == "cpu" and face_verts.dtype in (torch.float32, torch.float64)
    if settings.fragments == "fused" and not fits:
        raise ValueError(
            "fragments: expected CPU float32/float64 vertices for 'fused', got "
            f"{face_verts.dtype} on {face_verts.device}; use 'auto' or 'torch'"
        )
    return fits and settings.fragments != "torch"


def rasterize_face_verts(
    face_verts: torch.Tensor,
    num_faces_per_mesh: torch.Tensor,
    settings: RasterSettings,
    *,
    verts_faces: Optional[Tuple[torch.Tensor, torch.Tensor]] = None,
) -> Fragments:
    """:func:`rasterize` on packed face corners (PyTorch3D's ``rasterize_meshes`` internals).

    Args:
        face_verts: (F, 3, 3) float, finite (the entry point checked), meshes contiguous in order.
        num_faces_per_mesh: (N,) int64, faces of each mesh, summing to F.
        settings: resolved :class:`RasterSettings` (``settings.resolve()``): every field is used.
        verts_faces: optional ``(verts (V, 3), faces (F, 3))`` with ``face_verts == verts[faces]``; the
            fused CPU fragment kernel then reads and differentiates ``verts`` directly (no (F, 3, 3)
            gradient scattered back through the gather).
    """
    H, W = settings.image_size
    fused = _use_fused_fragments(settings, face_verts)
    frag_kw = dict(
        perspective_correct=settings.perspective_correct,
        clip_barycentric_coords=settings.clip_barycentric_coords,
    )
    num = num_faces_per_mesh
    first = torch.cumsum(num, 0) - num

    culled = frustum_cull_mask(face_verts, (H, W), settings.blur_radius) if settings.cull_to_frustum else None
    z_clip_value = settings.z_clip_value
    clipped = None
    if z_clip_value is not None and face_verts.shape[0]:
        # Common case first: every corner in front of the plane, nothing to clip (one reduction).
        zmin = face_verts.detach()[..., 2].amin(1)
        if bool((zmin < z_clip_value).any()):
            clipped = clip_faces(
                face_verts, first, num, z_clip_value, perspective_correct=settings.perspective_correct,
                culled=culled,
            )
            if clipped is None:
                # Nothing crosses the plane: only faces wholly behind it go (visibility keeps z >= 1e-8).
                behind = (face_verts.detach()[..., 2] < z_clip_value).all(1)
                culled = behind if culled is None else culled | behind
    if clipped is not None:
        return rasterize_clipped(clipped, settings)

    vis = face_verts.detach()
    if culled is not None and bool(culled.any()):
        # Culled faces stay in place (indices unchanged) as a point behind the camera: zero area
        # and z < 0, which every visibility backend drops.
        sentinel = vis.new_tensor([[0.0, 0.0, -1.0]] * 3)
        vis = torch.where(culled[:, None, None], sentinel, vis)
    # The fused path packs the lists at once: the numba backend then only writes each list's filled slots.
    found = visible_faces(vis, first, num, settings, counts=fused)
    p2f, covering, lost = found[:3]
    counts = found[3] if fused else None
    p2f = keep_covering_face(p2f, covering, lost, settings.keep_covering)
    return compute_fragments(face_verts, p2f, fused=fused, verts_faces=verts_faces if fused else None,
                             filled_per_pixel=counts, **frag_kw)
