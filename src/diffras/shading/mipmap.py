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

from typing import List, NamedTuple, Optional

import torch
import torch.nn.functional as F

__all__: list = []

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


def texel_table(maps: List[torch.Tensor], mipmap: bool, padded: Optional[torch.Tensor] = None) -> TexelTable:
    """Flatten maps (each (Ht_i, Wt_i, C)) and, if ``mipmap``, their pyramids into a ``TexelTable``.

    ``padded`` (N, Ht, Wt, C), when given and no pyramid is needed, is used as a zero-copy view."""
    device = maps[0].device
    C = maps[0].shape[-1]
    if not mipmap and padded is not None:
        N, H, W = padded.shape[:3]
        full = lambda v: torch.full((N, 1), v, dtype=torch.int64, device=device)  # noqa: E731
        offset = (torch.arange(N, device=device, dtype=torch.int64) * (H * W))[:, None]
        return TexelTable(padded.reshape(-1, C), offset, full(H), full(W),
                          torch.ones(N, dtype=torch.int64, device=device))
    per_map = [build_pyramid(m) if mipmap else [m] for m in maps]
    L = max(len(p) for p in per_map)
    offs, hs, ws, chunks = [], [], [], []
    start = 0
    for levels in per_map:
        o, h, w = [], [], []
        for lev in levels:
            o.append(start)
            h.append(lev.shape[0])
            w.append(lev.shape[1])
            chunks.append(lev.reshape(-1, C))
            start += lev.shape[0] * lev.shape[1]
        # Levels past a small map's last one repeat the last (never read: levels are clamped).
        pad = L - len(levels)
        offs.append(o + o[-1:] * pad)
        hs.append(h + h[-1:] * pad)
        ws.append(w + w[-1:] * pad)
    t = lambda x: torch.tensor(x, dtype=torch.int64, device=device)  # noqa: E731
    return TexelTable(torch.cat(chunks, 0), t(offs), t(hs), t(ws), t([len(p) for p in per_map]))


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

    def tap(xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        ix, vx = address(xi, w, padding_mode, align_corners)
        iy, vy = address(yi, h, padding_mode, align_corners)
        vals = texels.index_select(0, off + iy * w + ix)
        if vx is not None:
            vals = vals * (vx & vy).to(vals.dtype)[:, None]
        return vals

    if sampling_mode == "nearest":
        return tap(torch.floor(x.detach() + 0.5).long(), torch.floor(y.detach() + 0.5).long())
    x0, y0 = torch.floor(x.detach()), torch.floor(y.detach())
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    x0, y0 = x0.long(), y0.long()
    top = tap(x0, y0) * (1 - fx) + tap(x0 + 1, y0) * fx
    bottom = tap(x0, y0 + 1) * (1 - fx) + tap(x0 + 1, y0 + 1) * fx
    return top * (1 - fy) + bottom * fy


def sample_points(table: TexelTable, map_idx: torch.Tensor, uv: torch.Tensor, lod: Optional[torch.Tensor],
                  padding_mode: str, align_corners: bool, sampling_mode: str) -> torch.Tensor:
    """(P, C): sample map ``map_idx[p]`` at ``uv[p]``; with ``lod`` (P,) blend the two nearest mip levels
    (trilinear filtering), level 0 alone where ``lod <= 0`` (magnification)."""
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


def footprint_lod(uv: torch.Tensor, pix_to_face: torch.Tensor, tex_size: torch.Tensor) -> torch.Tensor:
    """Level of detail ``log2(rho)`` per fragment, ``rho`` the texels covered per pixel step.

    The screen-space derivatives of UV are taken from neighbouring pixels, as GPUs do with pixel quads:
    along x (and y) each fragment compares its UV with the fragment in the same slot k of the next and of
    the previous pixel, preferring a neighbour on the *same face* (the exact finite difference of the
    face's UV over one pixel), else one on another face of the surface (needed for sub-pixel faces), and
    between two candidates of the same kind the *smaller* difference (so UV seams and silhouettes on one
    side do not blur). ``rho = max(|dUV/dx|, |dUV/dy|)`` in texels (u scaled by Wt, v by Ht); fragments
    with no filled neighbour get ``-inf`` (level 0). Not differentiable (a filter-width choice).

    Args:
        uv: (N, H, W, K, 2) UV per fragment. pix_to_face: (N, H, W, K), -1 where empty.
        tex_size: (N, 2) float, (Wt, Ht) of level 0 of each image's map.

    Returns:
        (N, H, W, K) float.
    """
    uvt = uv.detach() * tex_size.to(uv.dtype)[:, None, None, None, :]
    filled = pix_to_face >= 0
    deriv = []
    for dim in (2, 1):  # x (columns), then y (rows)
        n = uvt.shape[dim]
        if n < 2:
            deriv.append(torch.zeros(filled.shape, dtype=uvt.dtype, device=uvt.device))
            continue
        a = lambda t: t.narrow(dim, 0, n - 1)  # noqa: E731
        b = lambda t: t.narrow(dim, 1, n - 1)  # noqa: E731
        norm = (b(uvt) - a(uvt)).norm(dim=-1)
        ok = a(filled) & b(filled)
        rank = torch.where(ok, torch.where(a(pix_to_face) == b(pix_to_face), 0, 1), 2)
        pad_rank = torch.full_like(rank.narrow(dim, 0, 1), 2)
        pad_norm = torch.zeros_like(norm.narrow(dim, 0, 1))
        fwd_rank, bwd_rank = torch.cat([rank, pad_rank], dim), torch.cat([pad_rank, rank], dim)
        fwd_norm, bwd_norm = torch.cat([norm, pad_norm], dim), torch.cat([pad_norm, norm], dim)
        use_fwd = (fwd_rank < bwd_rank) | ((fwd_rank == bwd_rank) & (fwd_norm <= bwd_norm))
        d = torch.where(use_fwd, fwd_norm, bwd_norm)
        best = torch.minimum(fwd_rank, bwd_rank)
        deriv.append(torch.where(best < 2, d, torch.zeros_like(d)))
    rho = torch.maximum(deriv[0], deriv[1])
    return torch.log2(rho)
