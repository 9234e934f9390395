"""Textures attached to ``Meshes``: per-vertex features, UV-mapped images and per-face atlases.

Three classes with PyTorch3D's names and conventions, all duck-typed to the same interface (see
``TexturesBase``): ``len``, ``clone``, ``detach``, ``to``, ``extend``, indexing, ``join_batch``,
``join_scene``, ``sample_textures(fragments, meshes) -> (N, H, W, K, C)`` and
``faces_verts_textures_packed(meshes) -> (sum F, 3, C)``.

- ``TexturesVertex``: features per vertex, interpolated barycentrically over each face.
- ``TexturesUV`` (in ``textures_uv.py``): an image per mesh addressed by per-corner UV coordinates.
- ``TexturesAtlas``: an R x R grid of colours per face, looked up by barycentric coordinates.

Symbols as in ``docs/conventions.md``: N meshes, V vertices, F faces, C channels, (H, W, K) fragments.
"""
from __future__ import annotations

from typing import Any, List, Optional, Sequence, Union

import torch

from .._validation import check_index_range
from .interpolate import _filled, interpolate_face_attributes
from .textures_base import (
    TexturesBase,
    _check_counts,
    _check_field_values,
    _faces_to_mesh_local,
    _field_from_input,
    _fragment_inputs,
)
from .textures_uv import TexturesUV

__all__ = ["TexturesAtlas", "TexturesBase", "TexturesUV", "TexturesVertex"]

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

    def sample_textures(self, fragments: Any, meshes: Any) -> torch.Tensor:
        """(N, H, W, K, C): features interpolated at every fragment, 0 in empty slots."""
        p2f, bary = _fragment_inputs(fragments, len(self))
        return interpolate_face_attributes(p2f, bary, self.faces_verts_textures_packed(meshes))


class TexturesAtlas(TexturesBase):
    """An R x R grid of texels per face, looked up by the fragment's barycentric coordinates (SoftRas's
    texture atlas, PyTorch3D's ``TexturesAtlas``).

    Args:
        atlas: a list of N tensors (F_i, R, R, C) or a padded (N, F, R, R, C) float tensor, with the same R
            and C for every mesh.

    Texel lookup (PyTorch3D's convention): with ``(b0, b1)`` the first two barycentric coordinates,
    ``(i, j) = clamp(floor((b0, b1) * R), 0, R - 1)``; if ``(b0 + b1) * R - (i + j) > 1`` the point lies in
    the upper triangle of its grid square and reads the mirrored cell ``(R - 1 - i, R - 1 - j)``. The
    colour is ``atlas[f, j, i]``: corner 0 (b = (1, 0, 0)) reads ``atlas[f, 0, R - 1]``, corner 1 reads
    ``atlas[f, R - 1, 0]`` and corner 2 reads ``atlas[f, 0, 0]``.

    Sampling is differentiable with respect to the atlas, not the barycentric coordinates (a lookup).
    """

    _field_names = ("atlas",)

    def __init__(self, atlas: TensorOrList):
        f = _field_from_input(atlas, "atlas", 4)
        _check_field_values(f, "atlas", dtype="float", trailing=(None, None, None), finite=True)
        shape = f.first().shape
        if shape[-3] != shape[-2] or shape[-3] == 0:
            raise ValueError(f"atlas: expected square R x R grids with R >= 1, got shape {tuple(shape)}")
        self._atlas = f

    @property
    def num_channels(self) -> int:
        return int(self._atlas.first().shape[-1])

    @property
    def resolution(self) -> int:
        """R, the grid size per face."""
        return int(self._atlas.first().shape[-2])

    def atlas_list(self) -> List[torch.Tensor]:
        """List of N (F_i, R, R, C)."""
        return self._atlas.list()

    def atlas_padded(self) -> torch.Tensor:
        """(N, max F_i, R, R, C), zero padded."""
        return self._atlas.padded()

    def atlas_packed(self) -> torch.Tensor:
        """(sum F_i, R, R, C)."""
        return torch.cat(self.atlas_list(), 0)

    def _check_joinable(self, other: "TexturesAtlas", name: str) -> None:
        if (other.resolution, other.num_channels) != (self.resolution, self.num_channels):
            raise ValueError(f"{name}: expected R={self.resolution} and C={self.num_channels}, got "
                             f"R={other.resolution} and C={other.num_channels}")

    def join_scene(self) -> "TexturesAtlas":
        """One-element batch: all faces' grids concatenated (matches ``join_meshes_as_scene``)."""
        return TexturesAtlas([self.atlas_packed()])

    def _packed_atlas(self, meshes: Optional[Any]) -> torch.Tensor:
        """(sum F, R, R, C) aligned with the packed faces of ``meshes`` (or of the atlas itself)."""
        f = self._atlas
        if meshes is None or f.is_list:
            if meshes is not None:
                self._check_meshes(meshes)
                _check_counts("atlas", f.sizes(), True, meshes.num_faces_per_mesh(), "faces")
            return self.atlas_packed()
        self._check_meshes(meshes)
        _check_counts("atlas", f.sizes(), False, meshes.num_faces_per_mesh(), "faces")
        mesh_idx, local = _faces_to_mesh_local(meshes)
        return f.padded_[mesh_idx, local]

    def faces_verts_textures_packed(self, meshes: Optional[Any] = None) -> torch.Tensor:
        """(sum F, 3, C): the texel each face corner reads (see the class docstring)."""
        a = self._packed_atlas(meshes)
        return torch.stack((a[:, 0, -1], a[:, -1, 0], a[:, 0, 0]), dim=1)

    def sample_textures(self, fragments: Any, meshes: Optional[Any] = None) -> torch.Tensor:
        """(N, H, W, K, C): the grid texel under every fragment, 0 in empty slots.

        ``meshes`` maps packed faces to per-mesh atlas rows; without it the atlas's own packing is used
        (list input, or padded input where every mesh has F faces)."""
        p2f, bary = _fragment_inputs(fragments, len(self))
        a = self._packed_atlas(meshes)
        if not isinstance(bary, torch.Tensor) or bary.shape != p2f.shape + (3,):
            raise ValueError(f"fragments.bary_coords: expected shape {tuple(p2f.shape) + (3,)}, got "
                             f"{getattr(bary, 'shape', type(bary).__name__)}")
        check_index_range(p2f, "fragments.pix_to_face", a.shape[0], allow=(-1,))
        R = a.shape[1]
        sel = _filled(p2f)
        faces = p2f.reshape(-1)[sel]
        b01 = bary.reshape(-1, 3)[sel, :2].detach()
        w = torch.floor(b01 * R).clamp(0, R - 1)
        upper = (b01.sum(-1) * R - w.sum(-1)) > 1.0
        w = torch.where(upper[:, None], (R - 1) - w, w).long()
        vals = a[faces, w[:, 1], w[:, 0]]
        out = vals.new_zeros((p2f.numel(), a.shape[-1])).index_copy(0, sel, vals)
        return out.view(p2f.shape + (a.shape[-1],))
