"""Per-fragment lighting: Phong (per pixel), Gouraud (per vertex) and flat (per face) shading.

Each function returns the shaded colour of every fragment, (N, H, W, K, C), which a blending function
turns into an image. Shading happens in **world space**: fragment positions and normals are interpolated
from the world-space vertices and vertex normals, and the camera position is
``cameras.get_camera_center()``. For every fragment, as PyTorch3D::

    colour = (ambient + diffuse) * texel + specular
    ambient = material.ambient_color * light.ambient_color
    diffuse = material.diffuse_color * light.diffuse(normal, point)
    specular = material.specular_color * light.specular(normal, point, camera, material.shininess)

Batches: ``lights``, ``materials`` and the cameras have a batch of 1 (shared) or N (one per mesh).
Empty fragments (``pix_to_face == -1``) get colour 0; blending ignores them.
"""
from __future__ import annotations

from typing import Any, Tuple

import torch

from .._validation import check_index_range
from ._batched import batch_view
from .interpolate import interpolate_face_attributes

__all__ = ["flat_shading", "gouraud_shading", "phong_shading", "sample_texels"]


def sample_texels(meshes: Any, fragments: Any) -> torch.Tensor:
    """Texture colour of every fragment, (N, H, W, K, C): ``meshes.textures.sample_textures``; white (C = 3)
    when the meshes have no textures (so untextured meshes render as shaded white)."""
    textures = getattr(meshes, "textures", None)
    if textures is None:
        return torch.ones(fragments.bary_coords.shape, dtype=fragments.bary_coords.dtype,
                          device=fragments.bary_coords.device)
    return textures.sample_textures(fragments, meshes)


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


def _filled(fragments: Any, num_faces: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Flat indices (M,) of the filled fragment slots, their packed faces (M,) and image indices (M,)."""
    p2f = fragments.pix_to_face.reshape(-1)
    sel = (p2f >= 0).nonzero().squeeze(1)
    check_index_range(p2f[sel], "fragments.pix_to_face", num_faces)
    per_image = fragments.pix_to_face[0].numel() if fragments.pix_to_face.shape[0] else 1
    return sel, p2f[sel], torch.div(sel, per_image, rounding_mode="floor")


def _light_filled(points: torch.Tensor, normals: torch.Tensor, texels: torch.Tensor, image_idx: torch.Tensor,
                  lights: Any, cam: torch.Tensor, materials: Any) -> torch.Tensor:
    """(M, C) ``(ambient + diffuse) * texels + specular`` for M fragments of images ``image_idx``."""
    if len(lights) > 1:
        lights = lights.gather_props(image_idx)
    if len(materials) > 1:
        materials = materials.gather_props(image_idx)
    if cam.shape[0] > 1:
        cam = cam[image_idx.to(cam.device)]
    ambient, diffuse, specular = apply_lighting(points, normals, lights, cam, materials)
    return (ambient + diffuse) * texels + specular


def _scatter(values: torch.Tensor, sel: torch.Tensor, fragments: Any) -> torch.Tensor:
    """(N, H, W, K, C): ``values`` (M, C) at the filled slots ``sel``, 0 elsewhere."""
    shape = fragments.pix_to_face.shape
    # In place on a fresh buffer: the out-of-place index_copy would copy the whole (N*H*W*K, C) buffer once more.
    out = values.new_zeros(shape.numel(), values.shape[-1]).index_copy_(0, sel, values)
    return out.view(shape + (values.shape[-1],))


def phong_shading(meshes: Any, fragments: Any, lights: Any, cameras: Any, materials: Any,
                  texels: torch.Tensor) -> torch.Tensor:
    """Per-pixel lighting: interpolate world positions and vertex normals at each fragment, light there.

    Args:
        meshes: N meshes (world space). fragments: their rasterization, (N, H, W, K).
        lights, cameras, materials: batch 1 or N. texels: (N, H, W, K, C) albedo per fragment.

    Returns:
        (N, H, W, K, C) ``(ambient + diffuse) * texels + specular``; 0 in empty slots. Only filled slots are
        computed (the cost follows the covered fragments, not N * H * W * K).
    """
    cam = cameras.get_camera_center()
    _check_batches(len(meshes), lights, materials, cam)
    verts = meshes.verts_packed()
    faces = meshes.faces_packed()
    sel, face_idx, image_idx = _filled(fragments, faces.shape[0])
    # Position and normal interpolated together: per-face rows of 18 values gathered once (contiguous rows
    # gather faster than three 6-value vertex rows per fragment).
    face_attrs = torch.cat([verts, meshes.verts_normals_packed().to(verts.dtype)], dim=-1)[faces]  # (F, 3, 6)
    attrs = face_attrs.reshape(-1, 18).index_select(0, face_idx).view(-1, 3, 6)
    bary = fragments.bary_coords.reshape(-1, 3)[sel].to(verts.dtype)
    pix = torch.einsum("mi,mid->md", bary, attrs)
    tex = texels.reshape(-1, texels.shape[-1])[sel]
    colors = _light_filled(pix[:, :3], pix[:, 3:], tex, image_idx, lights, cam, materials)
    return _scatter(colors, sel, fragments)


def flat_shading(meshes: Any, fragments: Any, lights: Any, cameras: Any, materials: Any,
                 texels: torch.Tensor) -> torch.Tensor:
    """Per-face lighting at the face centroid with the face normal (``(v1 - v0) x (v2 - v0)``, unit).

    Same arguments and return as :func:`phong_shading`.
    """
    cam = cameras.get_camera_center()
    _check_batches(len(meshes), lights, materials, cam)
    verts = meshes.verts_packed()
    faces = meshes.faces_packed()
    sel, face_idx, image_idx = _filled(fragments, faces.shape[0])
    per_face = torch.cat([verts[faces].mean(dim=1), meshes.faces_normals_packed().to(verts.dtype)], dim=-1)
    pix = per_face.index_select(0, face_idx)
    centroids, normals = pix[:, :3], pix[:, 3:]
    tex = texels.reshape(-1, texels.shape[-1])[sel]
    colors = _light_filled(centroids, normals, tex, image_idx, lights, cam, materials)
    return _scatter(colors, sel, fragments)


def gouraud_shading(meshes: Any, fragments: Any, lights: Any, cameras: Any, materials: Any) -> torch.Tensor:
    """Per-vertex lighting, then barycentric interpolation of the lit colours.

    Vertices are lit once each (world position and area-weighted vertex normal); the colour at a face
    corner is ``corner_colour * (ambient + diffuse) + specular``, where ``corner_colour`` comes from
    ``meshes.textures.faces_verts_textures_packed(meshes)`` ((sum F, 3, C): the vertex colours for
    ``TexturesVertex``; any textures class implementing it works), or white without textures.

    Returns:
        (N, H, W, K, C).
    """
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
    shaded = corner * ambient_diffuse[faces] + specular[faces]  # (F, 3, C)
    return interpolate_face_attributes(fragments.pix_to_face, fragments.bary_coords, shaded)
