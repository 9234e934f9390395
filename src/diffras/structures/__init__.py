"""Batched geometry containers: ``Meshes`` (list / padded / packed views) and the functions joining them."""
from .joins import join_meshes_as_batch, join_meshes_as_scene
from .meshes import Meshes

__all__ = ["Meshes", "join_meshes_as_batch", "join_meshes_as_scene"]
