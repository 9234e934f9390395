"""Read a mesh file into plain tensors (:class:`MeshData`), through trimesh and Pillow.

No hand-written parser: trimesh reads OBJ (+MTL and its texture image), PLY, GLB/glTF, STL and OFF;
this module only reshapes what it returns into the layout the renderer uses (PyTorch3D's):
welded vertex positions, per-face UV indices, a texture image with row 0 at the top and UV origin at
the bottom-left.
"""
from __future__ import annotations

import os
import re
import warnings
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
        verts: (V, 3) float32 (or float64, see ``dtype``) vertex positions, welded (see :func:`load_mesh_data`).
        faces: (F, 3) int64 indices into ``verts``, counter-clockwise as the file gives them.
        verts_uvs: (T, 2) float32 texture coordinates, origin at the bottom-left of the image
            (OBJ / PyTorch3D), or None. Normally in [0, 1]; a file that relies on texture repeat keeps
            its values outside that range.
        faces_uvs: (F, 3) int64 indices into ``verts_uvs`` (corner ``j`` of face ``f`` has UV
            ``verts_uvs[faces_uvs[f, j]]``), or None. Separate from ``faces`` so UV seams stay exact.
        texture_image: (Ht, Wt, 3) float32 in [0, 1], row 0 the top row of the image, or None.
        verts_colors: (V, 3) float32 RGB in [0, 1] per welded vertex, or None.
        verts_normals: (V, 3) normals (the dtype of ``verts``) stored in the file, normalised (a zero normal stays zero), or
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


# An OBJ face corner whose vertex, UV or normal index is 0 ("f 0 1 2", "f 1/0 2/1 3/2"): OBJ counts from 1,
# and trimesh would silently wrap 0 to the last vertex.
_OBJ_ZERO_INDEX = re.compile(rb"^[ \t]*f[ \t][^\n]*?(?<=[ \t/])0(?=[/ \t\r\n]|$)", re.MULTILINE)


def _check_obj_indices(p: Path) -> None:
    data = p.read_bytes()
    m = _OBJ_ZERO_INDEX.search(data)
    if m is not None:
        line = data.count(b"\n", 0, m.start()) + 1
        end = data.find(b"\n", m.start())
        text = data[m.start() : end if end >= 0 else len(data)].decode("utf-8", "replace").strip()
        raise ValueError(f"'{p}': line {line}: expected face indices counted from 1 (OBJ), got 0 in {text!r}")


def _trimesh_load(p: Path):
    import trimesh  # imported lazily: it is slow to import and only I/O needs it

    from ._resources import ContainedResolver, warn_resource_problems

    if p.stat().st_size == 0:
        raise ValueError(f"'{p}': the file is empty")
    if p.suffix.lower() == ".obj":
        _check_obj_indices(p)
    resolver = ContainedResolver(str(p.resolve()))
    try:
        # process=False: no merging, reordering or dropping beyond what the format reader does,
        # so welding below is the only change to the file's geometry.
        loaded = trimesh.load(str(p), process=False, resolver=resolver)
    except Exception as e:  # trimesh raises anything from IndexError to KeyError on bad files
        refused = [name for status, name, _ in resolver.log if status == "outside"]
        if refused:
            raise ValueError(f"'{p}': refused '{refused[0]}', which resolves outside the mesh's folder") from e
        # An IndexError from a reader almost always means an index (face, UV, normal) past its list.
        hint = "an index (face, UV or normal) points outside its list? " if isinstance(e, IndexError) else ""
        raise ValueError(
            f"'{p}': could not read the file as {p.suffix.lower()} ({hint}{type(e).__name__}: {e})"
        ) from e
    warn_resource_problems(p, resolver.log)
    return loaded


def _parts(loaded, p: Path):
    import trimesh

    image_cache = {}
    if isinstance(loaded, trimesh.Trimesh):
        return [part_from_trimesh(loaded, None, image_cache)] if len(loaded.faces) > 0 else []
    if isinstance(loaded, trimesh.Scene):
        parts = []
        for node in loaded.graph.nodes_geometry:
            transform, name = loaded.graph[node]
            geom = loaded.geometry.get(name)
            if isinstance(geom, trimesh.Trimesh) and len(geom.faces) > 0:
                parts.append(part_from_trimesh(geom, np.asarray(transform, dtype=np.float64), image_cache))
        return parts
    return []  # a point cloud or a path: no triangles


def _check_dtype(dtype) -> torch.dtype:
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"dtype: expected torch.float32 or torch.float64, got {dtype!r}")
    return dtype


