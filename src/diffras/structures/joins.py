"""Joining several ``Meshes``: into one bigger batch, or into a single scene mesh."""
from __future__ import annotations

from typing import Sequence, Union

import torch

from .._validation import _describe
from .meshes import Meshes

__all__ = ["join_meshes_as_batch", "join_meshes_as_scene"]


def join_meshes_as_batch(meshes: Sequence[Meshes], include_textures: bool = True) -> Meshes:
    """Concatenate batches: the result holds the meshes of ``meshes[0]``, then of ``meshes[1]``, ...

    Args:
        meshes: a non-empty list of ``Meshes`` on one device with one vertex dtype. Either all or none carry
            textures; textures are joined with ``meshes[0].textures.join_batch([...the others])``.
        include_textures: if False, the result has no textures (and a mix is allowed).
    Returns:
        ``Meshes`` of batch size ``sum(len(m))``. Differentiable with respect to every input's vertices.
    """
    if isinstance(meshes, Meshes):
        raise TypeError("meshes: expected a list of Meshes, got a Meshes (it is already a batch)")
    if not isinstance(meshes, (list, tuple)) or len(meshes) == 0:
        raise TypeError(f"meshes: expected a non-empty list of Meshes, got {_describe(meshes)}")
    for i, m in enumerate(meshes):
        if not isinstance(m, Meshes):
            raise TypeError(f"meshes[{i}]: expected a Meshes, got {_describe(m)}")
        if m.device != meshes[0].device:
            raise ValueError(f"meshes[{i}]: expected device {meshes[0].device} (the device of meshes[0]), got {m.device}")
        if m.dtype != meshes[0].dtype:
            raise TypeError(f"meshes[{i}]: expected dtype {meshes[0].dtype} (the dtype of meshes[0]), got {m.dtype}")
    if not isinstance(include_textures, bool):
        raise TypeError(f"include_textures: expected a bool, got {_describe(include_textures)}")
    has_tex = [include_textures and m.textures is not None for m in meshes]
    if any(has_tex) and not all(has_tex):
        raise ValueError("meshes: expected all or none of the Meshes to have textures, got a mix")
    offsets = [0]
    for m in meshes[:-1]:
        offsets.append(offsets[-1] + m.verts_packed().shape[0])
    verts = torch.cat([m.verts_packed() for m in meshes], 0)
    faces = torch.cat([m.faces_packed() + off for m, off in zip(meshes, offsets)], 0)
    nv = torch.cat([m.num_verts_per_mesh() for m in meshes], 0)
    nf = torch.cat([m.num_faces_per_mesh() for m in meshes], 0)
    tex = meshes[0].textures.join_batch([m.textures for m in meshes[1:]]) if all(has_tex) else None
    return Meshes._from_packed(verts, faces, nv, nf, textures=tex)


def join_meshes_as_scene(meshes: Union[Meshes, Sequence[Meshes]], include_textures: bool = True) -> Meshes:
    """Merge every mesh of a batch (or of a list of batches) into one mesh: a ``Meshes`` of batch size 1
    whose vertices are ``verts_packed()`` and faces ``faces_packed()`` of the (joined) batch.

    Textures, if present and ``include_textures``, become ``textures.join_scene()``; otherwise None.
    """
    if not isinstance(include_textures, bool):
        raise TypeError(f"include_textures: expected a bool, got {_describe(include_textures)}")
    if isinstance(meshes, (list, tuple)):
        meshes = join_meshes_as_batch(meshes, include_textures=include_textures)
    if not isinstance(meshes, Meshes):
        raise TypeError(f"meshes: expected a Meshes or a list of Meshes, got {_describe(meshes)}")
    verts, faces = meshes.verts_packed(), meshes.faces_packed()
    dev = verts.device
    nv = torch.tensor([verts.shape[0]], dtype=torch.int64, device=dev)
    nf = torch.tensor([faces.shape[0]], dtype=torch.int64, device=dev)
    tex = meshes.textures.join_scene() if (include_textures and meshes.textures is not None) else None
    return Meshes._from_packed(verts, faces, nv, nf, textures=tex)
