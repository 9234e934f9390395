"""Texture-map sampling on packed points: addressing modes, bilinear / nearest lookup, mip pyramids and
trilinear filtering, and the level of detail of every fragment from its screen-space UV footprint.

Coordinates (PyTorch3D's ``TexturesUV`` convention, which is ``grid_sample``'s on a vertically flipped map):
a map is (Ht, Wt, C) with row 0 the *top* of the image, and UV has its origin at the *bottom-left*
(v = 0 is the bottom row, as in OBJ files). The continuous texel coordinate (x across columns, y down rows,
integer values at texel centres) of a UV point is

- ``align_corners=True``:  ``x = u * (Wt - 1)``,     ``y = (1 - v) * (Ht - 1)``: u = 0 and u = 1 are the
  *centres* of the first and last columns (v = 0 / 1 the centres of the bottom / top rows);
- ``align_corners=False``: ``x = u * Wt - 0.5``,     ``y = (1 - v) * Ht - 0.5``: u = 0 and u = 1 are the
  outer *edges* of the first and last columns.

Addressing (what texels outside the map read), applied to the integer texel indices of the taps:
``"border"`` (alias ``"clamp"``) repeats the edge texel; ``"zeros"`` reads 0; ``"reflection"`` (alias
``"mirror"``) mirrors about the edge texel centres (``align_corners=True``) or the map edges
(``align_corners=False``), exactly as ``grid_sample``; ``"wrap"`` (alias ``"repeat"``) tiles the map with
period 1 in UV: u is first reduced to ``u - floor(u)`` and taps wrap modulo the size, so u and u + 1 read
the same value. (With ``align_corners=True`` a tiling map should repeat its first column in its last.)

Mip pyramid: level 0 is the map; level l + 1 averages level l over boxes of about 2 x 2 texels
(``adaptive_avg_pool2d`` to ``max(1, size // 2)``, exactly 2 x 2 for even sizes) down to 1 x 1.
"""
from __future__ import annotations

import math
from typing import List, NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F

from .._validation import check_choice, check_finite, check_same_device, check_tensor
from ..raster.fragments import scatter_packed, use_fused

__all__ = ["sample_texture"]

PADDING_MODES = {"border": "border", "clamp": "border", "zeros": "zeros", "reflection": "reflection",
                 "mirror": "reflection", "wrap": "wrap", "repeat": "wrap"}


def address(i: torch.Tensor, size: torch.Tensor, mode: str, align_corners: bool):
    """Map integer texel indices ``i`` to in-range indices for a map side of ``size`` texels (broadcast).

    Returns ``(index, valid)``; ``valid`` is False only in ``"zeros"`` mode for indices outside the map."""
    valid = None
    if mode == "border":
        idx = torch.minimum(i.clamp(min=0), size - 1)
    elif mode == "zeros":
        valid = (i >= 0) & (i < size)
        idx = torch.minimum(i.clamp(min=0), size - 1)
    elif mode == "wrap":
        idx = torch.remainder(i, size)
    elif mode == "reflection":
        if align_corners:
            # Mirror about the first and last texel centres: period 2 (size - 1).
            period = (2 * (size - 1)).clamp(min=1)
            m = torch.remainder(i, period)
            idx = torch.where(m >= size, period - m, m)
            idx = torch.minimum(idx, size - 1)
        else:
            # Mirror about the map edges (-0.5 and size - 0.5): period 2 size.
            period = 2 * size
            m = torch.remainder(i, period)
            idx = torch.where(m >= size, period - 1 - m, m)
    else:  # pragma: no cover - callers validate the mode
        raise ValueError(f"padding_mode: unknown mode {mode!r}")
    return idx, valid