def _warn_precision(p: Path, verts: np.ndarray) -> None:
    """Warn when float32 moves a vertex by more than a relative 1e-6 of the bounding box's diagonal."""
    if len(verts) == 0:
        return
    diag = float(np.linalg.norm(verts.max(axis=0) - verts.min(axis=0)))
    err = float(np.abs(verts.astype(np.float32).astype(np.float64) - verts).max())
    if err > 1e-6 * max(diag, np.finfo(np.float64).tiny):
        warnings.warn(
            f"'{p}': float32 positions move vertices by up to {err:.3g}, {err / diag:.2g} of the bounding box "
            f"diagonal ({diag:.3g}): the mesh lies far from the origin for its size. Load with dtype=torch.float64 "
            "and centre it (diffras.ops.normalize_to_unit_sphere) before converting to float32",
            UserWarning, stacklevel=3)


def load_mesh_data(path: PathLike, *, dtype: torch.dtype = torch.float32) -> MeshData:
    """Read one mesh file into a :class:`MeshData` of CPU tensors.

    Formats: OBJ (with its MTL and the ``map_Kd`` texture image), PLY (per-vertex ``red green blue``
    colours; other properties ignored), GLB/glTF, STL, OFF. Scenes (glTF, an OBJ with several
    materials) are flattened: node transforms are applied (a mirroring transform flips the winding
    back) and every instance is merged into one mesh. If the instances use several texture images, or
    mix textured and plain-coloured materials, the images are shelf-packed into one roughly square
    atlas (plain colours become uniform swatches) and the UVs remapped for an ``align_corners=True`` sampler.

    Welding: trimesh splits a vertex wherever its UV (or normal) differs between faces; the Spot cow
    comes back as 3,225 vertices for 2,930 positions. Here vertices with bit-identical positions in the
    file's precision (float64 as parsed, before any cast to float32) are merged back (in order of first appearance, so an OBJ's ``v`` order is kept),
    ``faces`` index the welded positions and ``faces_uvs`` the UV list. This also merges duplicate positions the file
    itself contains (STL triangle soups become connected meshes; ``teapot.obj``'s 403 duplicates go).
    Where merged copies disagree, vertex colours and normals are averaged (normals renormalised).
    trimesh drops vertices no face uses (OBJ), so those are absent.

    Colours and textures are RGB: alpha channels are dropped, as in PyTorch3D's loaders. Per-face
    colours are ignored. glTF ``baseColorFactor`` multiplies the base colour texture.

    Precision: ``verts`` are cast to ``dtype`` after welding, so a mesh far from the origin keeps all its
    vertices and faces (``cow.obj`` moved by 1e6 keeps its 2,930 vertices). float32 cannot hold such a
    mesh's shape: a ``UserWarning`` says so when the cast moves a vertex by more than 1e-6 of the bounding
    box's diagonal. Ask for ``dtype=torch.float64`` to keep the file's values.

    Resources: the MTL, texture images and glTF buffers a file names are read only from inside the
    file's folder (never ``../`` or absolute paths elsewhere, whatever trimesh allows). A texture that is
    missing, outside the folder or undecodable gives a ``UserWarning`` naming it, and the mesh loads
    without it (it renders white).

    Args:
        path: the file (str or ``os.PathLike``).
        dtype: ``torch.float32`` (default) or ``torch.float64`` for ``verts`` (and ``verts_normals``).

    Returns:
        MeshData with ``verts`` (V, 3) of ``dtype``, ``faces`` (F, 3) int64, and the optional fields.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: unknown extension, empty or unreadable file, no faces (e.g. an OBJ whose only face line
            is ``f 1 2``, a PLY whose header promises more vertices than its body holds), an OBJ face
            index 0, face indices outside the vertex list, non-finite vertex positions, a glTF buffer
            outside the file's folder. Messages name the path; trimesh's own error is chained as the cause.
        TypeError: ``path`` is not a str or path, ``dtype`` not a float dtype.
    """
    p = _check_path(path)
    dtype = _check_dtype(dtype)
    loaded = _trimesh_load(p)
    parts = _parts(loaded, p)
    if not parts:
        raise ValueError(f"'{p}': expected a triangle mesh, got no faces (check the face lines, and that the "
                         "header's element counts match the body)")
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

    # Weld in the file's precision (float64 as parsed): welding after a float32 cast would merge distinct
    # vertices of a mesh far from the origin and make its faces degenerate.
    welded, to_welded = weld(np.asarray(split_verts, dtype=np.float64))
    faces = to_welded[split_faces]
    if dtype == torch.float32:
        _warn_precision(p, welded)
    np_dtype = np.float32 if dtype == torch.float32 else np.float64
    out = MeshData(
        verts=torch.from_numpy(welded.astype(np_dtype)),
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
        out.verts_normals = torch.from_numpy(n.astype(np_dtype))
    return out


def _average_rows(values: np.ndarray, index: np.ndarray, size: int) -> np.ndarray:
    """Mean of ``values`` rows grouped by ``index`` (every group non-empty)."""
    total = np.stack([np.bincount(index, weights=values[:, c], minlength=size) for c in range(values.shape[1])], 1)
    count = np.bincount(index, minlength=size).astype(np.float64)
    return total / np.maximum(count, 1.0)[:, None]
