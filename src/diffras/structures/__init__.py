"""Batched geometry containers: ``Meshes`` (list / padded / packed views) and the functions joining them;
``Volumes`` (voxel grids, padded / list views)."""
from .joins import join_meshes_as_batch, join_meshes_as_scene
from .meshes import Meshes
from .volumes import Volumes

__all__ = ["Meshes", "Volumes", "join_meshes_as_batch", "join_meshes_as_scene"]
