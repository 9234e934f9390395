"""Batched geometry containers: ``Meshes`` (list / padded / packed views) and the functions joining them;
``Volumes`` (voxel grids, padded / list views)."""
from .joins import join_meshes_as_batch, join_meshes_as_scene
from .meshes import Meshes
from .pointcloud_joins import join_pointclouds_as_batch, join_pointclouds_as_scene
from .pointclouds import Pointclouds
from .volumes import Volumes

__all__ = [
    "Meshes",
    "Pointclouds",
    "Volumes",
    "join_meshes_as_batch",
    "join_meshes_as_scene",
    "join_pointclouds_as_batch",
    "join_pointclouds_as_scene",
]
