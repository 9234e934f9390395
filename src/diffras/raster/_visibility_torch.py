"""The ``"torch"`` visibility backend: vectorised over (face, pixel) candidate pairs, any device.

Each surviving face of each image contributes the pixels whose centre lies in its bounding box grown
by ``sqrt(blur_radius)``; those candidate pairs are evaluated in chunks of at most ``CHUNK`` pairs
(memory stays bounded however large the scene: never pixels x faces), with exactly the float64
expressions of the rule in ``diffras.raster.visibility``. The kept (pixel, depth, face) triples are
reduced to the K nearest per pixel by three stable sorts (face, then depth, then pixel) and a rank
within each pixel, whenever they pile up and once at the end.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Iterator, List, Tuple

import torch

from ._rule import CLIP_SUM_MIN, EPS, edge as _edge, pixel_center

if TYPE_CHECKING:
    from .settings import RasterSettings

# Candidate (face, pixel) pairs evaluated at once; each holds ~20 float64 temporaries.
CHUNK = 1 << 20


def _len2(ax, ay, bx, by):
    dx = bx - ax
    dy = by - ay
    return dx * dx + dy * dy


def _seg_dist2(px, py, ax, ay, bx, by, e):
    dx = bx - ax
    dy = by - ay
    l2 = dx * dx + dy * dy
    s = dx * (px - ax) + dy * (py - ay)
    ux, uy = px - ax, py - ay
    da = ux * ux + uy * uy
    ux, uy = px - bx, py - by
    db = ux * ux + uy * uy
    mid = e * e / l2
    out = torch.where(s < l2, mid, db)
    out = torch.where(s <= 0.0, da, out)
    return torch.where(l2 > EPS, out, db)


Entries = Tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def _keep_k_nearest(pix: torch.Tensor, z: torch.Tensor, f: torch.Tensor, K: int) -> Entries:
    """The entries of rank < K within each pixel when ordered by (depth, face)."""
    idx = torch.argsort(f, stable=True)
    idx = idx[torch.argsort(z[idx], stable=True)]
    idx = idx[torch.argsort(pix[idx], stable=True)]
    ps = pix[idx]
    start = torch.searchsorted(ps, ps, right=False)
    rank = torch.arange(ps.numel(), device=ps.device) - start
    sel = idx[rank < K]
    return pix[sel], z[sel], f[sel]


def _reduce(kept: List[Entries], K: int) -> List[Entries]:
    return [_keep_k_nearest(*(torch.cat(t) for t in zip(*kept)), K)] if kept else []


def candidate_chunks(
    sel: torch.Tensor, i0: torch.Tensor, j0: torch.Tensor, count: torch.Tensor, wcount: torch.Tensor, chunk: int
) -> Iterator[Tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """The candidate (item, pixel) pairs of the torch backends (faces here, points in ``diffras.points``),
    ``chunk`` pairs at a time, item-major: item ``sel[k]`` contributes the ``count[k]`` pixels of its box,
    rows from ``i0[sel[k]]`` and ``wcount[k]`` columns from ``j0[sel[k]]``, row by row (an item may straddle
    chunks). Yields ``(g, i, j)``: item, pixel row and column of each pair, (C,) int64."""
    ends = torch.cumsum(count, 0)
    n_cand = int(ends[-1]) if ends.numel() else 0
    for c_lo in range(0, n_cand, chunk):
        cand = torch.arange(c_lo, min(c_lo + chunk, n_cand), device=sel.device)
        k = torch.searchsorted(ends, cand, right=True)
        local = cand - (ends[k] - count[k])
        g = sel[k]
        wc = wcount[k]
        yield g, i0[g] + local // wc, j0[g] + local % wc


def scatter_k_nearest(out: torch.Tensor, kept: List[Entries], K: int) -> None:
    """Write the K nearest of the ``kept`` (pixel, depth, index) entries into ``out`` (pixels, K) int64,
    nearest first, by (depth, index)."""
    for pix, _, f in _reduce(kept, K):
        start = torch.searchsorted(pix, pix, right=False)
        rank = torch.arange(pix.numel(), device=pix.device) - start
        out[pix, rank] = f


def rasterize_torch(
    face_verts: torch.Tensor, first: torch.Tensor, num: torch.Tensor, settings: "RasterSettings", K: int
) -> torch.Tensor:
    """The (N, H, W, K) int64 K-nearest lists of ``diffras.raster.visibility.visible_faces``'s arguments:
    ``face_verts`` (F, 3, 3) float64, ``first``/``num`` (N,) int64, all on one device; the result on it.
    ``settings.bin_size`` does not apply (candidates come from each face's own box)."""
    H, W = settings.image_size
    blur_radius = settings.blur_radius
    perspective_correct = settings.perspective_correct
    N = first.shape[0]
    dev = face_verts.device
    out = torch.full((N * H * W, K), -1, dtype=torch.int64, device=dev)
    total = int(num.sum()) if N else 0
    if total == 0:
        return out.view(N, H, W, K)
    S = float(min(H, W))
    pxs = pixel_center(torch.arange(W, device=dev, dtype=torch.float64), W, S)
    pys = pixel_center(torch.arange(H, device=dev, dtype=torch.float64), H, S)
    r = math.sqrt(blur_radius)

    # (image, face) pairs, then the per-face tests that do not depend on the pixel.
    img = torch.repeat_interleave(torch.arange(N, device=dev), num)
    offs = torch.cumsum(num, 0) - num
    face = first[img] + torch.arange(total, device=dev) - offs[img]
    fv = face_verts[face]
    x, y, z = fv[..., 0], fv[..., 1], fv[..., 2]
    x0, x1, x2 = x.unbind(1)
    y0, y1, y2 = y.unbind(1)
    z0, z1, z2 = z.unbind(1)
    face_area = _edge(x0, y0, x1, y1, x2, y2)
    ok = z.min(1).values >= EPS
    if settings.cull_backfaces:
        ok &= ~(face_area < 0.0)
    ok &= ~((face_area <= EPS) & (face_area >= -EPS))
    xlo = x.min(1).values - r
    xhi = x.max(1).values + r
    ylo = y.min(1).values - r
    yhi = y.max(1).values + r
    # Pixel rows/columns that may pass the box test (one pixel of slack; the exact test runs later).
    j0 = torch.floor(((W - 1.0 - xhi * S) * 0.5 - 1.0).clamp(0.0, W)).long()
    j1 = torch.ceil(((W - 1.0 - xlo * S) * 0.5 + 1.0).clamp(-1.0, W - 1.0)).long()
    i0 = torch.floor(((H - 1.0 - yhi * S) * 0.5 - 1.0).clamp(0.0, H)).long()
    i1 = torch.ceil(((H - 1.0 - ylo * S) * 0.5 + 1.0).clamp(-1.0, H - 1.0)).long()
    ok &= (j1 >= j0) & (i1 >= i0)
    sel = ok.nonzero().squeeze(1)
    wcount = (j1 - j0 + 1)[sel]
    count = (i1 - i0 + 1)[sel] * wcount

    den = _edge(x2, y2, x0, y0, x1, y1) + EPS
    sg = torch.where(den > 0.0, 1.0, -1.0).to(den)

    kept: List[Entries] = []
    kept_size = 0
    budget = max(4 * N * H * W * K, CHUNK)
    for g, i, j in candidate_chunks(sel, i0, j0, count, wcount, CHUNK):
        px = pxs[j]
        py = pys[i]
        keep = ~((px > xhi[g]) | (px < xlo[g]) | (py > yhi[g]) | (py < ylo[g]))
        g, i, j, px, py = g[keep], i[keep], j[keep], px[keep], py[keep]
        X0, Y0, Z0, X1, Y1, Z1, X2, Y2, Z2 = (t[g] for t in (x0, y0, z0, x1, y1, z1, x2, y2, z2))
        s = sg[g]
        e0 = _edge(px, py, X1, Y1, X2, Y2)
        e1 = _edge(px, py, X2, Y2, X0, Y0)
        e2 = _edge(px, py, X0, Y0, X1, Y1)
        if perspective_correct:
            h0 = e0 * (s * (Z1 * Z2))
            h1 = e1 * (s * (Z0 * Z2))
            h2 = e2 * (s * (Z0 * Z1))
            q = h0 + h1 + h2
        else:
            h0, h1, h2 = e0 * s, e1 * s, e2 * s
            q = den[g] * s
        if settings.clip_barycentric_coords:
            pos = q > 0.0
            m0 = torch.where(pos, h0, -h0).clamp_min(0.0)
            m1 = torch.where(pos, h1, -h1).clamp_min(0.0)
            m2 = torch.where(pos, h2, -h2).clamp_min(0.0)
            pz = (m0 * Z0 + m1 * Z1 + m2 * Z2) / torch.maximum(m0 + m1 + m2, CLIP_SUM_MIN * q.abs())
        else:
            numer = h0 * Z0 + h1 * Z1 + h2 * Z2
            pz = numer / q if perspective_correct else numer * (1.0 / q)
        good = pz >= 0.0
        inside = ((h0 > 0.0) & (h1 > 0.0) & (h2 > 0.0)) | ((q < 0.0) & (h0 < 0.0) & (h1 < 0.0) & (h2 < 0.0))
        if blur_radius > 0.0:
            beyond = (
                ((h0 < 0.0) & (e0 * e0 >= blur_radius * _len2(X1, Y1, X2, Y2)))
                | ((h1 < 0.0) & (e1 * e1 >= blur_radius * _len2(X0, Y0, X2, Y2)))
                | ((h2 < 0.0) & (e2 * e2 >= blur_radius * _len2(X0, Y0, X1, Y1)))
            )
            near = ~beyond & (
                (_seg_dist2(px, py, X0, Y0, X1, Y1, e2) < blur_radius)
                | (_seg_dist2(px, py, X0, Y0, X2, Y2, e1) < blur_radius)
                | (_seg_dist2(px, py, X1, Y1, X2, Y2, e0) < blur_radius)
            )
            good &= inside | near
        else:
            good &= inside
        # +0.0 turns a -0.0 depth into +0.0: they compare equal in the rule, and must sort so too.
        pix = (img[g] * H + i) * W + j
        kept.append((pix[good], pz[good] + 0.0, face[g][good]))
        kept_size += int(good.sum())
        if kept_size > budget:
            kept = _reduce(kept, K)
            kept_size = kept[0][0].numel()
    scatter_k_nearest(out, kept, K)
    return out.view(N, H, W, K)
