"""Turn what trimesh loads (one ``Trimesh`` or a ``Scene``) into flat numpy arrays.

Private helpers of :mod:`diffras.io.mesh_data`. Everything here is numpy: torch enters only when the
arrays become a :class:`~diffras.io.mesh_data.MeshData`.

A scene (glTF, an OBJ with several materials) is flattened: every instance in the scene graph is
transformed to world space and all instances are concatenated into one mesh. When the instances use
more than one texture image (or mix textured and plain-coloured materials) the images are packed
in shelves into one atlas and the UVs remapped, so that a single ``TexturesUV`` map can carry them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np

# Pixels of edge replication around every atlas tile, so bilinear lookups near a tile's border never
# read a neighbouring tile.
_ATLAS_PAD = 2
# Side of the uniform block that stands in for a plain-coloured material inside an atlas.
_SWATCH = 4


@dataclass
class Part:
    """One mesh instance in world space, with its visual data (all numpy).

    ``vertices`` (V, 3) float64, ``faces`` (F, 3) int64, ``uv`` (V, 2) | None (one UV per vertex, as
    trimesh stores them: vertices are split at UV seams), ``image`` (Ht, Wt, 3) float32 in [0, 1] |
    None, ``image_key`` identifies the image so instances sharing one texture share one atlas tile,
    ``color`` (3,) float32 material colour, ``vertex_colors`` (V, 3) float32 | None, ``normals``
    (V, 3) float64 | None (only when the file stores them).
    """

    vertices: np.ndarray
    faces: np.ndarray
    uv: Optional[np.ndarray]
    image: Optional[np.ndarray]
    image_key: Optional[int]
    color: np.ndarray
    vertex_colors: Optional[np.ndarray]
    normals: Optional[np.ndarray]


def pil_to_float_rgb(image) -> np.ndarray:
    """PIL image -> (Ht, Wt, 3) float32 in [0, 1], row 0 the top row. Alpha is dropped (as PyTorch3D's
    loaders do): the shading pipeline is RGB."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image, dtype=np.float32) / 255.0


def _rgba_to_float_rgb(rgba) -> np.ndarray:
    arr = np.asarray(rgba, dtype=np.float64).reshape(-1)
    if arr.size < 3:
        return np.ones(3, dtype=np.float32)
    rgb = arr[:3]
    # trimesh stores colours as uint8 0..255; a float colour already in [0, 1] is kept as is.
    if np.asarray(rgba).dtype.kind in "ui" or rgb.max() > 1.0:
        rgb = rgb / 255.0
    return np.clip(rgb, 0.0, 1.0).astype(np.float32)


def _is_trimesh_placeholder(image) -> bool:
    """True for the tiny grey image trimesh invents when a file gives UVs but no texture."""
    try:
        from trimesh.visual.material import color_image

        ref = color_image()
    except Exception:  # an older or newer trimesh without it: nothing to recognise
        return False
    return image.size == ref.size and image.mode == ref.mode and image.tobytes() == ref.tobytes()


def _stored_vertex_normals(geom) -> Optional[np.ndarray]:
    # trimesh computes ``vertex_normals`` on demand; only normals read from the file sit in its cache
    # before anyone asks. Reading the attribute would invent normals for files that have none.
    cache = getattr(geom, "_cache", None)
    try:
        if cache is not None and "vertex_normals" in cache:
            normals = np.asarray(geom.vertex_normals, dtype=np.float64)
            if normals.shape == geom.vertices.shape:
                return normals
    except Exception:  # a malformed normal array is dropped, not fatal
        pass
    return None


