"""PyTorch3D's file functions: ``load_obj``, ``load_objs_as_meshes``, ``save_obj``, ``load_ply``, ``save_ply``, ``IO``.

Thin adapters over the same trimesh-based readers as :func:`diffras.io.load_mesh` (and its safety checks:
resources stay inside the mesh's folder), returning PyTorch3D's types. Unlike ``load_mesh``, nothing is
welded: ``verts`` are the file's vertex records in file order (OBJ ``v`` lines, PLY vertex elements), so
vertex counts equal the file's, and OBJ UVs keep their own per-face indices (``textures_idx``).

Differences from PyTorch3D that remain (docs/conventions.md): OBJ vertex normals (``vn``) are not returned
(``aux.normals`` is None and ``faces.normals_idx`` is -1, as PyTorch3D does for a file without normals);
vertices no face uses are dropped by the reader; ``create_texture_atlas`` is not supported; an OBJ with several
materials gets one packed texture image (one material entry) as diffras's loader makes it.
"""
from __future__ import annotations

import os
from collections import namedtuple
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import torch

from .._validation import _describe
from .mesh_data import _check_path, load_mesh_data

__all__ = ["IO", "load_obj", "load_objs_as_meshes", "load_ply", "save_obj", "save_ply"]

PathLike = Union[str, os.PathLike]

#: ``load_obj``'s second result (PyTorch3D's field names).
Faces = namedtuple("Faces", "verts_idx normals_idx textures_idx materials_idx")
#: ``load_obj``'s third result (PyTorch3D's field names).
Properties = namedtuple("Properties", "normals verts_uvs material_colors texture_images texture_atlas")


def _file_order(p: Path):
    """(V, 3) float vertices in file order and (F, 3) int64 faces indexing them (no welding, no materials)."""
    import trimesh

    try:
        mesh = trimesh.load(str(p), process=False, maintain_order=True, force="mesh", skip_materials=True)
    except Exception as e:  # trimesh raises many types on bad files
        raise ValueError(f"'{p}': could not read the file ({type(e).__name__}: {e})") from e
    return np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces, dtype=np.int64)


def _material_props(p: Path) -> Dict[str, Dict[str, torch.Tensor]]:
    """PyTorch3D's ``material_colors``: {name: {ambient_color (1, 3), diffuse_color, specular_color, shininess (1,)}}.

    Read with trimesh's MTL parser from the ``mtllib`` files the OBJ names, only inside the OBJ's folder;
    comments are stripped first (trimesh reads ``Ka 1 1 1  # white`` as no colour at all)."""
    from trimesh.exchange.obj import parse_mtl

    folder = p.parent.resolve()
    out: Dict[str, Dict[str, torch.Tensor]] = {}
    with open(p, "r", errors="replace") as fh:
        libs = [line.split(None, 1)[1].strip() for line in fh if line.startswith("mtllib") and len(line.split()) > 1]
    for lib in libs:
        mtl = (p.parent / lib).resolve()
        if folder not in mtl.parents or not mtl.is_file():
            continue  # outside the mesh's folder or missing: the main loader has already warned or refused
        text = "\n".join(line.split("#", 1)[0] for line in mtl.read_text(errors="replace").splitlines())
        for name, props in parse_mtl(text).items():
            colors = {}
            for key, field in (("ka", "ambient_color"), ("kd", "diffuse_color"), ("ks", "specular_color")):
                if key in props:
                    colors[field] = torch.tensor(np.asarray(props[key], dtype=np.float64)[:3], dtype=torch.float32)[None]
            if "ns" in props:
                colors["shininess"] = torch.tensor([float(np.asarray(props["ns"]).reshape(-1)[0])])
            out[str(name)] = colors
    return out


