"""Batched geometry containers: ``Meshes`` (list / padded / packed views) and the functions joining them."""
from .joins import join_meshes_as_batch, join_meshes_as_scene
from .meshes import Meshes
from .pointclouds import Pointclouds, join_pointclouds_as_batch, join_pointclouds_as_scene

__all__ = [
    "Meshes",
    "Pointclouds",
    "join_meshes_as_batch",
    "join_meshes_as_scene",
    "join_pointclouds_as_batch",
    "join_pointclouds_as_scene",
]
