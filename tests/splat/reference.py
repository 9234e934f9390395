"""A brute-force Gaussian-splatting reference: tiny, literal, obviously correct (tests only).

Written from gsplat's rules (docs/splatting.md), one camera, one Gaussian and one pixel at a time with torch
scalars, so autograd differentiates it too. Independent of diffras.splat's code on purpose.
"""
import math

import torch


def _rotmat(q):
    w, x, y, z = q / torch.sqrt((q * q).sum())
    return torch.stack([
        torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)]),
        torch.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)]),
        torch.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]),
    ])


def _sh(deg, d, c):
    """SH of degree <= 3 for one direction d (3,) and coefficients c (K, 3), literal formulas."""
    x, y, z = d / torch.sqrt((d * d).sum())
    Y = [0.28209479177387814 + 0 * x]
    if deg >= 1:
        Y += [-0.4886025119029199 * y, 0.4886025119029199 * z, -0.4886025119029199 * x]
    if deg >= 2:
        Y += [1.0925484305920792 * x * y, -1.0925484305920792 * y * z, 0.31539156525252005 * (2 * z * z - x * x - y * y),
              -1.0925484305920792 * x * z, 0.5462742152960396 * (x * x - y * y)]
    if deg >= 3:
        Y += [-0.5900435899266435 * y * (3 * x * x - y * y), 2.890611442640554 * x * y * z,
              -0.4570457994644658 * y * (4 * z * z - x * x - y * y), 0.3731763325901154 * z * (2 * z * z - 3 * x * x - 3 * y * y),
              -0.4570457994644658 * x * (4 * z * z - x * x - y * y), 1.445305721320277 * z * (x * x - y * y),
              -0.5900435899266435 * x * (x * x - 3 * y * y)]
    return sum(Y[k] * c[k] for k in range(len(Y)))


def reference_rasterization(means, quats, scales, opacities, colors, viewmats, Ks, width, height,
                            near_plane=0.01, far_plane=1e10, eps2d=0.3, sh_degree=None, backgrounds=None,
                            render_mode="RGB", rasterize_mode="classic", tile_size=16):
    """Same arguments as diffras.splat.rasterization (colors (N, D) or SH (N, K, 3)); returns
    (colors (C, H, W, D'), alphas (C, H, W, 1), radii (C, N, 2))."""
    C, N = viewmats.shape[0], means.shape[0]
    images, alphas, all_radii = [], [], []
    for c in range(C):
        Rv, tv = viewmats[c, :3, :3], viewmats[c, :3, 3]
        fx, fy, cx, cy = Ks[c, 0, 0], Ks[c, 1, 1], Ks[c, 0, 2], Ks[c, 1, 2]
        campos = torch.linalg.inv(viewmats[c])[:3, 3]  # gsplat's camera centre (differentiated as a general inverse)
        splats, radii = [], []
        for n in range(N):
            p = Rv @ means[n] + tv
            x, y, z = p
            radii.append((0, 0))
            if not (near_plane <= float(z.detach()) <= far_plane):
                continue
            M = _rotmat(quats[n]) @ torch.diag(scales[n])
            cov = Rv @ (M @ M.T) @ Rv.T
            lxp = (width - cx) / fx + 0.3 * 0.5 * width / fx
            lxn = cx / fx + 0.3 * 0.5 * width / fx
            lyp = (height - cy) / fy + 0.3 * 0.5 * height / fy
            lyn = cy / fy + 0.3 * 0.5 * height / fy
            tx = z * torch.clamp(x / z, -lxn, lxp)
            ty = z * torch.clamp(y / z, -lyn, lyp)
            zero = 0 * z
            J = torch.stack([torch.stack([fx / z, zero, -fx * tx / z ** 2]), torch.stack([zero, fy / z, -fy * ty / z ** 2])])
            S = J @ cov @ J.T
            det0 = S[0, 0] * S[1, 1] - S[0, 1] ** 2
            S = S + eps2d * torch.eye(2, dtype=S.dtype)
            det = S[0, 0] * S[1, 1] - S[0, 1] ** 2
            if float(det) <= 0:
                continue
            o = opacities[n]
            if rasterize_mode == "antialiased":
                o = o * torch.sqrt(torch.clamp(det0 / det, min=0))
            if float(o) < 1 / 255:
                continue
            ext = min(3.33, math.sqrt(2 * math.log(float(o) * 255)))
            rx, ry = math.ceil(ext * math.sqrt(float(S[0, 0]))), math.ceil(ext * math.sqrt(float(S[1, 1])))
            u, v = fx * x / z + cx, fy * y / z + cy
            if float(u) + rx <= 0 or float(u) - rx >= width or float(v) + ry <= 0 or float(v) - ry >= height:
                continue
            if rx <= 0 and ry <= 0:
                continue
            radii[-1] = (rx, ry)
            if sh_degree is None:
                col = colors[n]
            else:
                col = torch.clamp_min(_sh(sh_degree, means[n] - campos, colors[n]) + 0.5, 0.0)
            if render_mode in ("D", "ED"):
                col = z[None]
            elif render_mode in ("RGB+D", "RGB+ED"):
                col = torch.cat([col, z[None]])
            tiles = (math.floor(float(u) / tile_size - rx / tile_size), math.ceil(float(u) / tile_size + rx / tile_size),
                     math.floor(float(v) / tile_size - ry / tile_size), math.ceil(float(v) / tile_size + ry / tile_size))
            splats.append((float(z), n, u, v, torch.linalg.inv(S), o, col, tiles))
        splats.sort(key=lambda s: (s[0], s[1]))  # front to back, ties by index
        D = splats[0][6].shape[0] if splats else (1 if render_mode in ("D", "ED") else colors.shape[-1] + ("+" in render_mode))
        bg = torch.zeros(D, dtype=means.dtype)  # the depth channel's background is 0
        if backgrounds is not None and render_mode not in ("D", "ED"):
            bg = torch.cat([backgrounds[c], bg])[:D]
        img, alp = [], []
        for i in range(height):
            row_c, row_a = [], []
            for j in range(width):
                px, py = j + 0.5, i + 0.5
                T = torch.ones((), dtype=means.dtype)
                out = torch.zeros(D, dtype=means.dtype)
                for _, _, u, v, con, o, col, (tx0, tx1, ty0, ty1) in splats:
                    if not (tx0 <= j // tile_size < tx1 and ty0 <= i // tile_size < ty1):
                        continue  # this tile's list does not hold the Gaussian
                    dx, dy = u - px, v - py
                    sigma = 0.5 * (con[0, 0] * dx * dx + con[1, 1] * dy * dy) + con[0, 1] * dx * dy
                    if float(sigma) < 0:
                        continue
                    alpha = torch.clamp(o * torch.exp(-sigma), max=0.999)
                    if float(alpha) < 1 / 255:
                        continue
                    if float(T * (1 - alpha)) <= 1e-4:
                        break
                    out = out + col * alpha * T
                    T = T * (1 - alpha)
                row_c.append(out + T * bg)
                row_a.append(1 - T)
            img.append(torch.stack(row_c))
            alp.append(torch.stack(row_a))
        image, alpha = torch.stack(img), torch.stack(alp)[..., None]
        if render_mode in ("ED", "RGB+ED"):
            image = torch.cat([image[..., :-1], image[..., -1:] / alpha.clamp(min=1e-10)], -1)
        images.append(image)
        alphas.append(alpha)
        all_radii.append(torch.tensor(radii, dtype=torch.int32))
    return torch.stack(images), torch.stack(alphas), torch.stack(all_radii)