def part_from_trimesh(geom, transform: Optional[np.ndarray], image_cache: Dict[int, np.ndarray]) -> Part:
    """Build a :class:`Part` from a ``trimesh.Trimesh`` and a (4, 4) column-vector transform."""
    vertices = np.asarray(geom.vertices, dtype=np.float64)
    faces = np.asarray(geom.faces, dtype=np.int64).reshape(-1, 3)
    normals = _stored_vertex_normals(geom)
    visual = geom.visual
    uv = image = key = vcolors = None
    color = np.ones(3, dtype=np.float32)
    kind = getattr(visual, "kind", None)
    if kind == "texture":
        raw_uv = getattr(visual, "uv", None)
        if raw_uv is not None and len(raw_uv) == len(vertices):
            uv = np.asarray(raw_uv, dtype=np.float64)[:, :2]
        mat = getattr(visual, "material", None)
        if mat is not None:
            color = _rgba_to_float_rgb(mat.main_color)
            pil = getattr(mat, "baseColorTexture", None)
            factor = getattr(mat, "baseColorFactor", None)
            if pil is None:
                pil = getattr(mat, "image", None)
            if pil is not None and _is_trimesh_placeholder(pil):
                pil = None
            if pil is not None:
                key = id(pil)
                if key not in image_cache:
                    image_cache[key] = pil_to_float_rgb(pil)
                image = image_cache[key]
                if factor is not None:
                    # glTF: base colour = texture * factor.
                    scale = _rgba_to_float_rgb(factor)
                    if not np.all(scale == 1.0):
                        image = image * scale
                        key = hash((key, tuple(scale.tolist())))
                color = np.ones(3, dtype=np.float32)
    elif kind == "vertex":
        vcolors = _rgba_to_float_rgb_rows(visual.vertex_colors)
    elif kind == "face":
        pass  # per-face colours have no place in MeshData; documented in load_mesh_data
    if transform is not None and not np.allclose(transform, np.eye(4)):
        A = np.asarray(transform[:3, :3], dtype=np.float64)
        vertices = vertices @ A.T + transform[:3, 3]
        if normals is not None:
            # Normals transform by the inverse transpose: n' = A^-T n, i.e. rows n @ A^-1.
            normals = normals @ np.linalg.inv(A)
            normals = normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-30)
        if np.linalg.det(A) < 0:
            # A mirroring transform turns the winding inside out; glTF asks loaders to flip it back.
            faces = faces[:, [0, 2, 1]]
    return Part(vertices, faces, uv, image, key, color, vcolors, normals)


def _rgba_to_float_rgb_rows(colors) -> np.ndarray:
    arr = np.asarray(colors)
    rgb = arr[:, :3].astype(np.float32)
    if arr.dtype.kind in "ui" or (rgb.size and rgb.max() > 1.0):
        rgb = rgb / 255.0
    return np.clip(rgb, 0.0, 1.0)


def merge_parts(parts: List[Part]):
    """Concatenate parts into one split-vertex mesh.

    Returns ``(vertices (S, 3), faces (F, 3), uv (S, 2) | None, image | None, vertex_colors | None,
    normals | None)`` where S counts the split vertices of all parts; ``faces`` index them.
    """
    offsets = np.cumsum([0] + [len(p.vertices) for p in parts])
    vertices = np.concatenate([p.vertices for p in parts], axis=0)
    faces = np.concatenate([p.faces + o for p, o in zip(parts, offsets[:-1])], axis=0)
    vcolors = None
    if all(p.vertex_colors is not None for p in parts):
        vcolors = np.concatenate([p.vertex_colors for p in parts], axis=0)
    normals = None
    if all(p.normals is not None for p in parts):
        normals = np.concatenate([p.normals for p in parts], axis=0)
    uv, image = _merge_textures(parts)
    return vertices, faces, uv, image, vcolors, normals


def _merge_textures(parts: List[Part]) -> Tuple[Optional[np.ndarray], Optional[np.ndarray]]:
    textured = [p.image is not None and p.uv is not None for p in parts]
    if not any(textured):
        if all(p.uv is not None for p in parts):
            return np.concatenate([p.uv for p in parts], axis=0), None
        return None, None
    keys = {p.image_key for p, t in zip(parts, textured) if t}
    if all(textured) and len(keys) == 1:
        # One shared image: UVs stay as the file gives them (including any outside [0, 1]).
        return np.concatenate([p.uv for p in parts], axis=0), parts[0].image
    return _pack_atlas(parts, textured)


