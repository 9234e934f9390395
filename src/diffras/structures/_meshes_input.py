"""Validation and normalisation of the ``Meshes`` constructor inputs (lists or padded tensors) into the
packed storage: ``verts_packed`` (sum V, 3), ``faces_packed`` (sum F, 3) int64 indexing ``verts_packed``,
and the (N,) int64 vertex and face counts."""
from __future__ import annotations

from typing import Any, Dict, Sequence

import torch

from .._validation import _describe, check_finite, check_index_range, check_same_device, check_tensor
from ._packing import _default_device, first_index, segment_ids

__all__ = ["parse_lists", "parse_padded"]


def parse_padded(verts: torch.Tensor, faces: Any):
    sizes: Dict[str, int] = {}
    check_tensor(verts, "verts", shape=("N", "V", 3), dtype="float", sizes=sizes)
    if not isinstance(faces, torch.Tensor):
        raise TypeError(f"faces: expected a padded (N, F, 3) tensor like verts, got {_describe(faces)}")
    check_tensor(faces, "faces", shape=("N", None, 3), dtype="int", sizes=sizes)
    check_same_device(verts=verts, faces=faces)
    check_finite(verts, "verts")
    n, v = verts.shape[:2]
    faces = faces.to(torch.int64)
    check_index_range(faces, "faces", v, allow=(-1,))
    real = (faces >= 0).all(-1)
    if bool((~real & (faces >= 0).any(-1)).any()):
        raise ValueError("faces: expected each face row to be all valid indices or all -1 (padding), got mixed rows")
    if faces.shape[1] > 1 and bool((real[:, 1:] & ~real[:, :-1]).any()):
        raise ValueError("faces: expected -1 padding rows only at the end of each mesh, got padding before faces")
    num_faces = real.sum(1)
    num_verts = torch.full((n,), v, dtype=torch.int64, device=verts.device)
    offsets = (torch.arange(n, device=verts.device) * v).view(n, 1, 1)
    return verts.reshape(n * v, 3), (faces + offsets)[real], num_verts, num_faces


def parse_lists(verts: Sequence[torch.Tensor], faces: Any):
    if not isinstance(faces, (list, tuple)):
        raise TypeError(f"faces: expected a list of (F_i, 3) tensors like verts, got {_describe(faces)}")
    if len(faces) != len(verts):
        raise ValueError(f"faces: expected a list of length {len(verts)} (the length of verts), got {len(faces)}")
    if len(verts) == 0:
        device = _default_device()
        return (torch.empty(0, 3, device=device), torch.empty(0, 3, dtype=torch.int64, device=device),
                torch.empty(0, dtype=torch.int64, device=device), torch.empty(0, dtype=torch.int64, device=device))
    for i, (v, f) in enumerate(zip(verts, faces)):
        check_tensor(v, f"verts[{i}]", shape=(None, 3), dtype="float")
        check_tensor(f, f"faces[{i}]", shape=(None, 3), dtype="int")
        check_same_device(**{"verts[0]": verts[0], f"verts[{i}]": v, f"faces[{i}]": f})
        if v.dtype != verts[0].dtype:
            raise TypeError(f"verts[{i}]: expected dtype {verts[0].dtype} (the dtype of verts[0]), got {v.dtype}")
    device = verts[0].device
    # One mesh (the common fitting-loop case): keep the caller's tensor, no copy.
    verts_packed = verts[0] if len(verts) == 1 else torch.cat(list(verts), 0)
    check_finite(verts_packed, "verts")
    num_verts = torch.tensor([v.shape[0] for v in verts], dtype=torch.int64, device=device)
    num_faces = torch.tensor([f.shape[0] for f in faces], dtype=torch.int64, device=device)
    faces_local = faces[0].to(torch.int64) if len(faces) == 1 else torch.cat([f.to(torch.int64) for f in faces], 0)
    if len(faces) == 1:
        # Single mesh: compare with a scalar bound, and the local indices already index verts_packed.
        upper: Any = verts_packed.shape[0]
        face_mesh = None
    else:
        face_mesh = segment_ids(num_faces, faces_local.shape[0])
        upper = num_verts[face_mesh].unsqueeze(1)
    bad = (faces_local < 0) | (faces_local >= upper)
    if bool(bad.any()):
        i = 0 if face_mesh is None else int(face_mesh[bad.any(1)][0])
        fb = faces[i]
        raise ValueError(
            f"faces[{i}]: expected indices in [0, {int(num_verts[i])}) (the vertex count of verts[{i}]), "
            f"got min {int(fb.min())}, max {int(fb.max())}"
        )
    if face_mesh is None:
        return verts_packed, faces_local, num_verts, num_faces
    faces_packed = faces_local + first_index(num_verts)[face_mesh].unsqueeze(1)
    return verts_packed, faces_packed, num_verts, num_faces
