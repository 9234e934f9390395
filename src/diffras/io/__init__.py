"""Mesh I/O through trimesh and Pillow: files -> ``MeshData`` tensors -> ``Meshes`` with textures, and back."""
from .mesh_data import MeshData, load_mesh_data

__all__ = sorted([
    "MeshData",
    "load_mesh_data",
])
