"""Per-fragment lighting: Phong (per pixel), Gouraud (per vertex) and flat (per face) shading.

Each ``*_shading`` function returns the shaded colour of every fragment, (N, H, W, K, C), which a blending
function turns into an image; each ``*_packed`` twin returns the colours of the P filled fragments only,
(P, C) in ``Fragments.slot_idx`` order (what the shaders use: no dense (N, H, W, K, C) tensor).

Shading happens in **world space**: fragment positions and normals are interpolated from the world-space
vertices and vertex normals, and the camera position is ``cameras.get_camera_center()``. For every fragment, as PyTorch3D::

    colour = (ambient + diffuse) * texel + specular
    ambient = material.ambient_color * light.ambient_color
    diffuse = material.diffuse_color * light.diffuse(normal, point)
    specular = material.specular_color * light.specular(normal, point, camera, material.shininess)

Batches: ``lights``, ``materials`` and the cameras have a batch of 1 (shared) or N (one per mesh).
Empty fragments (``pix_to_face == -1``) get colour 0; blending ignores them.
"""
from __future__ import annotations

import copy

from typing import Any, Tuple, Union

import torch

from .._validation import check_index_range
from ..raster.fragments import Fragments, as_fragments, scatter_packed, use_fused
from ..textures.interpolate import interpolate_packed
from ._batched import batch_view
from .lighting import DirectionalLights, PointLights
from .materials import Materials

__all__ = ["flat_packed", "flat_shading", "gouraud_packed", "gouraud_shading", "phong_packed", "phong_shading",
           "sample_texels", "sample_texels_packed"]


def sample_texels_packed(meshes: Any, fragments: Fragments, texture_mipmap: Union[None, bool, str] = None
                         ) -> torch.Tensor:
    """Texture colour of the P filled fragments, (P, C): ``meshes.textures.sample_textures_packed`` (or the
    dense ``sample_textures`` gathered, for texture classes without it); white (C = 3) without textures.

    ``texture_mipmap``: when not None, UV textures are sampled with this ``mipmap`` setting instead of their
    own (e.g. False for PyTorch3D-identical level-0 sampling); the textures object is not changed."""
    textures = getattr(meshes, "textures", None)
    bary = fragments.bary_packed
    if textures is None:
        return torch.ones((bary.shape[0], 3), dtype=bary.dtype, device=bary.device)
    if texture_mipmap is not None and getattr(textures, "mipmap", texture_mipmap) != texture_mipmap:
        # A shallow copy shares the maps and their cached pyramids; only the sampling setting differs.
        textures = copy.copy(textures)
        textures.mipmap = "auto" if texture_mipmap is None else texture_mipmap
    if hasattr(textures, "sample_textures_packed"):
        return textures.sample_textures_packed(fragments, meshes)
    dense = textures.sample_textures(fragments, meshes)
    return dense.reshape(-1, dense.shape[-1])[fragments.slot_idx]


def sample_texels(meshes: Any, fragments: Any) -> torch.Tensor:
    """Texture colour of every fragment, (N, H, W, K, C), 0 in empty slots (:func:`sample_texels_packed`
    scattered)."""
    fragments = as_fragments(fragments)
    vals = sample_texels_packed(meshes, fragments)
    return scatter_packed(vals, fragments.slot_idx, fragments.shape, 0.0)


def _check_batches(N: int, lights: Any, materials: Any, camera_position: torch.Tensor) -> None:
    for name, n in (("lights", len(lights)), ("materials", len(materials)), ("cameras", camera_position.shape[0])):
        if n not in (1, N):
            raise ValueError(f"{name}: expected a batch of 1 or {N} (the number of meshes), got {n}")


