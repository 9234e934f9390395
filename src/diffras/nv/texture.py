"""nvdiffrast's ``texture`` and ``texture_construct_mip``: filtered texture lookups, 2D and cube maps.

Conventions (nvdiffrast's): ``tex[n, row, col, c]`` with row 0 at t = 0 (the *bottom*, OpenGL order),
texel centres at ``(col + 0.5) / W, (row + 0.5) / H`` (no vertical flip, unlike diffras's TexturesUV).
Boundary modes: ``'wrap'`` takes the fractional part of (s, t) and wraps taps; ``'clamp'`` clamps the
texel coordinate to the centres of the edge texels (no gradient to uv there); ``'zero'`` reads zero
outside; ``'cube'`` for (N, 6, S, S, C) cube maps addressed by 3D directions (``diffras.nv._cube``).

Mip level (nvdiffrast's isotropic rule): from ``uv_da = (ds/dX, ds/dY, dt/dX, dt/dY)`` in texels, the
level is ``0.5 * log2`` of the major axis squared of the footprint ellipse, plus ``mip_level_bias``,
clamped to [0, max level]; ``'linear-mipmap-nearest'`` uses ``floor(level)``, ``'linear-mipmap-linear'``
blends floor and floor + 1. Mip levels halve each side (sides of 1 stay 1) by 2 x 2 box averages,
the pyramid of ``diffras.textures.mipmap`` (one implementation); a side that is odd and > 1 stops the
pyramid with an error unless ``max_mip_level`` stops it first, as nvdiffrast.

Gradients to tex (and user mip levels), uv, uv_da and mip_level_bias. CPU float32/float64 2D maps run
the fused Numba kernels of ``diffras.nv._texture_numba`` (hand-written backward); cube maps, other
devices and ``fused_kernels(False)`` run the plain-torch path below (gathers and autograd), the reference.
"""
from __future__ import annotations

from typing import Any, List, Optional, Sequence, Union

import torch

from .._validation import check_choice, check_int, check_tensor
from ..raster.fragments import use_fused
from ..textures.mipmap import build_pyramid
from ._cube import cube_face_st, cube_st_derivatives, pad_cube

__all__ = ["MipStack", "texture", "texture_construct_mip"]

FILTER_MODES = ("auto", "nearest", "linear", "linear-mipmap-nearest", "linear-mipmap-linear")
BOUNDARY_MODES = ("wrap", "clamp", "zero", "cube")


class MipStack:
    """Mip levels 1.. of a texture (level 0, the texture itself, is passed to :func:`texture` again)."""

    def __init__(self, levels: List[torch.Tensor], cube: bool):
        self.levels = levels
        self.cube = cube


