"""``TexturesUV``: one image per mesh, addressed by per-face-corner UV coordinates (PyTorch3D's class)."""
from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F

from .._validation import check_choice, check_index_range, check_int
from ..raster.fragments import as_fragments, scatter_packed
from .base import (
    TexturesBase,
    _check_counts,
    _check_field_values,
    _faces_to_mesh_local,
    _Field,
    _field_from_input,
    _fragment_inputs,
)
from .interpolate import interpolate_packed
from .mipmap import PADDING_MODES, address, footprint_lod_packed, sample_points, sample_pyramid, texel_table

__all__ = ["TexturesUV"]

TensorOrList = Union[torch.Tensor, Sequence[torch.Tensor]]

# Texels of each map's own addressing copied around it in join_scene's atlas, so bilinear taps at a
# map's border read what they would have read in the separate map instead of the neighbouring map.
_GUTTER = 2


class TexturesUV(TexturesBase):
    """A texture map per mesh, sampled at UV coordinates interpolated over each face.

    Args:
        maps: a padded (N, Ht, Wt, C) float tensor or a list of N (Ht_i, Wt_i, C) tensors; list entries
            may have *different* sizes (each mesh samples its own map; no resizing). Row 0 is the top of
            the image (as loaded from a PNG).
        faces_uvs: (N, F, 3) int64 padded with -1, or a list of (F_i, 3): for each face corner the index
            of its UV in ``verts_uvs`` (a face's UV corners follow its vertex corners).
        verts_uvs: (N, T, 2) float or a list of (T_i, 2): UV coordinates, origin at the *bottom-left* of
            the map (v = 0 is the bottom row, as OBJ and PyTorch3D). Values outside [0, 1] are addressed
            by ``padding_mode``.
        padding_mode: ``"border"`` (PyTorch3D's default; alias ``"clamp"``), ``"zeros"``, ``"reflection"``
            (alias ``"mirror"``) or ``"wrap"`` (alias ``"repeat"``). See ``diffras.textures.mipmap``.
        align_corners: True (PyTorch3D's default): u = 0 and u = 1 are the centres of the first and last
            texel columns, ``x_texel = u * (Wt - 1)``, ``row = (1 - v) * (Ht - 1)``. False: u = 0 and u = 1
            are the outer edges of the map, ``x_texel = u * Wt - 0.5``, ``row = (1 - v) * Ht - 0.5``.
            Example (PyTorch3D's): with align_corners=True, a (1001, 101) map and uv = (0.4, 0.3) reads
            ``map[700, 40]``.
        sampling_mode: ``"bilinear"`` (default) or ``"nearest"`` (the nearest texel centre).
        mipmap: ``None`` / ``"auto"`` (default): trilinear mip-mapping of bilinear lookups where the map
            is minified (more than one texel per pixel step) and plain level-0 sampling elsewhere, so
            magnified textures are sampled exactly as without mipmaps; the pyramid is only built when
            some fragment is minified (and cached while the maps need no gradient). ``"auto"`` leaves
            ``"nearest"`` lookups unfiltered (label maps must not be averaged). True: also for
            ``"nearest"`` (nearest texel of the two nearest levels, blended). False: level 0 everywhere
            (PyTorch3D's behaviour; aliases when minified). The level comes from the UV differences
            between neighbouring pixels, see ``diffras.textures.mipmap.footprint_lod``.

    Sampling is differentiable with respect to ``maps`` (through every level of the pyramid),
    ``verts_uvs`` and ``fragments.bary_coords``; the mip level choice itself carries no gradient.
    Not differentiable with respect to integer ``faces_uvs``.

    Example:
        >>> maps = torch.rand(1, 64, 64, 3)
        >>> faces_uvs = torch.tensor([[[0, 1, 2]]])
        >>> verts_uvs = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]])
        >>> tex = TexturesUV(maps, faces_uvs, verts_uvs)
        >>> len(tex), tex.maps_padded().shape
        (1, torch.Size([1, 64, 64, 3]))
    """

    _field_names = ("maps", "faces_uvs", "verts_uvs")
    _setting_names = ("padding_mode", "align_corners", "sampling_mode", "mipmap")

    def __init__(
        self,
        maps: TensorOrList,
        faces_uvs: TensorOrList,
        verts_uvs: TensorOrList,
        padding_mode: str = "border",
        align_corners: bool = True,
        sampling_mode: str = "bilinear",
        mipmap: Union[None, bool, str] = None,
    ):
        check_choice(padding_mode, "padding_mode", list(PADDING_MODES))
        if not isinstance(align_corners, bool):
            raise TypeError(f"align_corners: expected a bool, got {type(align_corners).__name__}")
        check_choice(sampling_mode, "sampling_mode", ["bilinear", "nearest"])
        if mipmap is not None and not isinstance(mipmap, bool):
            check_choice(mipmap, "mipmap", [None, True, False, "auto"])
        self.padding_mode = PADDING_MODES[padding_mode]
        self.align_corners = align_corners
        self.sampling_mode = sampling_mode
        self.mipmap = "auto" if mipmap is None else mipmap

        m = _field_from_input(maps, "maps", 3)
        fu = _field_from_input(faces_uvs, "faces_uvs", 2)
        vu = _field_from_input(verts_uvs, "verts_uvs", 2)
        for name, f in (("faces_uvs", fu), ("verts_uvs", vu)):
            if len(f) != len(m):
                raise ValueError(f"{name}: expected a batch of {len(m)} (one per map), got {len(f)}")
        device = _check_field_values(m, "maps", dtype="float", trailing=("*", "*", None), finite=True)
        _check_field_values(fu, "faces_uvs", dtype="int", trailing=(3,), device=device)
        _check_field_values(vu, "verts_uvs", dtype="float", trailing=(2,), device=device, finite=True)
        for i, mp in enumerate(m.list()):
            if mp.shape[0] == 0 or mp.shape[1] == 0 or mp.shape[2] == 0:
                raise ValueError(f"maps[{i}]: expected a non-empty (Ht, Wt, C) map, got {tuple(mp.shape)}")
        fu = fu.map(lambda t: t.long())
        fu.pad_value = -1
        for i, (f_i, t_i) in enumerate(zip(fu.list(), vu.sizes())):
            check_index_range(f_i, f"faces_uvs[{i}]", t_i, allow=(-1,) if not fu.is_list else ())
        self._maps, self._faces_uvs, self._verts_uvs = m, fu, vu

    # ------------------------------------------------------------------ views
    @property
    def num_channels(self) -> int:
        return int(self._maps.first().shape[-1])

    def maps_list(self) -> List[torch.Tensor]:
        """List of N (Ht_i, Wt_i, C) maps, as given."""
        return self._maps.list()

    def maps_padded(self) -> torch.Tensor:
        """(N, Ht, Wt, C). If the maps differ in size they are resized (bilinear, this object's
        ``align_corners``) to the largest height and width, as PyTorch3D does; sampling always uses the
        original maps."""
        if not self._maps.is_list:
            return self._maps.padded_
        maps = self._maps.items
        H = max(mp.shape[0] for mp in maps)
        W = max(mp.shape[1] for mp in maps)
        out = []
        for mp in maps:
            if mp.shape[:2] != (H, W):
                mp = F.interpolate(mp.permute(2, 0, 1)[None], size=(H, W), mode="bilinear",
                                   align_corners=self.align_corners)[0].permute(1, 2, 0)
            out.append(mp)
        return torch.stack(out, 0)

    def faces_uvs_list(self) -> List[torch.Tensor]:
        """List of N (F_i, 3) int64; for padded input, trailing all -1 rows are dropped."""
        if self._faces_uvs.is_list:
            return self._faces_uvs.list()
        out = []
        for f in self._faces_uvs.list():
            real = (f >= 0).any(dim=1).nonzero()
            out.append(f[: int(real.max()) + 1 if real.numel() else 0])
        return out

    def faces_uvs_padded(self) -> torch.Tensor:
        """(N, max F_i, 3) int64 padded with -1."""
        return self._faces_uvs.padded()

    def verts_uvs_list(self) -> List[torch.Tensor]:
        """List of N (T_i, 2)."""
        return self._verts_uvs.list()

    def verts_uvs_padded(self) -> torch.Tensor:
        """(N, max T_i, 2) zero padded."""
        return self._verts_uvs.padded()

    def submeshes(self, vertex_ids_list: List[List[torch.Tensor]], faces_ids_list: List[List[torch.Tensor]]
                  ) -> "TexturesUV":
        """The textures of the submeshes ``Meshes.submeshes`` makes (PyTorch3D's): the j-th submesh of mesh i
        keeps mesh i's map and UV list, and the UV corners ``faces_uvs[faces_ids_list[i][j]]`` of its faces.
        ``vertex_ids_list`` is accepted for the common signature (UVs are indexed per face corner)."""
        maps, fuv, vuv = self.maps_list(), self.faces_uvs_list(), self.verts_uvs_list()
        if len(faces_ids_list) != len(maps):
            raise ValueError(f"faces_ids_list: expected one entry per mesh ({len(maps)}), got {len(faces_ids_list)}")
        pick = [(i, ids) for i, per_mesh in enumerate(faces_ids_list) for ids in per_mesh]
        return TexturesUV([maps[i] for i, _ in pick], [fuv[i][ids] for i, ids in pick], [vuv[i] for i, _ in pick],
                          **self._settings())

    def extend(self, n: int) -> "TexturesUV":
        """Each element repeated ``n`` times (m0, m0, ..., m1, ...), as ``Meshes.extend``. The maps are
        *shared*, not copied: the n repeats of map i are one tensor, so N views of one textured mesh keep one
        map, one mip pyramid and one gradient accumulator (``mipmap.texel_table`` stores each tensor once)."""
        n = check_int(n, "n", min=1)
        if len(self) == 0:
            return super().extend(n)
        fields = {k: f.extend(n) for k, f in self._fields().items() if k != "maps"}
        fields["maps"] = _Field([m for m in self._maps.list() for _ in range(n)], None, self._maps.pad_value)
        return self._from_fields(fields, self._settings())

    def _check_joinable(self, other: "TexturesUV", name: str) -> None:
        if other.num_channels != self.num_channels:
            raise ValueError(f"{name}: expected maps with {self.num_channels} channels, got {other.num_channels}")

    # ------------------------------------------------------------------ join_scene
    def join_scene(self) -> "TexturesUV":
        """One-element batch for ``join_meshes_as_scene``: the maps packed side by side (left to right,
        top-aligned, zero filled below shorter maps) into one atlas map, each surrounded by a gutter of
        ``_GUTTER`` texels filled with its own addressing, ``verts_uvs`` remapped into the atlas and
        ``faces_uvs`` offset (concatenated in batch order).

        At mip level 0, UVs within [0, 1] read exactly what they read in the separate maps; UVs further
        outside than the gutter (e.g. tiling with ``"wrap"``) and coarse mip levels near a map's border
        read neighbouring maps (an atlas cannot tile one of its parts)."""
        if len(self) == 1:
            return self._from_fields({k: _Field(f.list(), None, f.pad_value) for k, f in self._fields().items()},
                                     self._settings())
        g = _GUTTER
        maps = [self._gutter(mp, g) for mp in self.maps_list()]
        Ht = max(mp.shape[0] for mp in maps)
        Wt = sum(mp.shape[1] for mp in maps)
        atlas = maps[0].new_zeros((Ht, Wt, maps[0].shape[2]))
        new_uvs, new_faces = [], []
        x_off, t_off = 0, 0
        ac = self.align_corners
        for mp, vu, fu in zip(self.maps_list(), self.verts_uvs_list(), self.faces_uvs_list()):
            h, w = mp.shape[:2]
            atlas[: h + 2 * g, x_off: x_off + w + 2 * g] = self._gutter(mp, g)
            # texel coordinates in the map, shifted into the atlas, then back to the atlas's UV.
            x = vu[:, 0] * (w - 1) if ac else vu[:, 0] * w - 0.5
            y = (1 - vu[:, 1]) * (h - 1) if ac else (1 - vu[:, 1]) * h - 0.5
            X, Y = x + (x_off + g), y + g
            u = X / (Wt - 1) if ac else (X + 0.5) / Wt
            v = 1 - (Y / (Ht - 1) if ac else (Y + 0.5) / Ht)
            new_uvs.append(torch.stack([u, v], dim=1))
            new_faces.append(torch.where(fu >= 0, fu + t_off, fu))
            x_off += w + 2 * g
            t_off += vu.shape[0]
        return self._from_fields({"maps": _Field([atlas]), "faces_uvs": _Field([torch.cat(new_faces)], None, -1),
                                  "verts_uvs": _Field([torch.cat(new_uvs)])}, self._settings())

    def _gutter(self, mp: torch.Tensor, g: int) -> torch.Tensor:
        """(Ht + 2g, Wt + 2g, C): ``mp`` surrounded by g texels of its own addressing mode."""
        h, w = mp.shape[:2]
        rows = torch.arange(-g, h + g, device=mp.device)
        cols = torch.arange(-g, w + g, device=mp.device)
        size = lambda s: torch.tensor(s, device=mp.device)  # noqa: E731
        ri, rv = address(rows, size(h), self.padding_mode, self.align_corners)
        ci, cv = address(cols, size(w), self.padding_mode, self.align_corners)
        out = mp[ri][:, ci]
        if rv is not None:
            out = out * (rv[:, None] & cv[None, :]).to(out.dtype)[..., None]
        return out

    # ------------------------------------------------------------------ sampling
    def _faces_uvs_packed_coords(self, meshes: Optional[Any]) -> Tuple[torch.Tensor, torch.Tensor]:
        """UV of every packed face corner (sum F, 3, 2) and the mesh of every packed face (sum F,)."""
        fu, vu = self._faces_uvs, self._verts_uvs
        if meshes is not None:
            self._check_meshes(meshes)
            _check_counts("faces_uvs", fu.sizes(), fu.is_list, meshes.num_faces_per_mesh(), "faces")
            mesh_idx, local = _faces_to_mesh_local(meshes)
        else:
            counts = torch.tensor(fu.sizes(), device=self.device)
            mesh_idx = torch.repeat_interleave(torch.arange(len(self), device=self.device), counts)
            first = torch.cumsum(counts, 0) - counts
            local = torch.arange(mesh_idx.shape[0], device=self.device) - first[mesh_idx]
        idx = fu.padded()[mesh_idx, local]  # (sum F, 3)
        if idx.numel() and bool((idx < 0).any()):
            bad = int((idx < 0).any(dim=1).nonzero()[0])
            raise ValueError(f"faces_uvs: expected indices >= 0 for every face of the meshes, got -1 for packed "
                             f"face {bad} (a padded faces_uvs row used by a real face)")
        return vu.padded()[mesh_idx[:, None], idx], mesh_idx

    def faces_verts_textures_packed(self, meshes: Optional[Any] = None) -> torch.Tensor:
        """(sum F, 3, C): the map sampled (level 0, this object's addressing) at every face corner's UV.

        ``meshes`` maps packed faces to per-mesh rows; without it the textures' own face counts are used."""
        corner_uvs, mesh_idx = self._faces_uvs_packed_coords(meshes)
        table = self._texel_table(False)
        vals = sample_points(table, mesh_idx.repeat_interleave(3), corner_uvs.reshape(-1, 2), None,
                             self.padding_mode, self.align_corners, self.sampling_mode)
        return vals.view(-1, 3, vals.shape[-1])

    def _use_mipmaps(self) -> bool:
        # "auto" filters bilinear lookups only: nearest lookups (e.g. label maps) must not be averaged.
        return self.mipmap is True or (self.mipmap == "auto" and self.sampling_mode == "bilinear")

    def _texel_table(self, mipmap: bool):
        """The flattened maps (and pyramids). Cached while the maps need no gradient, keyed on their
        storage and version counters, so re-rendering a fixed texture does not rebuild its pyramid."""
        maps = self.maps_list()
        padded = None if self._maps.is_list else self._maps.padded_
        if torch.is_grad_enabled() and any(m.requires_grad for m in maps):
            return texel_table(maps, mipmap, padded)
        key = tuple((m.data_ptr(), m._version, tuple(m.shape), m.dtype, m.device) for m in maps)
        cache = getattr(self, "_table_cache", None)
        if cache is None or cache[0] != key:
            cache = (key, {})
            self._table_cache = cache
        tables = cache[1]
        if not mipmap and True in tables:
            return tables[True]  # level 0 of a pyramid table serves plain lookups too
        if mipmap not in tables:
            tables[mipmap] = texel_table(maps, mipmap, padded)
        return tables[mipmap]

    def sample_textures_packed(self, fragments: Any, meshes: Optional[Any] = None) -> torch.Tensor:
        """(P, C): the map of image n sampled at each of the P filled fragments' interpolated UV
        (``fragments.face_idx`` order). Image n of ``fragments`` samples map n. ``meshes`` maps packed
        faces to per-mesh rows of ``faces_uvs`` (needed for padded input when meshes have fewer faces
        than the padded size)."""
        _fragment_inputs(fragments, len(self), dense=False)
        fragments = as_fragments(fragments)
        corner_uvs, _ = self._faces_uvs_packed_coords(meshes)
        slot, face = fragments.slot_idx, fragments.face_idx
        uv = interpolate_packed(face, fragments.bary_packed, corner_uvs)  # (P, 2)
        if slot.numel() == 0:  # nothing covered (or an empty batch): no table to build
            return uv.new_zeros((0, self.num_channels)).to(torch.promote_types(uv.dtype, self._maps.first().dtype))
        lod = None
        if self._use_mipmaps():
            maps = self.maps_list()
            size = torch.tensor([[mp.shape[1], mp.shape[0]] for mp in maps], device=uv.device, dtype=uv.dtype)
            lod = footprint_lod_packed(uv, slot, face, fragments.shape, size)
            if not bool((lod > 0).any()):
                lod = None  # nothing minified: skip building the pyramid
        maps = self.maps_list()
        if lod is not None and torch.is_grad_enabled() and any(m.requires_grad for m in maps):
            # Maps that require grad get a fresh pyramid every call: built and sampled together, with a
            # backward that only touches the levels the fragments read (see mipmap.sample_pyramid).
            return sample_pyramid(maps, fragments.image_idx, uv, lod, self.padding_mode, self.align_corners,
                                  self.sampling_mode)
        table = self._texel_table(lod is not None)
        return sample_points(table, fragments.image_idx, uv, lod, self.padding_mode, self.align_corners,
                             self.sampling_mode)

    def sample_textures(self, fragments: Any, meshes: Optional[Any] = None) -> torch.Tensor:
        """(N, H, W, K, C): :meth:`sample_textures_packed` at the filled slots, 0 in empty slots."""
        _fragment_inputs(fragments, len(self), dense=False)
        fragments = as_fragments(fragments)
        vals = self.sample_textures_packed(fragments, meshes)
        return scatter_packed(vals, fragments.slot_idx, fragments.shape, 0.0)
