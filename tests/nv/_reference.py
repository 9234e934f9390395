"""Brute-force references for diffras.nv, written to be read: plain Python floats, one pixel at a time."""
from __future__ import annotations

import math

import torch


def _inside(e, a, b, s):
    v = s * e
    if v != 0.0:
        return v > 0.0
    sa = s * a
    return sa > 0.0 or (sa == 0.0 and s * b > 0.0)


def rasterize_reference(pos, tri, H, W, ranges=None):
    """Triangle ids (N, H, W) int64 (1-based, 0 empty) by the rule of diffras.nv._raster_numba."""
    pos = pos.detach().double()
    tri = tri.tolist()
    if pos.dim() == 3:
        N = pos.shape[0]
        jobs = [(pos[n].tolist(), 0, len(tri)) for n in range(N)]
    else:
        p = pos.tolist()
        jobs = [(p, int(s), int(s) + int(c)) for s, c in ranges.tolist()]
    out = torch.zeros(len(jobs), H, W, dtype=torch.int64)
    for n, (P, lo, hi) in enumerate(jobs):
        for i in range(H):
            yn = (2.0 * i + 1.0) / H - 1.0
            for j in range(W):
                xn = (2.0 * j + 1.0) / W - 1.0
                best = None
                for t in range(lo, hi):
                    v = [P[k] for k in tri[t]]
                    coef = []
                    for k in range(3):
                        (x1, y1, _, w1), (x2, y2, _, w2) = v[(k + 1) % 3], v[(k + 2) % 3]
                        coef.append((y1 * w2 - w1 * y2, w1 * x2 - x1 * w2, x1 * y2 - y1 * x2))
                    det = coef[0][2] * v[0][3] + (coef[0][0] * v[0][0] + coef[0][1] * v[0][1])
                    if det == 0.0:
                        continue
                    s = 1.0 if det > 0 else -1.0
                    e = [a * xn + b * yn + c for a, b, c in coef]
                    if not all(_inside(e[k], coef[k][0], coef[k][1], s) for k in range(3)):
                        continue
                    zw = sum(e[k] * v[k][2] for k in range(3)) / det
                    if not -1.0 <= zw <= 1.0:
                        continue
                    if best is None or zw < best[0]:
                        best = (zw, t)
                if best is not None:
                    out[n, i, j] = best[1] + 1
    return out


def screen_barycentrics(pos_tri, xn, yn):
    """Independent float64 (u, v, z/w) at NDC point (xn, yn) of a triangle with all w > 0:
    screen-space barycentrics of the projected corners, then perspective correction."""
    (x0, y0, z0, w0), (x1, y1, z1, w1), (x2, y2, z2, w2) = pos_tri
    X = [x0 / w0, x1 / w1, x2 / w2]
    Y = [y0 / w0, y1 / w1, y2 / w2]
    area = (X[1] - X[0]) * (Y[2] - Y[0]) - (X[2] - X[0]) * (Y[1] - Y[0])
    l0 = ((X[1] - xn) * (Y[2] - yn) - (X[2] - xn) * (Y[1] - yn)) / area
    l1 = ((X[2] - xn) * (Y[0] - yn) - (X[0] - xn) * (Y[2] - yn)) / area
    l2 = 1.0 - l0 - l1
    q = [l0 / w0, l1 / w1, l2 / w2]
    sq = sum(q)
    zw = l0 * z0 / w0 + l1 * z1 / w1 + l2 * z2 / w2
    return q[0] / sq, q[1] / sq, zw


def antialias_reference(color, rast, pos, tri):
    """nvdiffrast's antialias forward rule (module docstring of diffras.nv.antialias), pair by pair."""
    color = color.detach().double()
    N, H, W, C = color.shape
    out = color.clone()
    ids = rast[..., 3].round().long() - 1
    zw = rast[..., 2]
    tl = tri.tolist()
    edges = {}
    for t, (a, b, c) in enumerate(tl):
        for k, (p, q) in enumerate(((b, c), (c, a), (a, b))):
            edges.setdefault((min(p, q), max(p, q)), []).append(tl[t][k])
    P = pos.detach().double()
    for n in range(N):
        Pn = P[n] if P.dim() == 3 else P
        for y in range(H):
            for x in range(W):
                for d, (x1p, y1p) in enumerate(((x + 1, y), (x, y + 1))):
                    if x1p >= W or y1p >= H:
                        continue
                    t0, t1 = int(ids[n, y, x]), int(ids[n, y1p, x1p])
                    if t0 == t1:
                        continue
                    if t0 >= 0 and (t1 < 0 or zw[n, y, x] < zw[n, y1p, x1p]):
                        t, ax, ay, ds = t0, x, y, 1.0
                    else:
                        t, ax, ay, ds = t1, x1p, y1p, -1.0

                    def scr(vi):
                        px, py, _, pw = Pn[vi].tolist()
                        return px / pw * W / 2 + W / 2 - (ax + 0.5), py / pw * H / 2 + H / 2 - (ay + 0.5)

                    V = [scr(vi) for vi in tl[t]]
                    (X0, Y0), (X1, Y1), (X2, Y2) = V
                    bb = (X1 - X0) * (Y2 - Y0) - (X2 - X0) * (Y1 - Y0)
                    best = None
                    for k in range(3):
                        a, b = tl[t][(k + 1) % 3], tl[t][(k + 2) % 3]
                        others = [o for o in edges[(min(a, b), max(a, b))]]
                        opp = [o for o in others if o != tl[t][k]] if len(others) == 2 else []
                        ox, oy = scr(opp[0]) if opp else V[k]
                        (xa, ya), (xb, yb) = V[(k + 1) % 3], V[(k + 2) % 3]
                        wing = (xa - ox) * (yb - oy) - (xb - ox) * (ya - oy)
                        if d == 1:
                            xa, ya, xb, yb = ya, xa, yb, xb
                        if (ya < 0) == (yb < 0):
                            continue
                        dc = ds * (xa * (yb - ya) - ya * (xb - xa)) / (yb - ya)
                        if best is None or dc > best[0]:
                            best = (dc, (wing < 0) == (bb < 0), abs(yb - ya) >= abs(xb - xa))
                    if best is None or not (best[1] and best[2]) or not -0.0625 < best[0] < 1.0625:
                        continue
                    alpha = ds * (0.5 - min(max(best[0], 0.0), 1.0))
                    c0, c1 = color[n, y, x], color[n, y1p, x1p]
                    if alpha > 0:
                        out[n, y, x] += alpha * (c1 - c0)
                    else:
                        out[n, y1p, x1p] += alpha * (c1 - c0)
    return out


def perspective(fovy=math.radians(45), aspect=1.0, near=0.1, far=20.0, dtype=torch.float64):
    """OpenGL projection matrix (as nvdiffrast's samples' util.projection)."""
    f = 1.0 / math.tan(fovy / 2)
    return torch.tensor([[f / aspect, 0, 0, 0], [0, f, 0, 0],
                         [0, 0, -(far + near) / (far - near), -2 * far * near / (far - near)],
                         [0, 0, -1, 0]], dtype=dtype)
