"""Fused CPU kernel: trilinear volume sampling + emission-absorption compositing along each ray.

The plain-torch path (``VolumeSampler`` then ``EmissionAbsorptionRaymarcher``) materialises the ray
points (B, R, P, 3), the sampled densities and features (B, R, P, 1 + C) and every compositing
intermediate, and ``grid_sample``'s backward runs per batch entry. This kernel marches each ray once,
sampling and compositing as it goes, and a hand-written backward recomputes the samples per ray and
scatters the gradients into the voxel grids (and, when asked, into the rays). Semantics are exactly the
torch path's with ``sample_mode="bilinear"``, ``padding_mode="zeros"``, one density channel;
``tests/implicit/test_fused_volume.py`` checks values and gradients against it.

Parallelism: the forward over rays; the backward over batch entries (each owns its gradient grid, so
no two threads write the same voxel), so a single view's backward runs on one thread.
"""
from __future__ import annotations

import math

import numba
import numpy as np
import torch

__all__ = ["volume_emission_absorption"]


@numba.njit(cache=True, inline="always")
def _corners(x, y, z, W, H, D, align, ci, cw, cd):
    """The 8 trilinear corners of local point (x, y, z): flat voxel indices ``ci`` (-1 outside the
    grid), weights ``cw`` and the weights' derivatives w.r.t. x, y, z in ``cd`` (8, 3). Returns
    False if no corner is inside (zero padding: the sample is 0 and has no gradient)."""
    if align:
        ix, iy, iz = (x + 1.0) * 0.5 * (W - 1), (y + 1.0) * 0.5 * (H - 1), (z + 1.0) * 0.5 * (D - 1)
        sx, sy, sz = 0.5 * (W - 1), 0.5 * (H - 1), 0.5 * (D - 1)
    else:
        ix, iy, iz = ((x + 1.0) * W - 1.0) * 0.5, ((y + 1.0) * H - 1.0) * 0.5, ((z + 1.0) * D - 1.0) * 0.5
        sx, sy, sz = 0.5 * W, 0.5 * H, 0.5 * D
    if not (ix > -1.0 and ix < W and iy > -1.0 and iy < H and iz > -1.0 and iz < D):
        return False
    x0, y0, z0 = math.floor(ix), math.floor(iy), math.floor(iz)
    fx, fy, fz = ix - x0, iy - y0, iz - z0
    n = 0
    for dz in range(2):
        wz = fz if dz else 1.0 - fz
        gz = sz if dz else -sz
        zi = int(z0) + dz
        for dy in range(2):
            wy = fy if dy else 1.0 - fy
            gy = sy if dy else -sy
            yi = int(y0) + dy
            for dx in range(2):
                wx = fx if dx else 1.0 - fx
                gx = sx if dx else -sx
                xi = int(x0) + dx
                inside = 0 <= xi < W and 0 <= yi < H and 0 <= zi < D
                ci[n] = (zi * H + yi) * W + xi if inside else -1
                cw[n] = wx * wy * wz
                cd[n, 0] = gx * wy * wz
                cd[n, 1] = wx * gy * wz
                cd[n, 2] = wx * wy * gz
                n += 1
    return True


@numba.njit(cache=True, inline="always")
def _sample(grid, b, ci, cw, fk):
    """Density at the corners ``ci`` / ``cw`` of volume b of the channels-last ``grid`` (Bv, V, 1 + C);
    features into ``fk`` (C,)."""
    d = 0.0
    fk[:] = 0.0
    for n in range(8):
        i = ci[n]
        if i >= 0:
            d += cw[n] * grid[b, i, 0]
            for c in range(fk.shape[0]):
                fk[c] += cw[n] * grid[b, i, c + 1]
    return d


@numba.njit(parallel=True, cache=True)
def _forward(grid, bidx, W, H, D, orig, dirs, lengths, shift, eps, align, out, dminmax):
    """grid (Bv, V, 1 + C): density then features of each voxel (channels last, so that a corner is one
    cache line); the volume of ray batch b is ``bidx[b]``; orig, dirs
    (B, R, 3), lengths (B, R, P) local. out (B, R, C + 1); dminmax (B, R, 2) sample density range."""
    B, R, P = lengths.shape
    C = grid.shape[2] - 1
    dtype = grid.dtype
    for t in numba.prange(B * R):
        b, r = t // R, t % R
        v = bidx[b]
        ci = np.empty(8, np.int64)
        cw = np.empty(8, dtype)
        cd = np.empty((8, 3), dtype)
        fk = np.empty(C, dtype)
        hist = np.empty(max(P, 1), dtype)  # hist[k] = prod_{j <= k} (1 + eps - d_j)
        acc = np.zeros(C, dtype)
        cum, trans = 1.0, 1.0
        lo, hi = np.inf, -np.inf
        for k in range(P):
            l = lengths[b, r, k]
            if _corners(orig[b, r, 0] + l * dirs[b, r, 0], orig[b, r, 1] + l * dirs[b, r, 1],
                        orig[b, r, 2] + l * dirs[b, r, 2], W, H, D, align, ci, cw, cd):
                d = _sample(grid, v, ci, cw, fk)
            else:
                d = 0.0
                fk[:] = 0.0
            lo, hi = min(lo, d), max(hi, d)
            a = hist[k - shift] if k >= shift else 1.0
            w = d * a
            for c in range(C):
                acc[c] += w * fk[c]
            cum *= 1.0 + eps - d
            hist[k] = cum
            trans *= 1.0 - d
        for c in range(C):
            out[b, r, c] = acc[c]
        out[b, r, C] = 1.0 - trans
        dminmax[b, r, 0], dminmax[b, r, 1] = lo, hi


