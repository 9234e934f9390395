"""Read a mesh file into plain tensors (:class:`MeshData`), through trimesh and Pillow.

No hand-written parser: trimesh reads OBJ (+MTL and its texture image), PLY, GLB/glTF, STL and OFF;
this module only reshapes what it returns into the layout the renderer uses (PyTorch3D's):
welded vertex positions, per-face UV indices, a texture image with row 0 at the top and UV origin at
the bottom-left.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch

from ._scene import merge_parts, part_from_trimesh, weld

__all__ = ["MeshData", "load_mesh_data", "SUPPORTED_LOAD_FORMATS"]

PathLike = Union[str, os.PathLike]

SUPPORTED_LOAD_FORMATS = (".obj", ".ply", ".glb", ".gltf", ".stl", ".off")


@dataclass
class MeshData:
    """One mesh as plain CPU tensors (shape symbols from ``docs/conventions.md``).

    Attributes:
        verts: (V, 3) float32 vertex positions, welded (see :func:`load_mesh_data`).
        faces: (F, 3) int64 indices into ``verts``, counter-clockwise as the file gives them.
        verts_uvs: (T, 2) float32 texture coordinates, origin at the bottom-left of the image
            (OBJ / PyTorch3D), or None. Normally in [0, 1]; a file that relies on texture repeat keeps
            its values outside that range.
        faces_uvs: (F, 3) int64 indices into ``verts_uvs`` (corner ``j`` of face ``f`` has UV
            ``verts_uvs[faces_uvs[f, j]]``), or None. Separate from ``faces`` so UV seams stay exact.
        texture_image: (Ht, Wt, 3) float32 in [0, 1], row 0 the top row of the image, or None.
        verts_colors: (V, 3) float32 RGB in [0, 1] per welded vertex, or None.
        verts_normals: (V, 3) float32 normals stored in the file, normalised (a zero normal stays zero), or
            None (never computed here).
    """

    verts: torch.Tensor
    faces: torch.Tensor
    verts_uvs: Optional[torch.Tensor] = None
    faces_uvs: Optional[torch.Tensor] = None
    texture_image: Optional[torch.Tensor] = None
    verts_colors: Optional[torch.Tensor] = None
    verts_normals: Optional[torch.Tensor] = None

    def __repr__(self) -> str:
        # Shapes, not values: the default dataclass repr would print every vertex.
        items = ", ".join(f"{f.name}={None if getattr(self, f.name) is None else tuple(getattr(self, f.name).shape)}"
                          for f in fields(self))
        return f"MeshData({items})"

    def to(self, device) -> "MeshData":
        """Return a copy with every tensor on ``device``."""
        return MeshData(**{f.name: (None if getattr(self, f.name) is None else getattr(self, f.name).to(device))
                           for f in fields(self)})


def _check_path(path) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a str or os.PathLike, got {type(path).__name__} {path!r}")
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"path: no such file: '{p}'")
    if not p.is_file():
        raise ValueError(f"path: expected a file, got a directory or special file: '{p}'")
    suffix = p.suffix.lower()
    if suffix not in SUPPORTED_LOAD_FORMATS:
        raise ValueError(
            f"path: expected a file ending in one of {list(SUPPORTED_LOAD_FORMATS)}, got '{p}' "
            f"(extension '{suffix or '<none>'}')"
        )
    return p


def _trimesh_load(p: Path):
    import trimesh  # imported lazily: it is slow to import and only I/O needs it

    if p.stat().st_size == 0:
        raise ValueError(f"'{p}': the file is empty")
    try:
        # process=False: no merging, reordering or dropping beyond what the format reader does,
        # so welding below is the only change to the file's geometry.
        return trimesh.load(str(p), process=False)
    except Exception as e:  # trimesh raises anything from IndexError to KeyError on bad files
        # An IndexError from a reader almost always means an index (face, UV, normal) past its list.
        hint = "an index (face, UV or normal) points outside its list? " if isinstance(e, IndexError) else ""
        raise ValueError(
            f"'{p}': could not read the file as {p.suffix.lower()} ({hint}{type(e).__name__}: {e})"
        ) from e


def _parts(loaded, p: Path):
    import trimesh

    image_cache = {}
    if isinstance(loaded, trimesh.Trimesh):
        return [part_from_trimesh(loaded, None, image_cache)]
    if isinstance(loaded, trimesh.Scene):
        parts = []
        for node in loaded.graph.nodes_geometry:
            transform, name = loaded.graph[node]
            geom = loaded.geometry.get(name)
            if isinstance(geom, trimesh.Trimesh) and len(geom.faces) > 0:
                parts.append(part_from_trimesh(geom, np.asarray(transform, dtype=np.float64), image_cache))
        return parts
    return []  # a point cloud or a path: no triangles


def load_mesh_data(path: PathLike) -> MeshData:
    """Read one mesh file into a :class:`MeshData` of CPU tensors.

    Formats: OBJ (with its MTL and the ``map_Kd`` texture image), PLY (per-vertex ``red green blue``
    colours; other properties ignored), GLB/glTF, STL, OFF. Scenes (glTF, an OBJ with several
    materials) are flattened: node transforms are applied (a mirroring transform flips the winding
    back) and every instance is merged into one mesh. If the instances use several texture images, or
    mix textured and plain-coloured materials, the images are shelf-packed into one roughly square
    atlas (plain colours become uniform swatches) and the UVs remapped for an ``align_corners=True`` sampler.

    Welding: trimesh splits a vertex wherever its UV (or normal) differs between faces; the Spot cow
    comes back as 3,225 vertices for 2,930 positions. Here vertices with bit-identical float32
    positions are merged back (in order of first appearance, so an OBJ's ``v`` order is kept),
    ``faces`` index the welded positions and ``faces_uvs`` the UV list. This also merges duplicate positions the file
    itself contains (STL triangle soups become connected meshes; ``teapot.obj``'s 403 duplicates go).
    Where merged copies disagree, vertex colours and normals are averaged (normals renormalised).
    trimesh drops vertices no face uses (OBJ), so those are absent.

    Colours and textures are RGB: alpha channels are dropped, as in PyTorch3D's loaders. Per-face
    colours are ignored. glTF ``baseColorFactor`` multiplies the base colour texture.

    Args:
        path: the file (str or ``os.PathLike``).

    Returns:
        MeshData with ``verts`` (V, 3) float32, ``faces`` (F, 3) int64, and the optional fields.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: unknown extension, empty or unreadable file, no faces, face indices outside the
            vertex list, non-finite vertex positions. Messages name the path; trimesh's own error is
            chained as the cause.
        TypeError: ``path`` is not a str or path.
    """
    p = _check_path(path)
    loaded = _trimesh_load(p)
    parts = _parts(loaded, p)
    if not parts:
        raise ValueError(f"'{p}': expected a triangle mesh, got no faces")
    for part in parts:
        nv = len(part.vertices)
        if part.faces.size and (part.faces.min() < 0 or part.faces.max() >= nv):
            bad = int(((part.faces < 0) | (part.faces >= nv)).any(axis=1).sum())
            raise ValueError(
                f"'{p}': expected face indices in [0, {nv}), got {bad} faces pointing outside the vertex list"
            )
        if not np.isfinite(part.vertices).all():
            bad = int((~np.isfinite(part.vertices)).any(axis=1).sum())
            raise ValueError(f"'{p}': expected finite vertex positions, got {bad} vertices with NaN/inf")
    split_verts, split_faces, uv, image, vcolors, normals = merge_parts(parts)

    # Weld the float32 values MeshData stores, so no two output vertices share a position.
    welded, to_welded = weld(split_verts.astype(np.float32))
    faces = to_welded[split_faces]
    out = MeshData(
        verts=torch.from_numpy(welded.astype(np.float32)),
        faces=torch.from_numpy(faces.astype(np.int64)),
    )
    if uv is not None:
        # UVs are welded too (exactly equal pairs), so T matches the file's distinct ``vt`` entries.
        verts_uvs, to_uv = weld(uv)
        out.verts_uvs = torch.from_numpy(verts_uvs.astype(np.float32))
        out.faces_uvs = torch.from_numpy(to_uv[split_faces].astype(np.int64))
    if image is not None:
        out.texture_image = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))
    if vcolors is not None:
        out.verts_colors = torch.from_numpy(_average_rows(vcolors, to_welded, len(welded)).astype(np.float32))
    if normals is not None:
        n = _average_rows(normals, to_welded, len(welded))
        n = n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
        out.verts_normals = torch.from_numpy(n.astype(np.float32))
    return out


def _average_rows(values: np.ndarray, index: np.ndarray, size: int) -> np.ndarray:
    """Mean of ``values`` rows grouped by ``index`` (every group non-empty)."""
    total = np.stack([np.bincount(index, weights=values[:, c], minlength=size) for c in range(values.shape[1])], 1)
    count = np.bincount(index, minlength=size).astype(np.float64)
    return total / np.maximum(count, 1.0)[:, None]