def load_obj(f: PathLike, load_textures: bool = True, create_texture_atlas: bool = False, texture_atlas_size: int = 4,
             texture_wrap: Optional[str] = "repeat", device: Any = "cpu", path_manager: Any = None):
    """Read an OBJ as PyTorch3D's ``load_obj``: ``(verts, faces, aux)``.

    Returns:
        - ``verts``: (V, 3) float32, the file's ``v`` records in order.
        - ``faces``: ``Faces(verts_idx (F, 3) int64, normals_idx (F, 3) all -1, textures_idx (F, 3) int64 into
          ``aux.verts_uvs`` (-1 without UVs), materials_idx (F,) int64: 0 with a material, -1 without)``.
          Polygons are triangulated as a fan (PyTorch3D's order).
        - ``aux``: ``Properties(normals None, verts_uvs (T, 2) float32 or None, material_colors dict,
          texture_images {material name: (H, W, 3) float32 in [0, 1]}, texture_atlas None)``.
    """
    if create_texture_atlas:
        raise ValueError("create_texture_atlas: not supported by diffras; load with TexturesUV (the default) instead")
    p = _check_path(f)
    if p.suffix.lower() != ".obj":
        raise ValueError(f"f: expected an .obj file, got '{p}'")
    verts, faces = _file_order(p)
    data = load_mesh_data(p)
    dev = torch.device(device)
    F = faces.shape[0]
    textures_idx = torch.full((F, 3), -1, dtype=torch.int64)
    materials_idx = torch.full((F,), -1, dtype=torch.int64)
    verts_uvs, material_colors, texture_images = None, {}, {}
    if load_textures and data.verts_uvs is not None:
        # Both readers see the same face records; check it before pairing them row by row.
        same = (data.faces.shape[0] == F and np.array_equal(
            data.verts.numpy()[data.faces.numpy()], verts.astype(np.float32)[faces]))
        if not same:
            raise ValueError(f"'{p}': its faces are regrouped by material when read, so per-face UV indices "
                             f"cannot be matched to the file's order; use diffras.io.load_mesh instead")
        textures_idx = data.faces_uvs.clone()
        verts_uvs = data.verts_uvs.to(dev)
        material_colors = _material_props(p)
        name = next(iter(material_colors), "material_0")
        if data.texture_image is not None:
            texture_images = {name: data.texture_image.to(dev)}
        materials_idx = torch.zeros(F, dtype=torch.int64)
    faces_t = Faces(torch.from_numpy(faces).to(dev), torch.full((F, 3), -1, dtype=torch.int64, device=dev),
                    textures_idx.to(dev), materials_idx.to(dev))
    aux = Properties(None, verts_uvs, material_colors, texture_images, None)
    return torch.from_numpy(verts.astype(np.float32)).to(dev), faces_t, aux


def load_objs_as_meshes(files: Sequence[PathLike], device: Any = None, load_textures: bool = True,
                        create_texture_atlas: bool = False, texture_atlas_size: int = 4,
                        texture_wrap: Optional[str] = "repeat", path_manager: Any = None, *,
                        texture_mipmap: Union[None, bool, str] = None):
    """A ``Meshes`` of one mesh per OBJ file (PyTorch3D's ``load_objs_as_meshes``), vertices in file order,
    with ``TexturesUV(..., mipmap=texture_mipmap)`` when every file has a texture image and UVs (else no
    textures). ``texture_mipmap=False`` samples level 0 only, as PyTorch3D; the default (None) is diffras's
    "auto" mip-mapping."""
    from ..structures import Meshes
    from ..shading import TexturesUV

    if isinstance(files, (str, os.PathLike)):
        raise TypeError(f"files: expected a list of paths, got a single path {str(files)!r} (wrap it in a list)")
    dev = torch.device("cpu" if device is None else device)
    verts, faces, maps, faces_uvs, verts_uvs = [], [], [], [], []
    for f in files:
        v, fc, aux = load_obj(f, load_textures=load_textures, device=dev)
        verts.append(v)
        faces.append(fc.verts_idx)
        if aux.texture_images and aux.verts_uvs is not None:
            maps.append(next(iter(aux.texture_images.values())))
            faces_uvs.append(fc.textures_idx)
            verts_uvs.append(aux.verts_uvs)
    textures = None
    if load_textures and maps and len(maps) == len(verts):
        textures = TexturesUV(maps=maps, faces_uvs=faces_uvs, verts_uvs=verts_uvs, mipmap=texture_mipmap)
    return Meshes(verts=verts, faces=faces, textures=textures)


def _np(x: Optional[torch.Tensor], name: str, cols: int, dtype) -> Optional[np.ndarray]:
    if x is None:
        return None
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a tensor, got {_describe(x)}")
    if x.dim() != 2 or x.shape[1] != cols:
        raise ValueError(f"{name}: expected shape (*, {cols}), got {tuple(x.shape)}")
    return x.detach().cpu().numpy().astype(dtype)


