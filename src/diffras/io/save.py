"""Write one mesh of a :class:`~diffras.structures.Meshes` to OBJ (+MTL+PNG) or PLY, through trimesh and Pillow."""
from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._validation import _describe
from .mesh_data import PathLike

if TYPE_CHECKING:
    from ..structures import Meshes

__all__ = ["save_mesh", "SUPPORTED_SAVE_FORMATS"]

SUPPORTED_SAVE_FORMATS = (".obj", ".ply")

# Decimals written per coordinate in OBJ text (fixed point): float32 positions of magnitude >= 1e-2
# come back to within one ulp.
_OBJ_DIGITS = 9


def _check_save_path(path: Any) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a str or os.PathLike, got {_describe(path)}")
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in SUPPORTED_SAVE_FORMATS:
        raise ValueError(
            f"path: expected a file ending in one of {list(SUPPORTED_SAVE_FORMATS)}, got '{p}' "
            f"(extension '{suffix or '<none>'}')"
        )
    if not p.parent.is_dir():
        raise FileNotFoundError(f"path: the folder to write into does not exist: '{p.parent}'")
    return p


def _to_uint8(x: np.ndarray) -> np.ndarray:
    # Clamp then round: colours are stored as 8-bit, so a loaded k/255 value survives a round trip exactly.
    return np.round(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


def _image_from_map(tex_map: np.ndarray, path: Path):
    from PIL import Image

    channels = tex_map.shape[-1]
    if channels not in (1, 3, 4):
        raise ValueError(f"meshes.textures: expected a texture map with 1, 3 or 4 channels to write as PNG "
                         f"next to '{path}', got {channels}")
    pixels = _to_uint8(tex_map)
    return Image.fromarray(pixels[..., 0] if channels == 1 else pixels)


def _vertex_rgba(colors: np.ndarray, path: Path) -> np.ndarray:
    if colors.shape[-1] not in (1, 3, 4):
        raise ValueError(f"meshes.textures: expected vertex features with 1 (grey), 3 (RGB) or 4 (RGBA) "
                         f"channels to write as colours in '{path}', got {colors.shape[-1]}")
    if colors.shape[-1] == 1:
        colors = np.repeat(colors, 3, axis=1)
    rgba = _to_uint8(colors)
    if rgba.shape[1] == 3:
        rgba = np.concatenate([rgba, np.full((len(rgba), 1), 255, np.uint8)], axis=1)
    return rgba


def save_mesh(path: PathLike, meshes: "Meshes", *, include_textures: bool = True) -> None:
    """Write the one mesh of ``meshes`` to ``path`` (format from the extension: ``.obj`` or ``.ply``).

    - OBJ: positions, faces, and with a ``TexturesUV`` its UVs (``vt``), an MTL file ``<stem>.mtl`` and
      the map as ``<stem>.png`` beside the OBJ (whitespace in ``<stem>`` becomes ``_``; existing files of
      those names are overwritten).
      With a ``TexturesVertex`` of 1/3/4 channels the colours go on the ``v`` lines (``v x y z r g b``).
      Coordinates are written with 9 decimals.
    - PLY (binary, float32 positions): positions, faces, and ``red green blue alpha`` uchar vertex
      colours with a ``TexturesVertex``.

    Colours and texture pixels are clamped to [0, 1] and stored with 8 bits. Textures the format
    cannot hold (a ``TexturesUV`` in PLY, a ``TexturesAtlas``) are left out with a ``UserWarning``.
    Vertices no face uses are written to PLY, but an OBJ with UVs only writes referenced vertices,
    and trimesh drops unreferenced OBJ vertices when reading, so those do not round-trip.

    Args:
        path: the output file (str or ``os.PathLike``); its folder must exist.
        meshes: a ``Meshes`` holding exactly one mesh (index a batch, ``meshes[i]``, to pick one).
        include_textures: if False, write geometry only.

    Raises:
        TypeError: ``meshes`` is not a ``Meshes``, or ``path`` not a path.
        ValueError: a batch of more than one mesh, an unsupported extension, texture channels that
            cannot be written.
        FileNotFoundError: the folder of ``path`` does not exist.
    """
    from ..structures import Meshes

    p = _check_save_path(path)
    if not isinstance(meshes, Meshes):
        raise TypeError(f"meshes: expected a Meshes, got {_describe(meshes)}")
    if len(meshes) != 1:
        raise ValueError(f"meshes: expected a Meshes holding one mesh (index a batch, e.g. meshes[i]), "
                         f"got a batch of {len(meshes)}")
    if not isinstance(include_textures, bool):
        raise TypeError(f"include_textures: expected a bool, got {_describe(include_textures)}")
    verts = meshes.verts_list()[0].detach().cpu().double().numpy()
    faces = meshes.faces_list()[0].detach().cpu().numpy().astype(np.int64)
    textures = meshes.textures if include_textures else None
    kind = type(textures).__name__ if textures is not None else None
    if p.suffix.lower() == ".obj":
        _save_obj(p, verts, faces, textures, kind)
    else:
        _save_ply(p, verts, faces, textures, kind)


def _warn_dropped(kind: str, p: Path) -> None:
    warnings.warn(f"save_mesh: {kind} cannot be stored in '{p.name}'; writing geometry only", UserWarning,
                  stacklevel=3)


def _save_obj(p: Path, verts, faces, textures, kind) -> None:
    import trimesh
    from trimesh.exchange.obj import export_obj

    if kind == "TexturesUV":
        uvs = textures.verts_uvs_list()[0].detach().cpu().double().numpy()
        faces_uvs = textures.faces_uvs_list()[0].detach().cpu().numpy().astype(np.int64)
        tex_map = textures.maps_list()[0].detach().cpu().float().numpy()
        # OBJ indexes v and vt separately but trimesh holds one UV per vertex: split each vertex once
        # per distinct UV it meets. Sorting the (v, vt) pairs by v keeps the first copy of every
        # position in the original order, so loading (which welds positions back) restores it.
        pairs = np.stack([faces.reshape(-1), faces_uvs.reshape(-1)], axis=1)
        uniq, inverse = np.unique(pairs, axis=0, return_inverse=True)
        # MTL and OBJ statements split on whitespace, so the side files get a name without any.
        stem = re.sub(r"\s+", "_", p.stem)
        material = trimesh.visual.material.SimpleMaterial(
            image=_image_from_map(tex_map, p), name=stem, diffuse=[255, 255, 255, 255],
            ambient=[255, 255, 255, 255], specular=[0, 0, 0, 255])
        visual = trimesh.visual.TextureVisuals(uv=uvs[uniq[:, 1]], material=material)
        mesh = trimesh.Trimesh(vertices=verts[uniq[:, 0]], faces=inverse.reshape(-1, 3), visual=visual,
                               process=False)
        text, files = export_obj(mesh, include_normals=False, include_texture=True, return_texture=True,
                                 mtl_name=f"{stem}.mtl", digits=_OBJ_DIGITS, header=None)
        for name, blob in files.items():
            (p.parent / name).write_bytes(blob)
        p.write_text(text)
        return
    colors = None
    if kind == "TexturesVertex":
        colors = _vertex_rgba(textures.verts_features_list()[0].detach().cpu().double().numpy(), p)
    elif kind is not None:
        _warn_dropped(kind, p)
    mesh = trimesh.Trimesh(vertices=verts, faces=faces, vertex_colors=colors, process=False)
    text = export_obj(mesh, include_normals=False, include_color=colors is not None, include_texture=False,
                      digits=_OBJ_DIGITS, header=None)
    p.write_text(text)


def _save_ply(p: Path, verts, faces, textures, kind) -> None:
    import trimesh
    from trimesh.exchange.ply import export_ply

    colors = None
    if kind == "TexturesVertex":
        colors = _vertex_rgba(textures.verts_features_list()[0].detach().cpu().double().numpy(), p)
    elif kind is not None:
        _warn_dropped(kind, p)
    mesh = trimesh.Trimesh(vertices=verts, faces=faces, vertex_colors=colors, process=False)
    p.write_bytes(export_ply(mesh, encoding="binary", include_attributes=False))