def _pack_atlas(parts: List[Part], textured: List[bool]) -> Tuple[np.ndarray, np.ndarray]:
    """Pack the distinct images (and one swatch per plain colour) into one atlas, in shelves (rows)
    about as wide as the atlas is tall, and remap every part's UVs into it.

    UVs are remapped for samplers with ``align_corners=True`` (PyTorch3D's ``TexturesUV`` default):
    ``u = 0`` and ``u = 1`` are the centres of a tile's first and last texel. UVs outside [0, 1] are
    clamped first, since a wrapped lookup cannot be expressed inside an atlas.
    """
    tiles: List[np.ndarray] = []  # padded tiles
    inner: List[Tuple[int, int]] = []  # (h, w) of the unpadded content
    index_of: Dict[object, int] = {}
    part_tile: List[int] = []
    for p, t in zip(parts, textured):
        key = ("img", p.image_key) if t else ("rgb", tuple(np.round(p.color, 6).tolist()))
        if key not in index_of:
            index_of[key] = len(tiles)
            if t:
                img = p.image
                tiles.append(np.pad(img, ((_ATLAS_PAD, _ATLAS_PAD), (_ATLAS_PAD, _ATLAS_PAD), (0, 0)), mode="edge"))
                inner.append(img.shape[:2])
            else:
                tiles.append(np.broadcast_to(p.color.astype(np.float32), (_SWATCH, _SWATCH, 3)))
                inner.append((0, 0))
        part_tile.append(index_of[key])
    # Shelf packing: a single row of several large textures would be far wider than any sampler or
    # image format wants; rows of about sqrt(total area) keep the atlas roughly square.
    shelf = max(max(t.shape[1] for t in tiles), int(np.ceil(np.sqrt(sum(t.shape[0] * t.shape[1] for t in tiles)))))
    origin = []  # (x, y) of each tile's bottom-left texel, y counted from the bottom
    x = y = row_h = 0
    for tile in tiles:
        th, tw = tile.shape[:2]
        if x > 0 and x + tw > shelf:
            x, y, row_h = 0, y + row_h, 0
        origin.append((x, y))
        x, row_h = x + tw, max(row_h, th)
    width = max(ox + t.shape[1] for (ox, _), t in zip(origin, tiles))
    height = max(oy + t.shape[0] for (_, oy), t in zip(origin, tiles))
    atlas = np.zeros((height, width, 3), dtype=np.float32)
    for (ox, oy), tile in zip(origin, tiles):
        th, tw = tile.shape[:2]
        atlas[height - oy - th:height - oy, ox:ox + tw] = tile
    # Texel-centre coordinates: x in [0, width - 1] left to right, y in [0, height - 1] bottom to top.
    uvs = []
    for p, t, i in zip(parts, textured, part_tile):
        ox, oy = origin[i]
        if t:
            h, w = inner[i]
            uv = np.clip(p.uv, 0.0, 1.0)
            x = ox + _ATLAS_PAD + uv[:, 0] * (w - 1)
            y = oy + _ATLAS_PAD + uv[:, 1] * (h - 1)
        else:
            x = np.full(len(p.vertices), ox + (_SWATCH - 1) / 2.0)
            y = np.full(len(p.vertices), oy + (_SWATCH - 1) / 2.0)
        uvs.append(np.stack([x / max(width - 1, 1), y / max(height - 1, 1)], axis=1))
    return np.concatenate(uvs, axis=0), atlas


def weld(points: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Merge rows that are exactly equal, keeping the order of first appearance.

    Returns ``(unique (U, D), inverse (S,))`` with ``points == unique[inverse]``.
    """
    if len(points) == 0:
        return points, np.zeros(0, dtype=np.int64)
    # + 0.0 turns -0.0 into 0.0, which np.unique would otherwise tell apart by its bytes.
    pts = np.ascontiguousarray(points + 0.0)
    uniq, first, inverse = np.unique(pts, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return uniq[order], rank[inverse].astype(np.int64)
