"""``TexturesAtlas``: an R x R grid of colours per face, looked up by barycentric coordinates
(SoftRas's atlas, PyTorch3D's class). Symbols as in ``docs/conventions.md``."""
from __future__ import annotations

from typing import Any, List, Optional, Sequence, Union

import torch

from .._validation import check_index_range
from ..raster.fragments import as_fragments, scatter_packed
from .base import (TexturesBase, _check_counts, _check_field_values, _faces_to_mesh_local, _field_from_input,
                   _fragment_inputs)
from .interpolate import _filled

__all__ = ["TexturesAtlas"]

TensorOrList = Union[torch.Tensor, Sequence[torch.Tensor]]


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

    def _lookup(self, face: torch.Tensor, bary: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """(P, C) grid texel of P fragments on packed faces ``face`` at barycentrics ``bary`` (P, 3)."""
        R = a.shape[1]
        b01 = bary[:, :2].detach()
        w = torch.floor(b01 * R).clamp(0, R - 1)
        upper = (b01.sum(-1) * R - w.sum(-1)) > 1.0
        w = torch.where(upper[:, None], (R - 1) - w, w).long()
        return a[face, w[:, 1], w[:, 0]]

    def _checked_atlas(self, fragments: Any, meshes: Optional[Any], dense: bool = True):
        # The packed path reads bary_packed (whose shape Fragments checks), never the dense bary_coords.
        p2f, bary = _fragment_inputs(fragments, len(self), dense=dense)
        a = self._packed_atlas(meshes)
        if p2f is None:  # a packed Fragments: its faces are the filled slots'
            check_index_range(fragments.face_idx, "fragments.pix_to_face", a.shape[0])
            return a
        if dense and (not isinstance(bary, torch.Tensor) or bary.shape != p2f.shape + (3,)):
            raise ValueError(f"fragments.bary_coords: expected shape {tuple(p2f.shape) + (3,)}, got "
                             f"{getattr(bary, 'shape', type(bary).__name__)}")
        check_index_range(p2f, "fragments.pix_to_face", a.shape[0], allow=(-1,))
        return a

    def sample_textures_packed(self, fragments: Any, meshes: Optional[Any] = None) -> torch.Tensor:
        """(P, C): the grid texel under each of the P filled fragments (``fragments.face_idx`` order)."""
        a = self._checked_atlas(fragments, meshes, dense=False)
        fragments = as_fragments(fragments)
        return self._lookup(fragments.face_idx, fragments.bary_packed, a)

    def sample_textures(self, fragments: Any, meshes: Optional[Any] = None) -> torch.Tensor:
        """(N, H, W, K, C): the grid texel under every fragment, 0 in empty slots.

        ``meshes`` maps packed faces to per-mesh atlas rows; without it the atlas's own packing is used
        (list input, or padded input where every mesh has F faces)."""
        a = self._checked_atlas(fragments, meshes)
        p2f, bary = fragments.pix_to_face, fragments.bary_coords
        sel = _filled(p2f)
        vals = self._lookup(p2f.reshape(-1)[sel], bary.reshape(-1, 3)[sel], a)
        return scatter_packed(vals, sel, p2f.shape, 0.0)