@numba.njit(parallel=True, cache=True)
def _backward(grid, bidx, W, H, D, orig, dirs, lengths, shift, eps, align, gout, ray_grads,
              g_grid, g_orig, g_dirs, g_len):
    """Gradients of ``_forward``: g_grid (B, V, 1 + C) per ray batch entry (summed by autograd where the
    volumes were broadcast); ray gradients only if ``ray_grads``."""
    B, R, P = lengths.shape
    C = grid.shape[2] - 1
    dtype = grid.dtype
    for b in numba.prange(B):
        v = bidx[b]
        ci = np.empty(8, np.int64)
        cw = np.empty(8, dtype)
        cd = np.empty((8, 3), dtype)
        fk = np.empty(C, dtype)
        d = np.empty(P, dtype)
        f = np.empty((P, C), dtype)
        absorb = np.empty(P, dtype)
        pre_c = np.empty(P, dtype)   # prod_{j < k} (1 + eps - d_j)
        pre_q = np.empty(P, dtype)   # prod_{j < k} (1 - d_j)
        gd = np.empty(P, dtype)
        for r in range(R):
            for k in range(P):
                l = lengths[b, r, k]
                if _corners(orig[b, r, 0] + l * dirs[b, r, 0], orig[b, r, 1] + l * dirs[b, r, 1],
                            orig[b, r, 2] + l * dirs[b, r, 2], W, H, D, align, ci, cw, cd):
                    d[k] = _sample(grid, v, ci, cw, fk)
                else:
                    d[k] = 0.0
                    fk[:] = 0.0
                f[k] = fk
            cum_c, cum_q = 1.0, 1.0
            for k in range(P):
                pre_c[k], pre_q[k] = cum_c, cum_q
                cum_c *= 1.0 + eps - d[k]
                cum_q *= 1.0 - d[k]
            for k in range(P):
                # absorption_k = prod_{j <= k - shift} c_j = pre_c[k - shift + 1]
                absorb[k] = pre_c[k - shift + 1] if k >= shift else 1.0
            g_o = gout[b, r, C]
            # d absorption_m / d d_k = -prod_{j <= m - shift, j != k} c_j (k <= m - shift): summed over m with
            # s_k = a_{k+shift} + c_{k+1} s_{k+1}, a_m = (gF . f_m) d_m; no division by c_k (it may be ~eps).
            s_next, suf_q = 0.0, 1.0
            for k in range(P - 1, -1, -1):
                gf_dot = 0.0
                for c in range(C):
                    gf_dot += gout[b, r, c] * f[k, c]
                m = k + shift
                a_m = 0.0
                if m < P:
                    for c in range(C):
                        a_m += gout[b, r, c] * f[m, c]
                    a_m *= d[m]
                s_k = a_m + ((1.0 + eps - d[k + 1]) * s_next if k + 1 < P else 0.0)
                gd[k] = gf_dot * absorb[k] - pre_c[k] * s_k + g_o * pre_q[k] * suf_q
                s_next = s_k
                suf_q *= 1.0 - d[k]
            gdir0 = gdir1 = gdir2 = 0.0
            go0 = go1 = go2 = 0.0
            for k in range(P):
                l = lengths[b, r, k]
                if not _corners(orig[b, r, 0] + l * dirs[b, r, 0], orig[b, r, 1] + l * dirs[b, r, 1],
                                orig[b, r, 2] + l * dirs[b, r, 2], W, H, D, align, ci, cw, cd):
                    if ray_grads:
                        g_len[b, r, k] = 0.0
                    continue
                wk = d[k] * absorb[k]
                gp0 = gp1 = gp2 = 0.0
                for n in range(8):
                    i = ci[n]
                    if i < 0:
                        continue
                    g_grid[b, i, 0] += cw[n] * gd[k]
                    val = gd[k] * grid[v, i, 0]
                    for c in range(C):
                        gfc = gout[b, r, c] * wk
                        g_grid[b, i, c + 1] += cw[n] * gfc
                        val += gfc * grid[v, i, c + 1]
                    gp0 += cd[n, 0] * val
                    gp1 += cd[n, 1] * val
                    gp2 += cd[n, 2] * val
                if ray_grads:
                    go0 += gp0
                    go1 += gp1
                    go2 += gp2
                    gdir0 += l * gp0
                    gdir1 += l * gp1
                    gdir2 += l * gp2
                    g_len[b, r, k] = gp0 * dirs[b, r, 0] + gp1 * dirs[b, r, 1] + gp2 * dirs[b, r, 2]
            if ray_grads:
                g_orig[b, r, 0], g_orig[b, r, 1], g_orig[b, r, 2] = go0, go1, go2
                g_dirs[b, r, 0], g_dirs[b, r, 1], g_dirs[b, r, 2] = gdir0, gdir1, gdir2


