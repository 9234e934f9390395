"""Plain-torch compositing with the same rules as the Numba kernels, for any device (autograd backward).

Tiles are processed in chunks: each chunk's Gaussian lists are padded to the longest one, giving dense
``(tiles, 256 pixels, L)`` alphas; the front-to-back transmittance is a cumulative product (no factor is 0
because alpha <= 0.999), and the exclusive stop ``T * (1 - alpha) <= 1e-4`` keeps exactly the prefix where
the running product is still above 1e-4, because that product never increases.
"""
from __future__ import annotations

import torch

from ._composite_numba import ALPHA_MIN, MAX_ALPHA, T_MIN

# Bound on the dense (tiles x pixels x L) entries per chunk: ~64 MiB per float32 temporary.
_CHUNK_ENTRIES = 1 << 24


def composite_torch(means2d, conics, opacities, colors, backgrounds, isect, n_cameras, width, height):
    """means2d (G, 2), conics (G, 3), opacities (G,), colors (G, D), backgrounds (C, D), G = C * N;
    ``isect`` a ``TileIntersections``. Returns ``(colors (C, H, W, D), alphas (C, H, W, 1))``."""
    ts, tw, th = isect.tile_size, isect.tile_width, isect.tile_height
    dev, dt = means2d.device, means2d.dtype
    D = colors.shape[-1]
    n_tiles = n_cameras * tw * th
    offsets = isect.offsets
    lengths = offsets[1:] - offsets[:-1]
    # Pixel centres of one tile, row-major (ts*ts, 2).
    yy, xx = torch.meshgrid(torch.arange(ts, device=dev), torch.arange(ts, device=dev), indexing="ij")
    local = torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=-1).to(dt) + 0.5
    out_c, out_a = [], []
    j = 0
    while j < n_tiles:
        L = max(int(lengths[j]), 1)
        k = j + 1
        # Grow the chunk while the padded size fits.
        while k < n_tiles and (k - j + 1) * ts * ts * max(L, int(lengths[k])) <= _CHUNK_ENTRIES:
            L = max(L, int(lengths[k]))
            k += 1
        tiles = torch.arange(j, k, device=dev)
        pos = offsets[tiles, None] + torch.arange(L, device=dev)[None]  # (B, L)
        present = pos < offsets[tiles + 1, None]
        g = isect.flatten_ids[pos.clamp(max=max(isect.flatten_ids.numel() - 1, 0))] if isect.flatten_ids.numel() else pos * 0
        g = torch.where(present, g, torch.zeros_like(g))
        t_in_cam = tiles % (tw * th)
        origin = torch.stack([(t_in_cam % tw) * ts, torch.div(t_in_cam, tw, rounding_mode="floor") * ts], -1).to(dt)
        pix = origin[:, None, :] + local[None]  # (B, P, 2)
        d = means2d[g][:, None, :, :] - pix[:, :, None, :]  # (B, P, L, 2)
        con = conics[g][:, None]  # (B, 1, L, 3)
        sigma = 0.5 * (con[..., 0] * d[..., 0] ** 2 + con[..., 2] * d[..., 1] ** 2) + con[..., 1] * d[..., 0] * d[..., 1]
        alpha = torch.clamp(opacities[g][:, None] * torch.exp(-sigma), max=MAX_ALPHA)
        ok = present[:, None] & (sigma >= 0) & (alpha >= ALPHA_MIN)
        alpha = torch.where(ok, alpha, torch.zeros_like(alpha))
        T_after = torch.cumprod(1.0 - alpha, dim=-1)
        keep = T_after > T_MIN
        T_before = torch.cat([torch.ones_like(T_after[..., :1]), T_after[..., :-1]], dim=-1)
        w = torch.where(keep, alpha * T_before, torch.zeros_like(alpha))  # (B, P, L)
        # T after the last kept entry (keep is a prefix), the very product the kernel ends with.
        n_kept = keep.sum(-1, keepdim=True)
        T_last = T_after.gather(-1, (n_kept - 1).clamp(min=0))[..., 0]
        T_final = torch.where(n_kept[..., 0] > 0, T_last, torch.ones_like(T_last))  # (B, P)
        cam = torch.div(tiles, tw * th, rounding_mode="floor")
        col = torch.einsum("bpl,bld->bpd", w, colors[g]) + T_final[..., None] * backgrounds[cam][:, None, :]
        out_c.append(col)
        out_a.append(1.0 - T_final)
        j = k
    col = torch.cat(out_c).reshape(n_cameras, th, tw, ts, ts, D).permute(0, 1, 3, 2, 4, 5)
    alp = torch.cat(out_a).reshape(n_cameras, th, tw, ts, ts).permute(0, 1, 3, 2, 4)
    col = col.reshape(n_cameras, th * ts, tw * ts, D)[:, :height, :width]
    alp = alp.reshape(n_cameras, th * ts, tw * ts)[:, :height, :width, None]
    return col, alp