def build_pyramid(tex: torch.Tensor) -> List[torch.Tensor]:
    """Mip levels of one (Ht, Wt, C) map, from the map itself down to 1 x 1 (differentiable)."""
    levels = [tex]
    cur = tex.permute(2, 0, 1)[None]
    while cur.shape[-2] > 1 or cur.shape[-1] > 1:
        h, w = max(1, cur.shape[-2] // 2), max(1, cur.shape[-1] // 2)
        if cur.shape[-2] == 2 * h and cur.shape[-1] == 2 * w:
            cur = F.avg_pool2d(cur, 2)  # the common power-of-two case, faster than adaptive pooling
        else:
            cur = F.adaptive_avg_pool2d(cur, (h, w))
        levels.append(cur[0].permute(1, 2, 0))
    return levels


class TexelTable(NamedTuple):
    """All levels of all maps flattened into one (T, C) buffer, with per (map, level) placement."""

    texels: torch.Tensor  # (T, C)
    offset: torch.Tensor  # (N, L) int64, first row of level l of map n in ``texels``
    height: torch.Tensor  # (N, L) int64
    width: torch.Tensor  # (N, L) int64
    num_levels: torch.Tensor  # (N,) int64


def distinct_maps(maps: List[torch.Tensor]) -> Tuple[List[torch.Tensor], List[int]]:
    """The distinct tensors of ``maps`` (by identity: the views of one mesh after ``Meshes.extend`` share one
    map) and, per entry of ``maps``, its position among them."""
    first: dict = {}  # id(map) -> position among the distinct maps
    unique: List[torch.Tensor] = []
    for m in maps:
        if id(m) not in first:
            first[id(m)] = len(unique)
            unique.append(m)
    return unique, [first[id(m)] for m in maps]


def texel_table(maps: List[torch.Tensor], mipmap: bool, padded: Optional[torch.Tensor] = None, *,
                fused: Optional[bool] = None) -> TexelTable:
    """Flatten maps (each (Ht_i, Wt_i, C)) and, if ``mipmap``, their pyramids into a ``TexelTable``.

    ``padded`` (N, Ht, Wt, C), when given and no pyramid is needed, is used as a zero-copy view. Maps that
    are the same tensor object (e.g. the N views of one textured mesh after ``Meshes.extend``) are stored
    once and share their rows: one copy, one pyramid, one gradient accumulator. ``fused``: None builds
    the pyramid with the Numba kernel (``_pyramid_numba``) for CPU float32/float64 maps, with
    :func:`build_pyramid` otherwise (same values and gradients)."""
    device = maps[0].device
    C = maps[0].shape[-1]
    if not mipmap and padded is not None:
        N, H, W = padded.shape[:3]
        full = lambda v: torch.full((N, 1), v, dtype=torch.int64, device=device)  # noqa: E731
        offset = (torch.arange(N, device=device, dtype=torch.int64) * (H * W))[:, None]
        return TexelTable(padded.reshape(-1, C), offset, full(H), full(W),
                          torch.ones(N, dtype=torch.int64, device=device))
    unique, rows = distinct_maps(maps)
    if fused is None:
        fused = use_fused(*unique)
    if mipmap and fused:
        from ._pyramid_numba import pyramid_table

        texels, u_offs, u_sizes = pyramid_table(unique)
        u_hs = [[h for h, _ in lv] for lv in u_sizes]
        u_ws = [[w for _, w in lv] for lv in u_sizes]
    else:
        per_map = [build_pyramid(m) if mipmap else [m] for m in unique]
        u_offs, u_hs, u_ws, chunks = [], [], [], []
        start = 0
        for levels in per_map:
            o, h, w = [], [], []
            for lev in levels:
                o.append(start)
                h.append(lev.shape[0])
                w.append(lev.shape[1])
                chunks.append(lev.reshape(-1, C))
                start += lev.shape[0] * lev.shape[1]
            u_offs.append(o)
            u_hs.append(h)
            u_ws.append(w)
        texels = chunks[0] if len(chunks) == 1 else torch.cat(chunks, 0)
    L = max(len(o) for o in u_offs)
    # Levels past a small map's last one repeat the last (never read: levels are clamped).
    pad = lambda x: x + x[-1:] * (L - len(x))  # noqa: E731
    t = lambda x: torch.tensor(x, dtype=torch.int64, device=device)  # noqa: E731
    return TexelTable(texels, t([pad(u_offs[i]) for i in rows]), t([pad(u_hs[i]) for i in rows]),
                      t([pad(u_ws[i]) for i in rows]), t([len(u_offs[i]) for i in rows]))


def _sample_level(table: TexelTable, map_idx: torch.Tensor, level: torch.Tensor, uv: torch.Tensor,
                  padding_mode: str, align_corners: bool, sampling_mode: str) -> torch.Tensor:
    """(P, C): map ``map_idx[p]`` at mip ``level[p]`` sampled at ``uv[p]`` (P, 2)."""
    h = table.height[map_idx, level]
    w = table.width[map_idx, level]
    off = table.offset[map_idx, level]
    u, v = uv[:, 0], uv[:, 1]
    if padding_mode == "wrap":
        u = u - torch.floor(u.detach())
        v = v - torch.floor(v.detach())
    hf, wf = h.to(uv.dtype), w.to(uv.dtype)
    if align_corners:
        x, y = u * (wf - 1), (1 - v) * (hf - 1)
    else:
        x, y = u * wf - 0.5, (1 - v) * hf - 0.5
    texels = table.texels.to(torch.promote_types(table.texels.dtype, uv.dtype))

    def gather(rows, cols):
        # rows/cols: (index, valid) pairs from ``address``; invalid taps (zeros mode) read 0.
        vals = texels.index_select(0, off + rows[0] * w + cols[0])
        if rows[1] is not None:
            vals = vals * (rows[1] & cols[1]).to(vals.dtype)[:, None]
        return vals

    if sampling_mode == "nearest":
        xi = address(torch.floor(x.detach() + 0.5).long(), w, padding_mode, align_corners)
        yi = address(torch.floor(y.detach() + 0.5).long(), h, padding_mode, align_corners)
        return gather(yi, xi)
    x0, y0 = torch.floor(x.detach()), torch.floor(y.detach())
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    x0, y0 = x0.long(), y0.long()
    c0, c1 = address(x0, w, padding_mode, align_corners), address(x0 + 1, w, padding_mode, align_corners)
    r0, r1 = address(y0, h, padding_mode, align_corners), address(y0 + 1, h, padding_mode, align_corners)
    top = torch.lerp(gather(r0, c0), gather(r0, c1), fx)
    bottom = torch.lerp(gather(r1, c0), gather(r1, c1), fx)
    return torch.lerp(top, bottom, fy)


def sample_points(table: TexelTable, map_idx: torch.Tensor, uv: torch.Tensor, lod: Optional[torch.Tensor],
                  padding_mode: str, align_corners: bool, sampling_mode: str, *,
                  fused: Optional[bool] = None) -> torch.Tensor:
    """(P, C): sample map ``map_idx[p]`` at ``uv[p]``; with ``lod`` (P,) blend the two nearest mip levels
    (trilinear filtering), level 0 alone where ``lod <= 0`` (magnification).

    ``fused``: None runs the fused Numba kernel when ``table.texels`` and ``uv`` are CPU float32/float64
    tensors of one dtype, the plain-torch path below otherwise (same semantics; the reference)."""
    if fused is None:
        fused = use_fused(table.texels, uv)
    if fused:
        from ._sample_numba import fused_sample

        return fused_sample(table.texels, uv, map_idx, lod if table.offset.shape[1] > 1 else None, table.offset,
                            table.height, table.width, table.num_levels, padding_mode, align_corners, sampling_mode)
    zero = torch.zeros_like(map_idx)
    if lod is None or table.offset.shape[1] == 1:
        return _sample_level(table, map_idx, zero, uv, padding_mode, align_corners, sampling_mode)
    top = (table.num_levels[map_idx] - 1).to(lod.dtype)
    lam = torch.minimum(lod.detach().clamp(min=0), top)
    l0 = torch.floor(lam).long()
    t = lam - l0.to(lam.dtype)
    out = _sample_level(table, map_idx, l0, uv, padding_mode, align_corners, sampling_mode)
    blend = (t > 0).nonzero().squeeze(1)
    if blend.numel():
        tb = t[blend][:, None].to(out.dtype)
        upper = _sample_level(table, map_idx[blend], l0[blend] + 1, uv[blend], padding_mode, align_corners,
                              sampling_mode)
        out = out.index_put((blend,), out[blend] * (1 - tb) + upper * tb)
    return out


def sample_pyramid(maps: List[torch.Tensor], map_idx: torch.Tensor, uv: torch.Tensor, lod: torch.Tensor,
                   padding_mode: str, align_corners: bool, sampling_mode: str, *,
                   fused: Optional[bool] = None) -> torch.Tensor:
    """(P, C): :func:`sample_points` on the mip pyramids of ``maps`` (each (Ht_i, Wt_i, C); entry n is image
    n's map, entries that are one tensor share it) at ``uv`` (P, 2) with ``lod`` (P,), points of image
    ``map_idx[p]``, built afresh (no cached table; what a map that requires grad needs every call).

    ``fused``: None runs one fused Function (``_mip_sample``: pyramid build and sampling, whose backward only
    touches the mip levels the points read, not the whole table) for CPU float32/float64 tensors of one
    dtype, :func:`texel_table` + :func:`sample_points` through torch otherwise (same values and gradients)."""
    unique, rows = distinct_maps(maps)
    if fused is None:
        fused = use_fused(*unique, uv)
    if fused:
        from ._mip_sample import fused_mip_sample

        return fused_mip_sample(unique, rows, map_idx, uv, lod, padding_mode, align_corners, sampling_mode)
    table = texel_table(maps, True, fused=False)
    return sample_points(table, map_idx, uv, lod, padding_mode, align_corners, sampling_mode, fused=False)


def footprint_lod_packed(uv: torch.Tensor, slot: torch.Tensor, face: torch.Tensor, shape, tex_size: torch.Tensor,
                         *, fused: Optional[bool] = None) -> torch.Tensor:
    """:func:`footprint_lod` on P packed fragments: ``uv`` (P, 2), ``slot`` (P,) increasing flat indices into
    ``shape`` = (N, H, W, K), ``face`` (P,) their faces; ``tex_size`` (N, 2). Returns (P,) (``-inf`` for a
    fragment with no filled neighbour). Neighbours are found by binary search in ``slot`` (no dense map).
    ``fused``: None runs the Numba kernel for CPU float32/float64 ``uv``, the torch code below otherwise."""
    N, H, W, K = (int(v) for v in shape)
    P = slot.shape[0]
    if P == 0:
        return uv.new_zeros((0,))
    if fused is None:
        fused = use_fused(uv)
    if fused:
        from ._footprint_numba import fused_footprint_lod

        return fused_footprint_lod(uv, slot, face, shape, tex_size)
    flat_uv = uv.detach()
    n = torch.div(slot, H * W * K, rounding_mode="floor")
    y = torch.div(slot, W * K, rounding_mode="floor") % H
    x = torch.div(slot, K, rounding_mode="floor") % W
    scale = tex_size.to(flat_uv.dtype)[n]
    uv0 = flat_uv * scale
    deriv = []
    for coord, size, stride in ((x, W, K), (y, H, W * K)):
        ranks, norms = [], []
        for step in (1, -1):
            inside = (coord + step >= 0) & (coord + step < size)
            nb_slot = slot + step * stride
            pos = torch.searchsorted(slot, nb_slot).clamp_max(P - 1)
            found = inside & (slot[pos] == nb_slot)
            nb = torch.where(found, pos, torch.arange(P, device=slot.device))
            norms.append((flat_uv[nb] * scale - uv0).norm(dim=-1))
            ranks.append(torch.where(found, torch.where(face[nb] == face, 0, 1), 2))
        use_fwd = (ranks[0] < ranks[1]) | ((ranks[0] == ranks[1]) & (norms[0] <= norms[1]))
        d = torch.where(use_fwd, norms[0], norms[1])
        deriv.append(torch.where(torch.minimum(ranks[0], ranks[1]) < 2, d, torch.zeros_like(d)))
    return torch.log2(torch.maximum(deriv[0], deriv[1]))


def footprint_lod(uv: torch.Tensor, pix_to_face: torch.Tensor, tex_size: torch.Tensor,
                  sel: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Level of detail ``log2(rho)`` per fragment, ``rho`` the texels covered per pixel step.

    The screen-space derivatives of UV are taken from neighbouring pixels, as GPUs do with pixel quads:
    along x (and y) each fragment compares its UV with the fragment in the same slot k of the next and of
    the previous pixel, preferring a neighbour on the *same face* (the exact finite difference of the
    face's UV over one pixel), else one on another face of the surface (needed for sub-pixel faces), and
    between two candidates of the same kind the *smaller* difference (so UV seams and silhouettes on one
    side do not blur). ``rho = max(|dUV/dx|, |dUV/dy|)`` in texels (u scaled by Wt, v by Ht); fragments
    with no filled neighbour get ``-inf`` (level 0). Not differentiable (a filter-width choice). The
    neighbours are always all filled fragments; ``sel`` only picks which fragments are returned.
    (Implementation: :func:`footprint_lod_packed`, what the shaders use.)

    Args:
        uv: (N, H, W, K, 2) UV per fragment. pix_to_face: (N, H, W, K), -1 where empty.
        tex_size: (N, 2) float, (Wt, Ht) of level 0 of each image's map.
        sel: (P,) flat indices of filled fragments to evaluate; None for all filled fragments.

    Returns:
        (P,) for the fragments ``sel``; or (N, H, W, K) (``-inf`` where empty) when ``sel`` is None.
    """
    flat_p2f = pix_to_face.reshape(-1)
    filled = (flat_p2f >= 0).nonzero().squeeze(1)
    lod = footprint_lod_packed(uv.reshape(-1, 2)[filled], filled, flat_p2f[filled], pix_to_face.shape, tex_size)
    if sel is not None:
        return lod[torch.searchsorted(filled, sel).clamp_max(max(filled.numel() - 1, 0))]
    return scatter_packed(lod, filled, pix_to_face.shape, -math.inf)


def sample_texture(
    maps: torch.Tensor,
    uv: torch.Tensor,
    *,
    lod: Optional[torch.Tensor] = None,
    padding_mode: str = "border",
    align_corners: bool = True,
    sampling_mode: str = "bilinear",
) -> torch.Tensor:
    """Sample texture maps at UV points: the plain-tensor verb under ``TexturesUV`` (nvdiffrast's
    ``texture``), with the UV, ``align_corners`` and addressing conventions of this module's docstring.

    Args:
        maps: (N, Ht, Wt, C) float, row 0 the top of each image.
        uv: (N, *, 2) float, UV origin at the bottom-left; batch n samples ``maps[n]``.
        lod: optional (N, *) float level of detail (log2 of texels per pixel step): trilinear filtering
            between the two nearest levels of the 2 x 2 box pyramid, level 0 where ``lod <= 0``. None
            samples level 0 only. The level choice carries no gradient.
        padding_mode: ``"border"``/``"clamp"``, ``"zeros"``, ``"reflection"``/``"mirror"``, ``"wrap"``/``"repeat"``.
        align_corners: see the module docstring (PyTorch3D's default True).
        sampling_mode: ``"bilinear"`` or ``"nearest"``.

    Returns:
        (N, *, C) in the promoted dtype of ``maps`` and ``uv``; differentiable w.r.t. ``maps`` and ``uv``.

    Example:
        >>> maps = torch.arange(4.0).view(1, 2, 2, 1)   # top row 0, 1; bottom row 2, 3
        >>> sample_texture(maps, torch.tensor([[[0.0, 0.0], [0.5, 0.5]]])).flatten().tolist()
        [2.0, 1.5]
    """
    sizes: dict = {}
    check_tensor(maps, "maps", shape=("N", None, None, None), dtype="float", finite=True, sizes=sizes)
    check_tensor(uv, "uv", dtype="float")
    if uv.dim() < 2 or uv.shape[0] != maps.shape[0] or uv.shape[-1] != 2:
        raise ValueError(f"uv: expected shape (N={maps.shape[0]}, *, 2), got {tuple(uv.shape)}")
    if lod is not None:
        check_tensor(lod, "lod", dtype="float")
        if lod.shape != uv.shape[:-1]:
            raise ValueError(f"lod: expected shape {tuple(uv.shape[:-1])} (uv without its last dimension), "
                             f"got {tuple(lod.shape)}")
    check_same_device(maps=maps, uv=uv, lod=lod)
    check_choice(padding_mode, "padding_mode", list(PADDING_MODES))
    check_choice(sampling_mode, "sampling_mode", ["bilinear", "nearest"])
    if 0 in maps.shape[1:]:
        raise ValueError(f"maps: expected non-empty (Ht, Wt, C) maps, got shape {tuple(maps.shape)}")
    flat_uv = uv.reshape(-1, 2)
    check_finite(flat_uv, "uv")
    N = maps.shape[0]
    per = flat_uv.shape[0] // max(N, 1)
    map_idx = torch.arange(N, device=uv.device).repeat_interleave(per)
    flat_lod = None if lod is None else lod.reshape(-1).nan_to_num(neginf=-1.0)
    use_mip = flat_lod is not None and bool((flat_lod > 0).any())
    if use_mip:
        # One map: a view, not unbind (whose backward would stack a copy of the map's gradient).
        per_map = [maps.reshape(maps.shape[1:])] if N == 1 else list(maps.unbind(0))
        out = sample_pyramid(per_map, map_idx, flat_uv, flat_lod, PADDING_MODES[padding_mode], align_corners,
                             sampling_mode)
    else:
        table = texel_table(list(maps.unbind(0)), False, maps)
        out = sample_points(table, map_idx, flat_uv, None, PADDING_MODES[padding_mode], align_corners,
                            sampling_mode)
    return out.view(uv.shape[:-1] + (maps.shape[-1],))