def _grid(dens: torch.Tensor, feats: torch.Tensor):
    """Channels-last numpy grid (Bv, V, 1 + C) and the (B,) volume index of each batch entry. A batch
    broadcast with stride 0 (``grid[None].expand(B, ...)``, the tutorials' pattern) is packed once,
    not B times."""
    B = dens.shape[0]
    if B > 1 and dens.stride(0) == 0 and feats.stride(0) == 0:
        dens, feats, bidx = dens[:1], feats[:1], np.zeros(B, np.int64)
    else:
        bidx = np.arange(B, dtype=np.int64)
    both = torch.cat((dens.detach(), feats.detach()), 1)
    return both.reshape(both.shape[0], both.shape[1], -1).transpose(1, 2).contiguous().numpy(), bidx


class _VolumeEA(torch.autograd.Function):
    @staticmethod
    def forward(ctx, dens, feats, orig, dirs, lengths, shift, eps, align):
        D, H, W = dens.shape[2:]
        grid, bidx = _grid(dens, feats)
        o, di, le = (t.detach().contiguous().numpy() for t in (orig, dirs, lengths))
        B, R, P = lengths.shape
        out = np.empty((B, R, grid.shape[2]), grid.dtype)
        dminmax = np.empty((B, R, 2), grid.dtype)
        _forward(grid, bidx, W, H, D, o, di, le, shift, eps, align, out, dminmax)
        ctx.save_for_backward(dens, feats, orig, dirs, lengths)
        ctx.arrays = (grid, bidx, o, di, le)
        ctx.sizes, ctx.shift, ctx.eps, ctx.align = (W, H, D), shift, eps, align
        dminmax = torch.from_numpy(dminmax)
        ctx.mark_non_differentiable(dminmax)
        return torch.from_numpy(out), dminmax

    @staticmethod
    def backward(ctx, gout, _unused):
        dens, feats, orig, dirs, lengths = ctx.saved_tensors
        grid, bidx, o, di, le = ctx.arrays
        W, H, D = ctx.sizes
        B = lengths.shape[0]
        ray_grads = any(ctx.needs_input_grad[2:5])
        g_grid = np.zeros((B, D * H * W, grid.shape[2]), grid.dtype)
        shape_r = o.shape if ray_grads else (0, 0, 0)
        g_orig, g_dirs = np.zeros(shape_r, grid.dtype), np.zeros(shape_r, grid.dtype)
        g_len = np.zeros(le.shape if ray_grads else (0, 0, 0), grid.dtype)
        g = gout.detach().contiguous().numpy()
        _backward(grid, bidx, W, H, D, o, di, le, ctx.shift, ctx.eps, ctx.align, g, ray_grads, g_grid, g_orig, g_dirs, g_len)
        g_all = torch.from_numpy(g_grid).transpose(1, 2).reshape(B, grid.shape[2], D, H, W)
        gd = g_all[:, :1] if ctx.needs_input_grad[0] else None
        gf = g_all[:, 1:] if ctx.needs_input_grad[1] else None
        ray = [torch.from_numpy(a) if need else None for a, need in zip((g_orig, g_dirs, g_len), ctx.needs_input_grad[2:5])]
        return (gd, gf, *ray, None, None, None)


def volume_emission_absorption(densities, features, origins, directions, lengths, shift: int, eps: float, align_corners: bool):
    """densities (B, 1, D, H, W), features (B, C, D, H, W), local-frame rays: origins / directions
    (B, R, 3), lengths (B, R, P), one dtype (float32 or float64), CPU -> ((B, R, C + 1) features and
    opacity, (B, R, 2) min and max sampled density)."""
    return _VolumeEA.apply(densities, features, origins, directions, lengths, int(shift), float(eps), bool(align_corners))
