"""Numba kernels: front-to-back compositing of depth-sorted Gaussians per tile, and its backward pass.

One parallel task per (camera, tile). A task copies its tile's Gaussians into contiguous local arrays
(cache friendly), keeps each pixel's running state (transmittance, colour, done flag) in local arrays, and
takes the Gaussians front to back, visiting only the pixels inside each one's footprint box
``|px + 0.5 - mean| <= radius``: outside it alpha is below 1/255 whenever the opacity is at most 1, so the
skipped pairs are exactly those the rules would skip (opacities above 1 visit the whole tile). The cost is
thus the composited pairs, not tiles x Gaussians x 256. The rules are gsplat's
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
def _gather(s, e, flatten_ids, means2d, conics, opacities, colors, radii):
    n = e - s
    D = colors.shape[1]
    mx = np.empty(n, means2d.dtype)
    my = np.empty(n, means2d.dtype)
    ca = np.empty(n, means2d.dtype)
    cb = np.empty(n, means2d.dtype)
    cc = np.empty(n, means2d.dtype)
    op = np.empty(n, means2d.dtype)
    rx = np.empty(n, np.float64)
    ry = np.empty(n, np.float64)
    col = np.empty((n, D), colors.dtype)
    for i in range(n):
        g = flatten_ids[s + i]
        mx[i] = means2d[g, 0]
        my[i] = means2d[g, 1]
        ca[i] = conics[g, 0]
        cb[i] = conics[g, 1]
        cc[i] = conics[g, 2]
        op[i] = opacities[g]
        rx[i] = radii[g, 0]
        ry[i] = radii[g, 1]
        for k in range(D):
            col[i, k] = colors[g, k]
    return mx, my, ca, cb, cc, op, rx, ry, col


@numba.njit(cache=True, inline="always")
def _box(mx, my, rx, ry, op, tx0, ty0, tw, th):
    """Pixel range [x0, x1) x [y0, y1), tile-local, whose centres lie in the footprint box."""
    if op > 1.0:
        return 0, tw, 0, th
    x0 = max(0, int(np.ceil(mx - rx - 0.5)) - tx0)
    x1 = min(tw, int(np.floor(mx + rx - 0.5)) - tx0 + 1)
    y0 = max(0, int(np.ceil(my - ry - 0.5)) - ty0)
    y1 = min(th, int(np.floor(my + ry - 0.5)) - ty0 + 1)
    return x0, x1, y0, y1


@numba.njit(parallel=True, cache=True)
def composite_forward(means2d, conics, opacities, colors, radii, backgrounds, flatten_ids, offsets,
                      width, height, tile_size, tile_width, tiles_per_cam,
                      out_colors, out_alphas, out_count):
    """means2d (G, 2), conics (G, 3), opacities (G,), colors (G, D), radii (G, 2) with G = C * N flattened;
    backgrounds (C, D); writes out_colors (C, H, W, D), out_alphas (C, H, W), out_count (C, H, W) = number of
    list entries up to and including the last composited one (0 if none)."""
    n_jobs = offsets.shape[0] - 1
    D = colors.shape[1]
    for job in numba.prange(n_jobs):
        cam = job // tiles_per_cam
        t = job % tiles_per_cam
        ty0 = (t // tile_width) * tile_size
        tx0 = (t % tile_width) * tile_size
        tw = min(tile_size, width - tx0)
        th = min(tile_size, height - ty0)
        s = offsets[job]
        e = offsets[job + 1]
        mx, my, ca, cb, cc, op, rx, ry, col = _gather(s, e, flatten_ids, means2d, conics, opacities, colors, radii)
        n_pix = tw * th
        T = np.ones(n_pix, np.float64)
        acc = np.zeros((n_pix, D), np.float64)
        count = np.zeros(n_pix, np.int64)
        done = np.zeros(n_pix, np.bool_)
        n_done = 0
        for i in range(e - s):
            x0, x1, y0, y1 = _box(mx[i], my[i], rx[i], ry[i], op[i], tx0, ty0, tw, th)
            for ly in range(y0, y1):
                dy = my[i] - (ty0 + ly + 0.5)
                for lx in range(x0, x1):
                    p = ly * tw + lx
                    if done[p]:
                        continue
                    dx = mx[i] - (tx0 + lx + 0.5)
                    sigma = 0.5 * (ca[i] * dx * dx + cc[i] * dy * dy) + cb[i] * dx * dy
                    if sigma < 0.0:
                        continue
                    alpha = min(MAX_ALPHA, op[i] * np.exp(-sigma))
                    if alpha < ALPHA_MIN:
                        continue
                    next_T = T[p] * (1.0 - alpha)
                    if next_T <= T_MIN:  # exclusive stop: this Gaussian is not composited, the pixel ends
                        done[p] = True
                        n_done += 1
                        continue
                    w = alpha * T[p]
                    for k in range(D):
                        acc[p, k] += col[i, k] * w
                    T[p] = next_T
                    count[p] = i + 1
            if n_done == n_pix:
                break
        for ly in range(th):
            for lx in range(tw):
                p = ly * tw + lx
                for k in range(D):
                    out_colors[cam, ty0 + ly, tx0 + lx, k] = acc[p, k] + T[p] * backgrounds[cam, k]
                out_alphas[cam, ty0 + ly, tx0 + lx] = 1.0 - T[p]
                out_count[cam, ty0 + ly, tx0 + lx] = count[p]


@numba.njit(parallel=True, cache=True)
def composite_backward(means2d, conics, opacities, colors, radii, backgrounds, flatten_ids, offsets,
                       width, height, tile_size, tile_width, tiles_per_cam,
                       out_alphas, out_count, v_colors_img, v_alphas_img,
                       v_means2d, v_conics, v_opacities, v_colors):
    """Gradients per intersection row ``r`` (the Gaussian is ``flatten_ids[r]``): v_means2d (M, 2),
    v_conics (M, 3), v_opacities (M,), v_colors (M, D). Walks the Gaussians back to front."""
    n_jobs = offsets.shape[0] - 1
    D = colors.shape[1]
    for job in numba.prange(n_jobs):
        cam = job // tiles_per_cam
        t = job % tiles_per_cam
        ty0 = (t // tile_width) * tile_size
        tx0 = (t % tile_width) * tile_size
        tw = min(tile_size, width - tx0)
        th = min(tile_size, height - ty0)
        s = offsets[job]
        e = offsets[job + 1]
        mx, my, ca, cb, cc, op, rx, ry, col = _gather(s, e, flatten_ids, means2d, conics, opacities, colors, radii)
        n_pix = tw * th
        T = np.empty(n_pix, np.float64)  # transmittance behind the Gaussian being visited
        T_final = np.empty(n_pix, np.float64)
        count = np.empty(n_pix, np.int64)
        bg_term = np.zeros(n_pix, np.float64)
        v_img = np.empty((n_pix, D), np.float64)
        v_a = np.empty(n_pix, np.float64)
        buf = np.zeros((n_pix, D), np.float64)  # colour composited behind the Gaussian being visited
        last = 0
        for ly in range(th):
            for lx in range(tw):
                p = ly * tw + lx
                T_final[p] = 1.0 - out_alphas[cam, ty0 + ly, tx0 + lx]
                T[p] = T_final[p]
                count[p] = out_count[cam, ty0 + ly, tx0 + lx]
                last = max(last, count[p])
                v_a[p] = v_alphas_img[cam, ty0 + ly, tx0 + lx]
                for k in range(D):
                    v_img[p, k] = v_colors_img[cam, ty0 + ly, tx0 + lx, k]
                    bg_term[p] += v_img[p, k] * backgrounds[cam, k]
        g_col = np.empty(D, np.float64)
        for i in range(last - 1, -1, -1):
            x0, x1, y0, y1 = _box(mx[i], my[i], rx[i], ry[i], op[i], tx0, ty0, tw, th)
            g_mx = g_my = g_a = g_b = g_c = g_o = 0.0
            for k in range(D):
                g_col[k] = 0.0
            for ly in range(y0, y1):
                dy = my[i] - (ty0 + ly + 0.5)
                for lx in range(x0, x1):
                    p = ly * tw + lx
                    if i >= count[p]:
                        continue
                    dx = mx[i] - (tx0 + lx + 0.5)
                    sigma = 0.5 * (ca[i] * dx * dx + cc[i] * dy * dy) + cb[i] * dx * dy
                    if sigma < 0.0:
                        continue
                    vis = np.exp(-sigma)
                    alpha = min(MAX_ALPHA, op[i] * vis)
                    if alpha < ALPHA_MIN:
                        continue
                    ra = 1.0 / (1.0 - alpha)
                    Ti = T[p] * ra  # transmittance in front of Gaussian i
                    w = alpha * Ti
                    # d out / d alpha_i = c_i T_i - (colour behind i + T_final * bg) / (1 - alpha_i);
                    # d (1 - T_final) / d alpha_i = T_final / (1 - alpha_i)
                    v_alpha = (v_a[p] - bg_term[p]) * T_final[p] * ra
                    for k in range(D):
                        g_col[k] += w * v_img[p, k]
                        v_alpha += v_img[p, k] * (col[i, k] * Ti - buf[p, k] * ra)
                        buf[p, k] += col[i, k] * w
                    T[p] = Ti
                    if op[i] * vis <= MAX_ALPHA:  # a clamped alpha has no gradient
                        v_sigma = -op[i] * vis * v_alpha
                        g_a += 0.5 * v_sigma * dx * dx
                        g_b += v_sigma * dx * dy
                        g_c += 0.5 * v_sigma * dy * dy
                        g_mx += v_sigma * (ca[i] * dx + cb[i] * dy)
                        g_my += v_sigma * (cb[i] * dx + cc[i] * dy)
                        g_o += vis * v_alpha
            r = s + i
            v_means2d[r, 0] = g_mx
            v_means2d[r, 1] = g_my
            v_conics[r, 0] = g_a
            v_conics[r, 1] = g_b
            v_conics[r, 2] = g_c
            v_opacities[r] = g_o
            for k in range(D):
                v_colors[r, k] = g_col[k]