def save_obj(f: PathLike, verts: torch.Tensor, faces: torch.Tensor, decimal_places: Optional[int] = None,
             path_manager: Any = None, *, normals: Optional[torch.Tensor] = None,
             faces_normals_idx: Optional[torch.Tensor] = None, verts_uvs: Optional[torch.Tensor] = None,
             faces_uvs: Optional[torch.Tensor] = None, texture_map: Optional[torch.Tensor] = None) -> None:
    """Write ``verts`` (V, 3) and ``faces`` (F, 3) (and with ``verts_uvs`` (T, 2), ``faces_uvs`` (F, 3) and
    ``texture_map`` (H, W, 3), a textured OBJ + MTL + PNG) as PyTorch3D's ``save_obj``, through the same writer
    as :func:`diffras.io.save_mesh`. ``normals`` are not written (see the module docstring)."""
    from ..shading import TexturesUV
    from ..structures import Meshes
    from .save import save_mesh

    v = _np(verts, "verts", 3, np.float32)
    fc = _np(faces, "faces", 3, np.int64)
    textures = None
    if texture_map is not None or verts_uvs is not None or faces_uvs is not None:
        if texture_map is None or verts_uvs is None or faces_uvs is None:
            raise ValueError("verts_uvs, faces_uvs, texture_map: expected all three (a textured OBJ) or none")
        textures = TexturesUV(maps=[texture_map.detach().cpu().float()], faces_uvs=[faces_uvs.detach().cpu()],
                              verts_uvs=[verts_uvs.detach().cpu().float()])
    save_mesh(f, Meshes([torch.from_numpy(v)], [torch.from_numpy(fc)], textures=textures))


def load_ply(f: PathLike, *, path_manager: Any = None):
    """``(verts (V, 3) float32, faces (F, 3) int64)`` of a PLY file in file order (PyTorch3D's ``load_ply``)."""
    p = _check_path(f)
    if p.suffix.lower() != ".ply":
        raise ValueError(f"f: expected a .ply file, got '{p}'")
    verts, faces = _file_order(p)
    return torch.from_numpy(verts.astype(np.float32)), torch.from_numpy(faces)


def save_ply(f: PathLike, verts: torch.Tensor, faces: Optional[torch.Tensor] = None,
             verts_normals: Optional[torch.Tensor] = None, ascii: bool = False, decimal_places: Optional[int] = None,
             path_manager: Any = None, *, colors: Optional[torch.Tensor] = None) -> None:
    """Write a PLY of ``verts`` (V, 3), optional ``faces`` (F, 3), ``verts_normals`` (V, 3) and ``colors``
    (V, 3) in [0, 1] (PyTorch3D's ``save_ply``), through trimesh."""
    import trimesh
    from trimesh.exchange.ply import export_ply

    v = _np(verts, "verts", 3, np.float64)
    fc = _np(faces, "faces", 3, np.int64) if faces is not None else np.zeros((0, 3), np.int64)
    n = _np(verts_normals, "verts_normals", 3, np.float64)
    c = _np(colors, "colors", 3, np.float64)
    if c is not None:
        c = (np.clip(c, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    for name, arr in (("verts_normals", n), ("colors", c)):
        if arr is not None and arr.shape[0] != v.shape[0]:
            raise ValueError(f"{name}: expected {v.shape[0]} rows (one per vertex), got {arr.shape[0]}")
    mesh = trimesh.Trimesh(vertices=v, faces=fc, vertex_normals=n, vertex_colors=c, process=False)
    Path(f).write_bytes(export_ply(mesh, encoding="ascii" if ascii else "binary",
                                   vertex_normal=verts_normals is not None, include_attributes=False))


class IO:
    """PyTorch3D's ``IO`` front end: ``IO().load_mesh(path, device=None, include_textures=True)`` and
    ``IO().save_mesh(meshes, path, include_textures=True)`` for OBJ and PLY (file order, no welding)."""

    def __init__(self, include_default_formats: bool = True, path_manager: Any = None) -> None:
        pass

    def load_mesh(self, path: PathLike, include_textures: bool = True, device: Any = "cpu", **kwargs: Any):
        from ..structures import Meshes

        p = _check_path(path)
        if p.suffix.lower() == ".obj":
            return load_objs_as_meshes([p], device=device, load_textures=include_textures)
        verts, faces = load_ply(p) if p.suffix.lower() == ".ply" else (None, None)
        if verts is None:
            raise ValueError(f"path: expected an .obj or .ply file, got '{p}'")
        return Meshes([verts.to(device)], [faces.to(device)])

    def save_mesh(self, data: Any, path: PathLike, include_textures: bool = True, **kwargs: Any) -> None:
        from .save import save_mesh

        save_mesh(path, data, include_textures=include_textures)
