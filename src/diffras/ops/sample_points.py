"""Sampling points uniformly on the surface of meshes."""
from __future__ import annotations

from typing import Any, Tuple, Union

import torch

from .._validation import _describe, check_int
from ..structures import Meshes
from ..structures._packing import packed_to_padded

__all__ = ["sample_points_from_meshes"]


def sample_points_from_meshes(
    meshes: Meshes, num_samples: int = 10000, return_normals: bool = False, return_textures: bool = False
) -> Union[torch.Tensor, Tuple[torch.Tensor, ...]]:
    """Sample ``P = num_samples`` points uniformly (with respect to area) on each mesh's surface.

    Each point picks a face with probability proportional to its area (``torch.multinomial``, with
    replacement), then a uniform point in that triangle with the square-root trick: for ``r1, r2 ~ U[0, 1)``,
    ``w = (1 - sqrt(r1), sqrt(r1) (1 - r2), sqrt(r1) r2)`` and ``p = w0 v0 + w1 v1 + w2 v2``.

    The points are reparameterised (the random face choice and weights are constants), so they are
    differentiable with respect to the vertex positions; the face choice itself carries no gradient.
    Randomness comes from torch's global generator (seed it with ``torch.manual_seed``).

    Args:
        meshes: ``Meshes`` batch of N meshes.
        num_samples: ``P >= 1`` points per mesh.
        return_normals: also return the unit normal of the face each point lies on.
        return_textures: also return the mesh's textures sampled at each point (PyTorch3D's option; the
            mesh must have textures): the vertex features or UV map interpolated with the point's
            barycentric coordinates, as a render would at that surface point but without mip-mapping (a
            point has no footprint), i.e. PyTorch3D's level-0 sampling.
    Returns:
        points (N, P, 3) float, then normals (N, P, 3) if ``return_normals``, then textures (N, P, C) if
        ``return_textures`` (PyTorch3D's order). Meshes with no faces give zeros in all. If every face of
        a mesh has zero area, its faces are chosen uniformly. Colours feed ``Pointclouds(points,
        features=textures)`` directly.
    """
    if not isinstance(meshes, Meshes):
        raise TypeError(f"meshes: expected a Meshes, got {_describe(meshes)}")
    p = check_int(num_samples, "num_samples", min=1)
    if not isinstance(return_normals, bool):
        raise TypeError(f"return_normals: expected a bool, got {_describe(return_normals)}")
    if not isinstance(return_textures, bool):
        raise TypeError(f"return_textures: expected a bool, got {_describe(return_textures)}")
    if return_textures and meshes.textures is None:
        raise ValueError("meshes: expected a mesh with textures for return_textures=True, got textures=None")
    n = len(meshes)
    verts, faces = meshes.verts_packed(), meshes.faces_packed()
    points = verts.new_zeros(n, p, 3)
    normals = verts.new_zeros(n, p, 3)
    valid = meshes.valid
    face_idx = w = None
    if n and not meshes.isempty():
        num_faces = meshes.num_faces_per_mesh()
        with torch.no_grad():
            areas = packed_to_padded(meshes.faces_areas_packed().detach(), num_faces)  # (N, F), 0-padded
            areas = areas[valid]
            real = (torch.arange(areas.shape[1], device=areas.device) < num_faces[valid].unsqueeze(1))
            # All-degenerate mesh: fall back to a uniform choice among its faces (multinomial needs mass).
            weights = torch.where((areas.sum(1, keepdim=True) > 0), areas, real.to(areas.dtype))
            local = torch.multinomial(weights, p, replacement=True)  # (M, P)
            face_idx = local + meshes.mesh_to_faces_packed_first_idx()[valid].unsqueeze(1)
            r1 = torch.rand(face_idx.shape, device=verts.device, dtype=verts.dtype).sqrt()
            r2 = torch.rand(face_idx.shape, device=verts.device, dtype=verts.dtype)
            w = torch.stack([1.0 - r1, r1 * (1.0 - r2), r1 * r2], dim=-1)  # (M, P, 3)
        fv = verts[faces[face_idx]]  # (M, P, 3 corners, 3 xyz)
        sampled = (w.unsqueeze(-1) * fv).sum(-2)
        points = points.index_put((valid.nonzero().view(-1),), sampled)
        if return_normals:
            normals = normals.index_put((valid.nonzero().view(-1),), meshes.faces_normals_packed()[face_idx])
    out = (points,) + ((normals,) if return_normals else ())
    if return_textures:
        out += (_sample_textures(meshes, face_idx, w, valid, p),)
    return out if len(out) > 1 else points


def _sample_textures(meshes: Meshes, face_idx: Any, w: Any, valid: torch.Tensor, p: int) -> torch.Tensor:
    """(N, P, C) textures at the sampled points: one-pixel "fragments" (N, P, 1, 1) per point, read by the
    textures' own ``sample_textures`` (one implementation of texture sampling)."""
    from ..raster.fragments import Fragments

    tex = meshes.textures
    n = len(meshes)
    dev = meshes.device
    p2f = torch.full((n, p), -1, dtype=torch.int64, device=dev)
    bary = torch.zeros((n, p, 3), dtype=meshes.dtype, device=dev)
    if face_idx is not None:
        rows = valid.nonzero().view(-1)
        p2f[rows] = face_idx
        bary[rows] = w
    if "mipmap" in getattr(tex, "_setting_names", ()):
        # Neighbouring "pixels" here are unrelated points: a mip level from their UV differences would
        # be meaningless, so sample level 0 (PyTorch3D's behaviour).
        tex = type(tex)._from_fields(tex._fields(), {**tex._settings(), "mipmap": False})
    dummy = torch.zeros((n, p, 1, 1), dtype=meshes.dtype, device=dev)
    frags = Fragments(pix_to_face=p2f.view(n, p, 1, 1), zbuf=dummy, bary_coords=bary.view(n, p, 1, 1, 3), dists=dummy)
    return tex.sample_textures(frags, meshes)[:, :, 0, 0, :]
