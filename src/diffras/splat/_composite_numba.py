"""Numba kernels: front-to-back compositing of depth-sorted Gaussians per tile, and its backward pass.

One parallel task per (camera, tile). A task copies its tile's Gaussians into contiguous local arrays
(cache friendly), then walks each pixel of the tile through them. The rules are gsplat's
``rasterize_to_pixels`` (see ``diffras.splat.rasterization``). The backward pass walks each pixel's list in
reverse from its last composited Gaussian, recovering the transmittance by division, as 3DGS does; it writes
one gradient row per (tile, Gaussian) intersection, so parallel tasks never write to the same memory, and
the caller sums the rows per Gaussian.
"""
from __future__ import annotations

import numba
import numpy as np

MAX_ALPHA = 0.999
ALPHA_MIN = 1.0 / 255.0
T_MIN = 1e-4


@numba.njit(cache=True, inline="always")
def _gather(s, e, flatten_ids, means2d, conics, opacities, colors):
    n = e - s
    D = colors.shape[1]
    mx = np.empty(n, means2d.dtype)
    my = np.empty(n, means2d.dtype)
    ca = np.empty(n, means2d.dtype)
    cb = np.empty(n, means2d.dtype)
    cc = np.empty(n, means2d.dtype)
    op = np.empty(n, means2d.dtype)
    col = np.empty((n, D), colors.dtype)
    for i in range(n):
        g = flatten_ids[s + i]
        mx[i] = means2d[g, 0]
        my[i] = means2d[g, 1]
        ca[i] = conics[g, 0]
        cb[i] = conics[g, 1]
        cc[i] = conics[g, 2]
        op[i] = opacities[g]
        for k in range(D):
            col[i, k] = colors[g, k]
    return mx, my, ca, cb, cc, op, col


@numba.njit(parallel=True, cache=True)
def composite_forward(means2d, conics, opacities, colors, backgrounds, flatten_ids, offsets,
                      width, height, tile_size, tile_width, tiles_per_cam,
                      out_colors, out_alphas, out_count):
    """means2d (G, 2), conics (G, 3), opacities (G,), colors (G, D) with G = C * N flattened;
    backgrounds (C, D); writes out_colors (C, H, W, D), out_alphas (C, H, W), out_count (C, H, W) = number of
    list entries up to and including the last composited one (0 if none)."""
    n_jobs = offsets.shape[0] - 1
    D = colors.shape[1]
    for job in numba.prange(n_jobs):
        cam = job // tiles_per_cam
        t = job % tiles_per_cam
        ty0 = (t // tile_width) * tile_size
        tx0 = (t % tile_width) * tile_size
        s = offsets[job]
        e = offsets[job + 1]
        mx, my, ca, cb, cc, op, col = _gather(s, e, flatten_ids, means2d, conics, opacities, colors)
        acc = np.empty(D, colors.dtype)
        for py in range(ty0, min(ty0 + tile_size, height)):
            fy = py + 0.5
            for px in range(tx0, min(tx0 + tile_size, width)):
                fx = px + 0.5
                T = 1.0
                last = 0
                for k in range(D):
                    acc[k] = 0.0
                for i in range(e - s):
                    dx = mx[i] - fx
                    dy = my[i] - fy
                    sigma = 0.5 * (ca[i] * dx * dx + cc[i] * dy * dy) + cb[i] * dx * dy
                    if sigma < 0.0:
                        continue
                    alpha = min(MAX_ALPHA, op[i] * np.exp(-sigma))
                    if alpha < ALPHA_MIN:
                        continue
                    next_T = T * (1.0 - alpha)
                    if next_T <= T_MIN:  # exclusive stop: this Gaussian is not composited
                        break
                    w = alpha * T
                    for k in range(D):
                        acc[k] += col[i, k] * w
                    T = next_T
                    last = i + 1
                for k in range(D):
                    out_colors[cam, py, px, k] = acc[k] + T * backgrounds[cam, k]
                out_alphas[cam, py, px] = 1.0 - T
                out_count[cam, py, px] = last


@numba.njit(parallel=True, cache=True)
def composite_backward(means2d, conics, opacities, colors, backgrounds, flatten_ids, offsets,
                       width, height, tile_size, tile_width, tiles_per_cam,
                       out_alphas, out_count, v_colors_img, v_alphas_img,
                       v_means2d, v_conics, v_opacities, v_colors):
    """Gradients per intersection row ``r`` (the Gaussian is ``flatten_ids[r]``): v_means2d (M, 2),
    v_conics (M, 3), v_opacities (M,), v_colors (M, D), zero-initialised by the caller."""
    n_jobs = offsets.shape[0] - 1
    D = colors.shape[1]
    for job in numba.prange(n_jobs):
        cam = job // tiles_per_cam
        t = job % tiles_per_cam
        ty0 = (t // tile_width) * tile_size
        tx0 = (t % tile_width) * tile_size
        s = offsets[job]
        e = offsets[job + 1]
        mx, my, ca, cb, cc, op, col = _gather(s, e, flatten_ids, means2d, conics, opacities, colors)
        buf = np.empty(D, colors.dtype)
        for py in range(ty0, min(ty0 + tile_size, height)):
            fy = py + 0.5
            for px in range(tx0, min(tx0 + tile_size, width)):
                fx = px + 0.5
                T_final = 1.0 - out_alphas[cam, py, px]
                T = T_final
                v_a_img = v_alphas_img[cam, py, px]
                bg_term = 0.0
                for k in range(D):
                    buf[k] = 0.0
                    bg_term += v_colors_img[cam, py, px, k] * backgrounds[cam, k]
                for i in range(out_count[cam, py, px] - 1, -1, -1):
                    dx = mx[i] - fx
                    dy = my[i] - fy
                    sigma = 0.5 * (ca[i] * dx * dx + cc[i] * dy * dy) + cb[i] * dx * dy
                    if sigma < 0.0:
                        continue
                    vis = np.exp(-sigma)
                    alpha = min(MAX_ALPHA, op[i] * vis)
                    if alpha < ALPHA_MIN:
                        continue
                    ra = 1.0 / (1.0 - alpha)
                    T = T * ra  # transmittance in front of Gaussian i
                    w = alpha * T
                    # d out / d alpha_i = c_i T_i - (colour behind i + T_final * bg) / (1 - alpha_i)
                    v_alpha = v_a_img * T_final * ra - bg_term * T_final * ra
                    r = s + i
                    for k in range(D):
                        vc = v_colors_img[cam, py, px, k]
                        v_colors[r, k] += w * vc
                        v_alpha += vc * (col[i, k] * T - buf[k] * ra)
                        buf[k] += col[i, k] * w
                    if op[i] * vis <= MAX_ALPHA:  # clamped alpha has no gradient
                        v_sigma = -op[i] * vis * v_alpha
                        v_conics[r, 0] += 0.5 * v_sigma * dx * dx
                        v_conics[r, 1] += v_sigma * dx * dy
                        v_conics[r, 2] += 0.5 * v_sigma * dy * dy
                        v_means2d[r, 0] += v_sigma * (ca[i] * dx + cb[i] * dy)
                        v_means2d[r, 1] += v_sigma * (cb[i] * dx + cc[i] * dy)
                        v_opacities[r] += vis * v_alpha
