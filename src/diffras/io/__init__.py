"""Mesh I/O through trimesh and Pillow: files -> ``MeshData`` tensors -> ``Meshes`` with textures, and back.

- :func:`load_mesh_data`: one file -> :class:`MeshData` (plain tensors; welded positions, per-face UVs).
- :func:`load_mesh` / :func:`load_meshes`: one file / several files -> ``Meshes`` with textures attached.
- :func:`save_mesh`: one mesh -> OBJ (+MTL+PNG) or PLY.
- PyTorch3D's ``load_obj``, ``load_objs_as_meshes``, ``save_obj``, ``load_ply``, ``save_ply``, ``IO``: file order,
  no welding (``pytorch3d_io``).
- :func:`load_pointcloud` / :func:`save_pointcloud`: PLY points with normals and colours <-> ``Pointclouds``.
"""
from .load import load_mesh, load_meshes, meshes_from_data
from .mesh_data import SUPPORTED_LOAD_FORMATS, MeshData, load_mesh_data
from .points import load_pointcloud, save_pointcloud
from .pytorch3d_io import IO, load_obj, load_objs_as_meshes, load_ply, save_obj, save_ply
from .save import SUPPORTED_SAVE_FORMATS, save_mesh

__all__ = [
    "IO",
    "MeshData",
    "SUPPORTED_LOAD_FORMATS",
    "SUPPORTED_SAVE_FORMATS",
    "load_mesh",
    "load_mesh_data",
    "load_meshes",
    "load_obj",
    "load_objs_as_meshes",
    "load_ply",
    "load_pointcloud",
    "meshes_from_data",
    "save_mesh",
    "save_obj",
    "save_ply",
    "save_pointcloud",
]