def _max_levels(h: int, w: int, max_mip_level: Optional[int]) -> int:
    n = 0
    while (h > 1 or w > 1) and (max_mip_level is None or n < max_mip_level):
        if (h > 1 and h % 2) or (w > 1 and w % 2):
            raise ValueError(
                f"tex: mip level {n} has size {h}x{w}, which cannot be halved; pass max_mip_level={n} "
                "(or smaller) to stop the pyramid there, as nvdiffrast requires")
        h, w = max(1, h // 2), max(1, w // 2)
        n += 1
    return n


def _build(tex: torch.Tensor, max_mip_level: Optional[int], cube: bool) -> List[torch.Tensor]:
    """Levels 1..L of tex (B, H, W, C) or cube (B, 6, S, S, C), each as tex's layout."""
    h, w = tex.shape[-3], tex.shape[-2]
    L = _max_levels(h, w, max_mip_level)
    if L == 0:
        return []
    lead = tex.shape[:-3]
    maps = tex.reshape(-1, h, w, tex.shape[-1])
    # One pyramid per (image, face) map, with diffras's 2 x 2 box pyramid.
    per_map = [build_pyramid(m)[1:L + 1] for m in maps.unbind(0)]
    return [torch.stack([p[l] for p in per_map]).reshape(*lead, *per_map[0][l].shape) for l in range(L)]


def texture_construct_mip(tex: torch.Tensor, max_mip_level: Optional[int] = None, cube_mode: bool = False) -> MipStack:
    """Mip stack of ``tex`` for reuse across :func:`texture` calls (``nvdiffrast.torch.texture_construct_mip``).

    Args:
        tex: (N, H, W, C) float, or (N, 6, S, S, C) with ``cube_mode=True``.
        max_mip_level: limit on the number of levels built.
        cube_mode: tex is a cube map.
    """
    check_tensor(tex, "tex", ndim=5 if cube_mode else 4, dtype="float")
    if max_mip_level is not None:
        max_mip_level = check_int(max_mip_level, "max_mip_level", min=0)
    return MipStack(_build(tex, max_mip_level, cube_mode), cube_mode)


def _bilinear(flat: torch.Tensor, base: torch.Tensor, h: Any, w: Any, u: torch.Tensor, v: torch.Tensor, mode: str,
              cube: bool) -> torch.Tensor:
    """Bilinear lookups (P, C) in ``flat`` (texels of all maps, (*, C)) of the (h, w) maps starting at
    ``base`` (per point; a cube face's map is padded to (h + 2, w + 2)), at (u, v) in [0, 1] (cube: within
    the unpadded face). ``h`` and ``w`` are ints or per-point int64 tensors (mip levels differ per point)."""
    hf = torch.as_tensor(h, dtype=u.dtype, device=u.device)
    wf = torch.as_tensor(w, dtype=u.dtype, device=u.device)
    x = u * wf - 0.5
    y = v * hf - 0.5
    if mode == "clamp":
        x = torch.minimum(x.clamp(min=0.0), wf - 1)
        y = torch.minimum(y.clamp(min=0.0), hf - 1)
    x0f, y0f = x.detach().floor(), y.detach().floor()
    fx, fy = (x - x0f)[:, None], (y - y0f)[:, None]
    x0, y0 = x0f.to(torch.int64), y0f.to(torch.int64)
    x1, y1 = x0 + 1, y0 + 1
    hi = torch.as_tensor(h, device=u.device)
    wi = torch.as_tensor(w, device=u.device)

    def tap(yy, xx):
        if cube:
            return flat[base + (yy + 1) * (wi + 2) + (xx + 1)]
        valid = None
        if mode == "wrap":
            yy, xx = torch.remainder(yy, hi), torch.remainder(xx, wi)
        else:
            if mode == "zero":
                valid = (yy >= 0) & (yy < hi) & (xx >= 0) & (xx < wi)
            yy, xx = torch.minimum(yy.clamp(min=0), hi - 1), torch.minimum(xx.clamp(min=0), wi - 1)
        val = flat[base + yy * wi + xx]
        return val if valid is None else val * valid[:, None].to(val.dtype)

    top = tap(y0, x0) * (1 - fx) + tap(y0, x1) * fx
    bot = tap(y1, x0) * (1 - fx) + tap(y1, x1) * fx
    return top * (1 - fy) + bot * fy


def _map_base(level: torch.Tensor, b: torch.Tensor, face: Optional[torch.Tensor]) -> torch.Tensor:
    """Offset of each point's map in ``level.reshape(-1, C)``: image b (and cube face)."""
    hp, wp = level.shape[-3], level.shape[-2]
    return (b * 6 + face) * hp * wp if face is not None else b * hp * wp


def _nearest(level: torch.Tensor, b: torch.Tensor, u: torch.Tensor, v: torch.Tensor, mode: str,
             cube_face: Optional[torch.Tensor] = None) -> torch.Tensor:
    h, w = level.shape[-3], level.shape[-2]
    if cube_face is not None:
        h, w = h - 2, w - 2
    x = (u.detach() * w).floor().to(torch.int64)
    y = (v.detach() * h).floor().to(torch.int64)
    C = level.shape[-1]
    flat = level.reshape(-1, C)
    if cube_face is not None:
        x, y = x.clamp(0, w - 1), y.clamp(0, h - 1)
        return flat[((b * 6 + cube_face) * (h + 2) + y + 1) * (w + 2) + x + 1]
    valid = None
    if mode == "wrap":
        x, y = torch.remainder(x, w), torch.remainder(y, h)
    elif mode == "zero":
        valid = (y >= 0) & (y < h) & (x >= 0) & (x < w)
    x, y = x.clamp(0, w - 1), y.clamp(0, h - 1)
    val = flat[b * h * w + y * w + x]
    return val if valid is None else val * valid[:, None].to(val.dtype)


def texture(
    tex: torch.Tensor, uv: torch.Tensor, uv_da: Optional[torch.Tensor] = None,
    mip_level_bias: Optional[torch.Tensor] = None, mip: Union[None, MipStack, Sequence[torch.Tensor]] = None,
    filter_mode: str = "auto", boundary_mode: str = "wrap", max_mip_level: Optional[int] = None,
) -> torch.Tensor:
    """Sample a texture (``nvdiffrast.torch.texture``).

    Args:
        tex: (N, Ht, Wt, C) float 2D texture, or (N, 6, S, S, C) cube map (``boundary_mode='cube'``);
            N may be 1 to broadcast over uv's minibatch.
        uv: (N, H, W, 2) texture coordinates (s, t), or (N, H, W, 3) directions for a cube map.
        uv_da: optional (N, H, W, 4) (cube: 6) screen derivatives of uv, ``(ds/dX, ds/dY, dt/dX, dt/dY)``.
        mip_level_bias: optional (N, H, W) added to the mip level (the level itself without uv_da).
        mip: a :func:`texture_construct_mip` result or a list of tensors (levels 1.., tex's layout).
        filter_mode: 'auto', 'nearest', 'linear', 'linear-mipmap-nearest' or 'linear-mipmap-linear';
            'auto' is 'linear-mipmap-linear' with uv_da or mip_level_bias, else 'linear'.
        boundary_mode: 'wrap', 'clamp', 'zero' or 'cube'.
        max_mip_level: limit on the mip levels built and used.

    Returns:
        (N, H, W, C) samples. Cube lookups with invalid (zero) directions return zero.
    """
    check_choice(filter_mode, "filter_mode", FILTER_MODES)
    check_choice(boundary_mode, "boundary_mode", BOUNDARY_MODES)
    cube = boundary_mode == "cube"
    check_tensor(tex, "tex", ndim=5 if cube else 4, dtype="float")
    if cube and (tex.shape[1] != 6 or tex.shape[2] != tex.shape[3]):
        raise ValueError(f"tex: expected a cube map of shape (N, 6, S, S, C), got {tuple(tex.shape)}")
    check_tensor(uv, "uv", ndim=4, dtype="float")
    N, H, W, D = uv.shape
    if D != (3 if cube else 2):
        raise ValueError(f"uv: expected last dimension {3 if cube else 2}, got shape {tuple(uv.shape)}")
    if tex.shape[0] not in (1, N):
        raise ValueError(f"tex: expected minibatch size 1 or {N} (uv's), got {tex.shape[0]}")
    if uv_da is not None:
        check_tensor(uv_da, "uv_da", shape=(N, H, W, 2 * D), dtype="float")
    if mip_level_bias is not None:
        check_tensor(mip_level_bias, "mip_level_bias", shape=(N, H, W), dtype="float")
    for name, t in (("uv", uv), ("uv_da", uv_da), ("mip_level_bias", mip_level_bias)):
        if t is not None and t.device != tex.device:
            raise ValueError(f"{name}: expected device {tex.device} (the device of tex), got {t.device}")
    if max_mip_level is not None:
        max_mip_level = check_int(max_mip_level, "max_mip_level", min=0)
    if filter_mode == "auto":
        filter_mode = "linear-mipmap-linear" if (uv_da is not None or mip_level_bias is not None) else "linear"
    mipmapped = filter_mode.startswith("linear-mipmap")
    if mipmapped and uv_da is None and mip_level_bias is None:
        raise ValueError(f"filter_mode: {filter_mode!r} needs uv_da or mip_level_bias to choose the mip level")

    if not cube:
        user = None
        if mipmapped and mip is not None:
            user = list(mip.levels) if isinstance(mip, MipStack) else list(mip)
            user = user[:max_mip_level] if max_mip_level is not None else user
        extra = [x for x in (uv_da, mip_level_bias) if x is not None and mipmapped] + (user or [])
        if use_fused(tex, uv, *extra):
            from ._texture_numba import fused_texture

            build = _max_levels(tex.shape[1], tex.shape[2], max_mip_level) if mipmapped and user is None else 0
            return fused_texture(tex, uv, uv_da if mipmapped else None, mip_level_bias if mipmapped else None,
                                 user or [], build, boundary_mode, filter_mode)

    C = tex.shape[-1]
    b = torch.arange(N, device=tex.device).repeat_interleave(H * W) if tex.shape[0] == N else \
        torch.zeros(N * H * W, dtype=torch.int64, device=tex.device)
    uvf = uv.reshape(-1, D)
    levels = [tex]
    if mipmapped:
        if mip is None:
            levels += _build(tex, max_mip_level, cube)
        else:
            extra = list(mip.levels) if isinstance(mip, MipStack) else list(mip)
            levels += extra[:max_mip_level] if max_mip_level is not None else extra
    if cube:
        face, s, t, valid = cube_face_st(uvf)
        levels = [pad_cube(l) for l in levels]
    else:
        s, t = uvf[:, 0], uvf[:, 1]
        face, valid = None, None
        if boundary_mode == "wrap":
            s, t = s - s.detach().floor(), t - t.detach().floor()
    if not mipmapped and filter_mode == "nearest":
        out = _nearest(levels[0], b, s, t, boundary_mode, face)
    elif not mipmapped:
        h, w = tex.shape[-3], tex.shape[-2]
        out = _bilinear(levels[0].reshape(-1, C), _map_base(levels[0], b, face), h, w, s, t, boundary_mode, cube)
    else:
        out = _mip_sample(levels, b, s, t, boundary_mode, face, uvf, uv_da, mip_level_bias, filter_mode, tex)
    if valid is not None:
        out = out * valid[:, None].to(out.dtype)
    return out.reshape(N, H, W, C)


def _mip_sample(levels, b, s, t, mode, face, uvf, uv_da, bias, filter_mode, tex):
    P = s.shape[0]
    Lmax = len(levels) - 1
    h0, w0 = tex.shape[-3], tex.shape[-2]
    if uv_da is not None:
        da = uv_da.reshape(P, -1)
        if face is not None:
            da = cube_st_derivatives(uvf, da)
        dsdx, dsdy, dtdx, dtdy = da[:, 0] * w0, da[:, 1] * w0, da[:, 2] * h0, da[:, 3] * h0
        A = dsdx * dsdx + dtdx * dtdx
        B = dsdy * dsdy + dtdy * dtdy
        Cc = dsdx * dsdy + dtdx * dtdy
        l2b = 0.5 * (A + B)
        # sqrt of 0 has an infinite derivative; a tiny floor keeps gradients finite at isotropic footprints.
        l2a = torch.sqrt(0.25 * (A - B) ** 2 + Cc * Cc + 1e-30)
        flevel = 0.5 * torch.log2((l2b + l2a).clamp(min=1e-30))
    else:
        flevel = torch.zeros(P, dtype=tex.dtype, device=tex.device)
    if bias is not None:
        flevel = flevel + bias.reshape(P)
    flevel = flevel.clamp(0.0, float(Lmax))
    lvl0 = flevel.detach().floor().to(torch.int64).clamp(max=Lmax)
    frac = flevel - lvl0.to(flevel.dtype)
    # All levels in one flat texel tensor, so each point reads its own level in one vectorised lookup.
    C = tex.shape[-1]
    cube = face is not None
    flat = torch.cat([l.reshape(-1, C) for l in levels])
    sizes = torch.tensor([l.reshape(-1, C).shape[0] for l in levels], device=tex.device)
    offs = torch.cumsum(sizes, 0) - sizes
    pad = 2 if cube else 0
    hs = torch.tensor([l.shape[-3] - pad for l in levels], device=tex.device)
    ws = torch.tensor([l.shape[-2] - pad for l in levels], device=tex.device)

    def at(L):
        h, w = hs[L], ws[L]
        per_map = (h + pad) * (w + pad)
        base = offs[L] + ((b * 6 + face) if cube else b) * per_map
        return _bilinear(flat, base, h, w, s, t, mode, cube)

    out = at(lvl0)
    if filter_mode == "linear-mipmap-linear":
        lvl1 = (lvl0 + 1).clamp(max=Lmax)
        out = out + (at(lvl1) - out) * frac[:, None]  # frac is 0 where clamped at the last level
    return out