def apply_lighting(points: torch.Tensor, normals: torch.Tensor, lights: Any, camera_position: torch.Tensor,
                   materials: Any) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Ambient (broadcastable), diffuse and specular colours, (B, *, C), at world-space ``points`` with
    ``normals`` ((B, *, 3)); ``lights``/``materials`` props and ``camera_position`` ((M, 3)) have batch 1 or B."""
    if hasattr(lights, "diffuse_specular"):
        light_diffuse, light_specular = lights.diffuse_specular(normals, points, camera_position, materials.shininess)
    else:  # any object with PyTorch3D's light interface
        light_diffuse = lights.diffuse(normals, points)
        light_specular = lights.specular(normals, points, camera_position, materials.shininess)
    ambient = batch_view(materials.ambient_color, points, "materials.ambient_color") * \
        batch_view(lights.ambient_color, points, "lights.ambient_color")
    diffuse = batch_view(materials.diffuse_color, points, "materials.diffuse_color") * light_diffuse
    specular = batch_view(materials.specular_color, points, "materials.specular_color") * light_specular
    return ambient, diffuse, specular


def _checked(fragments: Any, num_faces: int) -> Fragments:
    fragments = as_fragments(fragments)
    check_index_range(fragments.face_idx, "fragments.pix_to_face", num_faces)
    return fragments


def _fusable(points, normals, texels, lights, cam, materials) -> bool:
    if type(lights) not in (PointLights, DirectionalLights) or type(materials) is not Materials:
        return False
    C = texels.shape[-1]
    colors = [lights.ambient_color, lights.diffuse_color, lights.specular_color, materials.ambient_color,
              materials.diffuse_color, materials.specular_color]
    tensors = [points, normals, texels, cam, materials.shininess] + colors
    return (use_fused(points, normals, texels) and all(t.device.type == "cpu" for t in tensors)
            and all(t.shape[-1] == C for t in colors) and texels.dim() == 2)


def _light_torch(points: torch.Tensor, normals: torch.Tensor, texels: torch.Tensor, image_idx: torch.Tensor,
                 lights: Any, cam: torch.Tensor, materials: Any) -> torch.Tensor:
    """The plain-torch lighting of :func:`_lit_faces` (any device, any light with PyTorch3D's interface)."""
    if len(lights) > 1:
        lights = lights.gather_props(image_idx)
    if len(materials) > 1:
        materials = materials.gather_props(image_idx)
    if cam.shape[0] > 1:
        cam = cam[image_idx.to(cam.device)]
    ambient, diffuse, specular = apply_lighting(points, normals, lights, cam, materials)
    return (ambient + diffuse) * texels + specular


def _packed_texels(texels: torch.Tensor, fragments: Fragments) -> torch.Tensor:
    """(P, C) texels of the filled fragments from (P, C) packed or (N, H, W, K, C) dense ``texels``."""
    if texels.dim() == 2 and texels.shape[0] == fragments.num_filled:
        return texels
    if tuple(texels.shape[:4]) != fragments.shape or texels.dim() != 5:
        raise ValueError(f"texels: expected shape {fragments.shape} + (C,) or "
                         f"({fragments.num_filled}, C), got {tuple(texels.shape)}")
    return texels.reshape(-1, texels.shape[-1])[fragments.slot_idx]


def _lit_faces(attr: torch.Tensor, corner: torch.Tensor, fragments: Fragments, bary: torch.Tensor, tex: torch.Tensor,
               lights: Any, cam: torch.Tensor, materials: Any) -> torch.Tensor:
    """(P, C) lit colours of the filled fragments, whose world position and normal are interpolated from
    ``attr`` (A, 6) (position | normal) rows ``corner[face]`` ((F, J)) with ``bary`` (P, J) (J = 1: weight 1).

    The fused kernel (interpolation and lighting in one pass, the image from the slot index) for point and
    directional lights on CPU float32/float64 tensors; else the torch path (the reference, any device and any
    light with PyTorch3D's interface)."""
    if _fusable(attr, bary, tex, lights, cam, materials):
        from ._lighting_numba import fused_phong_faces

        N, H, W, K = fragments.shape
        return fused_phong_faces(attr, corner, fragments.face_idx, bary, fragments.slot_idx, H * W * K, tex, lights,
                                 materials, cam)
    if corner.shape[1] == 1:
        pix = attr.index_select(0, corner[fragments.face_idx, 0])
    else:
        pix = interpolate_packed(fragments.face_idx, bary, attr[corner])
    return _light_torch(pix[:, :3], pix[:, 3:], tex, fragments.image_idx, lights, cam, materials)


def phong_packed(meshes: Any, fragments: Any, lights: Any, cameras: Any, materials: Any,
                 texels: torch.Tensor) -> torch.Tensor:
    """:func:`phong_shading` of the P filled fragments only: texels (P, C) (or dense), returns (P, C)."""
    cam = cameras.get_camera_center()
    _check_batches(len(meshes), lights, materials, cam)
    verts = meshes.verts_packed()
    faces = meshes.faces_packed()
    fragments = _checked(fragments, faces.shape[0])
    tex = _packed_texels(texels, fragments)
    # Position and normal interpolated together: rows of 6 values per vertex.
    attr = torch.cat([verts, meshes.verts_normals_packed().to(verts.dtype)], dim=-1)
    return _lit_faces(attr, faces, fragments, fragments.bary_packed.to(verts.dtype), tex, lights, cam, materials)


def flat_packed(meshes: Any, fragments: Any, lights: Any, cameras: Any, materials: Any,
                texels: torch.Tensor) -> torch.Tensor:
    """:func:`flat_shading` of the P filled fragments only: texels (P, C) (or dense), returns (P, C)."""
    cam = cameras.get_camera_center()
    _check_batches(len(meshes), lights, materials, cam)
    verts = meshes.verts_packed()
    faces = meshes.faces_packed()
    fragments = _checked(fragments, faces.shape[0])
    tex = _packed_texels(texels, fragments)
    per_face = torch.cat([verts[faces].mean(dim=1), meshes.faces_normals_packed().to(verts.dtype)], dim=-1)
    rows = torch.arange(faces.shape[0], device=faces.device)[:, None]
    return _lit_faces(per_face, rows, fragments, per_face.new_zeros((0, 1)), tex, lights, cam, materials)


def gouraud_packed(meshes: Any, fragments: Any, lights: Any, cameras: Any, materials: Any) -> torch.Tensor:
    """:func:`gouraud_shading` of the P filled fragments only, (P, C)."""
    fragments = _checked(fragments, meshes.faces_packed().shape[0])
    shaded = _gouraud_corners(meshes, lights, cameras, materials)
    return interpolate_packed(fragments.face_idx, fragments.bary_packed, shaded)


def _scatter(values: torch.Tensor, fragments: Fragments) -> torch.Tensor:
    return scatter_packed(values, fragments.slot_idx, fragments.shape, 0.0)


def phong_shading(meshes: Any, fragments: Any, lights: Any, cameras: Any, materials: Any,
                  texels: torch.Tensor) -> torch.Tensor:
    """Per-pixel lighting: interpolate world positions and vertex normals at each fragment, light there.

    Args:
        meshes: N meshes (world space). fragments: their rasterization, (N, H, W, K).
        lights, cameras, materials: batch 1 or N. texels: (N, H, W, K, C) albedo per fragment.

    Returns:
        (N, H, W, K, C) ``(ambient + diffuse) * texels + specular``; 0 in empty slots. Only filled slots are
        computed (:func:`phong_packed`, what the shaders use, then scattered).
    """
    fragments = as_fragments(fragments)
    return _scatter(phong_packed(meshes, fragments, lights, cameras, materials, texels), fragments)


def flat_shading(meshes: Any, fragments: Any, lights: Any, cameras: Any, materials: Any,
                 texels: torch.Tensor) -> torch.Tensor:
    """Per-face lighting at the face centroid with the face normal (``(v1 - v0) x (v2 - v0)``, unit).

    Same arguments and return as :func:`phong_shading` (:func:`flat_packed` scattered).
    """
    fragments = as_fragments(fragments)
    return _scatter(flat_packed(meshes, fragments, lights, cameras, materials, texels), fragments)


def _gouraud_corners(meshes: Any, lights: Any, cameras: Any, materials: Any) -> torch.Tensor:
    """(F, 3, C) lit colour of every packed face corner (vertices lit once each)."""
    cam = cameras.get_camera_center()
    N = len(meshes)
    _check_batches(N, lights, materials, cam)
    verts = meshes.verts_packed()
    faces = meshes.faces_packed()
    normals = meshes.verts_normals_packed().to(verts.dtype)
    textures = getattr(meshes, "textures", None)
    if textures is None:
        corner = torch.ones(faces.shape + (3,), dtype=verts.dtype, device=verts.device)
    elif hasattr(textures, "faces_verts_textures_packed"):
        corner = textures.faces_verts_textures_packed(meshes)
    else:
        raise ValueError(
            f"meshes.textures: Gouraud shading needs per-vertex colours (faces_verts_textures_packed), "
            f"got {type(textures).__name__}"
        )
    if N > 1:
        # Light packed vertices: index each batched property by the vertex's mesh.
        idx = meshes.verts_packed_to_mesh_idx()
        lights = lights.gather_props(idx) if len(lights) > 1 else lights
        materials = materials.gather_props(idx) if len(materials) > 1 else materials
        cam = cam[idx.to(cam.device)] if cam.shape[0] > 1 else cam
    ambient, diffuse, specular = apply_lighting(verts, normals, lights, cam, materials)
    ambient_diffuse = (ambient + diffuse).expand(verts.shape[0], -1)
    return corner * ambient_diffuse[faces] + specular[faces]  # (F, 3, C)


def gouraud_shading(meshes: Any, fragments: Any, lights: Any, cameras: Any, materials: Any) -> torch.Tensor:
    """Per-vertex lighting, then barycentric interpolation of the lit colours.

    Vertices are lit once each (world position and area-weighted vertex normal); the colour at a face
    corner is ``corner_colour * (ambient + diffuse) + specular``, where ``corner_colour`` comes from
    ``meshes.textures.faces_verts_textures_packed(meshes)`` ((sum F, 3, C): the vertex colours for
    ``TexturesVertex``; any textures class implementing it works), or white without textures.

    Returns:
        (N, H, W, K, C) (:func:`gouraud_packed` scattered).
    """
    fragments = as_fragments(fragments)
    return _scatter(gouraud_packed(meshes, fragments, lights, cameras, materials), fragments)
