"""Batched geometry containers: ``Meshes`` (list / padded / packed views) and the functions joining them."""
from .joins import join_meshes_as_batch, join_meshes_as_scene
from .meshes import Meshes
from .utils import list_to_packed, list_to_padded, packed_to_list, packed_to_padded, padded_to_list, padded_to_packed

__all__ = sorted([
    "Meshes",
    "join_meshes_as_batch",
    "join_meshes_as_scene",
    "list_to_packed",
    "list_to_padded",
    "packed_to_list",
    "packed_to_padded",
    "padded_to_list",
    "padded_to_packed",
])
