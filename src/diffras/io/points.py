"""Point clouds in and out of PLY files, through trimesh (PyTorch3D's ``IO().load_pointcloud`` /
``IO().save_pointcloud`` semantics).

A PLY point cloud is its ``vertex`` element: ``x y z``, optional normals ``nx ny nz`` and optional colours
``red green blue`` (float, or uchar scaled from [0, 255] to [0, 1], as PyTorch3D reads them; an ``alpha``
is ignored, as PyTorch3D does). Faces, if the file has any, are ignored: every vertex is a point.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._validation import _describe
from .load import _as_device
from .mesh_data import PathLike, _trimesh_load
from .save import _check_save_path

__all__ = ["load_pointcloud", "save_pointcloud"]


def _property_names(raw: Any):
    # trimesh's raw PLY vertex data: a structured array (binary files) or a dict of (P, 1) arrays (ASCII).
    if isinstance(raw, dict):
        return list(raw.keys())
    names = getattr(getattr(raw, "dtype", None), "names", None)
    return list(names) if names else None


def _columns(raw: Any, names, p: Path):
    present = [n in _property_names(raw) for n in names]
    if not any(present):
        return None
    if not all(present):
        raise ValueError(f"'{p}': expected all of the vertex properties {list(names)} or none, got only "
                         f"{[n for n, ok in zip(names, present) if ok]}")
    return np.stack([np.asarray(raw[n]).reshape(-1) for n in names], 1)


def load_pointcloud(path: PathLike, device: Any = None):
    """Read a PLY file's vertices as a point cloud.

    Args:
        path: a ``.ply`` file (str or ``os.PathLike``), ASCII or binary.
        device: torch device of the result (default CPU).

    Returns:
        :class:`~diffras.structures.Pointclouds` of one cloud: points (P, 3) float32 in the file's order;
        normals (P, 3) float32 as stored (not renormalised) if the file has ``nx ny nz``; features (P, 3)
        float32 RGB if it has ``red green blue`` (uchar values divided by 255).
    """
    from ..structures import Pointclouds

    if not isinstance(path, (str, Path)) and not hasattr(path, "__fspath__"):
        raise TypeError(f"path: expected a str or os.PathLike, got {_describe(path)}")
    p = Path(path)
    if p.suffix.lower() != ".ply":
        raise ValueError(f"path: expected a file ending in '.ply', got '{p}'")
    if not p.is_file():
        raise FileNotFoundError(f"path: no such file: '{p}'")
    dev = _as_device(device)
    loaded = _trimesh_load(p)
    raw = getattr(loaded, "metadata", {}).get("_ply_raw", {}).get("vertex", {}).get("data")
    if raw is None or not _property_names(raw):
        raise ValueError(f"'{p}': expected a PLY file with a vertex element, got none")
    xyz = _columns(raw, ("x", "y", "z"), p)
    if xyz is None:
        raise ValueError(f"'{p}': expected vertex properties x, y, z, got {_property_names(raw)}")
    normals = _columns(raw, ("nx", "ny", "nz"), p)
    colors = _columns(raw, ("red", "green", "blue"), p)
    if colors is not None:
        scale = 1.0 / 255.0 if np.issubdtype(colors.dtype, np.integer) else 1.0
        colors = colors.astype(np.float64) * scale

    def tensor(a):
        return None if a is None else [torch.as_tensor(np.ascontiguousarray(a, dtype=np.float32), device=dev)]

    return Pointclouds(points=tensor(xyz), normals=tensor(normals), features=tensor(colors))


def save_pointcloud(data: Any, path: PathLike, colors_as_uint8: bool = False) -> None:
    """Write the one cloud of ``data`` to a binary PLY file (PyTorch3D's ``IO().save_pointcloud``).

    Writes ``x y z`` (float32), ``nx ny nz`` (float32) if the cloud has normals, and its features as
    ``red green blue`` colours if it has features: float32 as they are, or with ``colors_as_uint8`` uchar
    ``round(255 * clamp(c, 0, 1))``. Features must then have 3 channels (RGB).

    Args:
        data: a :class:`~diffras.structures.Pointclouds` holding exactly one cloud.
        path: the output ``.ply`` file; its folder must exist.
        colors_as_uint8: store colours as 8-bit values instead of float32.
    """
    import trimesh
    from trimesh.exchange.ply import export_ply

    from ..structures import Pointclouds

    if not isinstance(data, Pointclouds):
        raise TypeError(f"data: expected a Pointclouds, got {_describe(data)}")
    if len(data) != 1:
        raise ValueError(f"data: expected a Pointclouds holding one cloud (index a batch, e.g. data[i]), "
                         f"got a batch of {len(data)}")
    if not isinstance(colors_as_uint8, bool):
        raise TypeError(f"colors_as_uint8: expected a bool, got {_describe(colors_as_uint8)}")
    p = _check_save_path(path)
    if p.suffix.lower() != ".ply":
        raise ValueError(f"path: expected a file ending in '.ply', got '{p}'")
    points = data.points_packed().detach().cpu().double().numpy()
    normals = data.normals_packed()
    features = data.features_packed()
    if features is not None and features.shape[1] != 3:
        raise ValueError(f"data: expected features with 3 channels (RGB) to write as PLY colours, got "
                         f"{features.shape[1]}")
    # A Trimesh without faces writes a vertex-only PLY; colours go in as vertex attributes so they keep
    # their float values (trimesh's own vertex colours are 8-bit).
    mesh = trimesh.Trimesh(vertices=points, faces=np.zeros((0, 3), dtype=np.int64), process=False,
                           vertex_normals=None if normals is None else normals.detach().cpu().double().numpy())
    if features is not None:
        cols = features.detach().cpu().double().numpy()
        if colors_as_uint8:
            cols = np.round(np.clip(cols, 0.0, 1.0) * 255.0).astype(np.uint8)
        else:
            cols = cols.astype(np.float32)
        for i, name in enumerate(("red", "green", "blue")):
            mesh.vertex_attributes[name] = cols[:, i]
    p.write_bytes(export_ply(mesh, encoding="binary", vertex_normal=normals is not None))
