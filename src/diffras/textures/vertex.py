"""``TexturesVertex``: a feature vector per vertex, interpolated barycentrically over each face
(PyTorch3D's class). Symbols as in ``docs/conventions.md``."""
from __future__ import annotations

from typing import Any, List, Sequence, Union

import torch

from ..raster.fragments import as_fragments
from .base import (TexturesBase, _check_counts, _check_field_values, _faces_to_mesh_local, _field_from_input,
                   _fragment_inputs)
from .interpolate import interpolate_face_attributes, interpolate_packed

__all__ = ["TexturesVertex"]

TensorOrList = Union[torch.Tensor, Sequence[torch.Tensor]]


class TexturesVertex(TexturesBase):
    """A feature vector per vertex (colour or any C channels), interpolated over each face.

    Args:
        verts_features: a list of N tensors (V_i, C) or a padded (N, V, C) float tensor. Rows of a padded
            tensor beyond a mesh's vertex count are ignored when sampling; with padded input ``join_scene``
            assumes every mesh has V vertices (pass a list when meshes have different sizes).

    ``sample_textures`` is differentiable with respect to the features and ``fragments.bary_coords``.

    Example:
        >>> tex = TexturesVertex(torch.rand(2, 4, 3))   # 2 meshes, 4 vertices each, RGB
        >>> len(tex), tex.verts_features_packed().shape
        (2, torch.Size([8, 3]))
    """

    _field_names = ("verts_features",)

    def __init__(self, verts_features: TensorOrList):
        f = _field_from_input(verts_features, "verts_features", 2)
        _check_field_values(f, "verts_features", dtype="float", trailing=(None,), finite=True)
        self._verts_features = f

    @property
    def num_channels(self) -> int:
        """C, the number of feature channels."""
        return int(self._verts_features.first().shape[-1])

    def verts_features_list(self) -> List[torch.Tensor]:
        """List of N (V_i, C) tensors (for padded input every entry is (V, C))."""
        return self._verts_features.list()

    def verts_features_padded(self) -> torch.Tensor:
        """(N, max V_i, C), zero padded."""
        return self._verts_features.padded()

    def verts_features_packed(self) -> torch.Tensor:
        """(sum V_i, C), the list entries concatenated."""
        return torch.cat(self.verts_features_list(), 0)

    def submeshes(self, vertex_ids_list: List[List[torch.Tensor]], faces_ids_list: List[List[torch.Tensor]]
                  ) -> "TexturesVertex":
        """The features of the submeshes ``Meshes.submeshes`` makes (PyTorch3D's): for mesh i and its j-th
        submesh, the rows ``vertex_ids_list[i][j]`` (the kept vertices, in the submesh's order) of mesh i's
        features. ``faces_ids_list`` is accepted for the common signature (vertex features need no faces)."""
        feats = self.verts_features_list()
        if len(vertex_ids_list) != len(feats):
            raise ValueError(f"vertex_ids_list: expected one entry per mesh ({len(feats)}), got {len(vertex_ids_list)}")
        return TexturesVertex([feats[i][ids] for i, per_mesh in enumerate(vertex_ids_list) for ids in per_mesh])

    def _check_joinable(self, other: "TexturesVertex", name: str) -> None:
        if other.num_channels != self.num_channels:
            raise ValueError(f"{name}: expected {self.num_channels} channels, got {other.num_channels}")

    def join_scene(self) -> "TexturesVertex":
        """One-element batch: the features of all meshes concatenated (matches ``join_meshes_as_scene``)."""
        return TexturesVertex([self.verts_features_packed()])

    def faces_verts_textures_packed(self, meshes: Any) -> torch.Tensor:
        """(sum F, 3, C): the features of the three corners of every packed face of ``meshes``."""
        self._check_meshes(meshes)
        f = self._verts_features
        _check_counts("verts_features", f.sizes(), f.is_list, meshes.num_verts_per_mesh(), "vertices")
        faces = meshes.faces_packed()
        if f.is_list:
            # List rows line up with the packed vertices exactly.
            return self.verts_features_packed()[faces]
        mesh_idx, _ = _faces_to_mesh_local(meshes)
        local = faces - meshes.mesh_to_verts_packed_first_idx()[mesh_idx][:, None]
        return f.padded_[mesh_idx[:, None], local]

    def sample_textures_packed(self, fragments: Any, meshes: Any) -> torch.Tensor:
        """(P, C): features interpolated at the P filled fragments (``fragments.face_idx`` order)."""
        _fragment_inputs(fragments, len(self), dense=False)
        fragments = as_fragments(fragments)
        return interpolate_packed(fragments.face_idx, fragments.bary_packed, self.faces_verts_textures_packed(meshes))

    def sample_textures(self, fragments: Any, meshes: Any) -> torch.Tensor:
        """(N, H, W, K, C): features interpolated at every fragment, 0 in empty slots."""
        p2f, bary = _fragment_inputs(fragments, len(self))
        return interpolate_face_attributes(p2f, bary, self.faces_verts_textures_packed(meshes))
