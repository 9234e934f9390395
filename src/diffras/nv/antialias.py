"""nvdiffrast's ``antialias``: analytic silhouette antialiasing with gradients to vertex positions.

Laine et al., "Modular Primitives for High-Performance Differentiable Rendering" (SIGGRAPH Asia 2020),
with nvdiffrast's exact rule. Every pair of neighbouring pixels (right and next-row neighbours) whose
triangle ids differ is examined: the triangle drawn in front (the one with the smaller z/w, or the only
one) is taken from its pixel A, the other pixel is B. Along the segment from A's centre to B's, the
triangle edge that crosses it furthest from A is the candidate; it counts only if it is a *silhouette*
(no neighbouring triangle across it, or the neighbour folds behind: its opposite corner lies on the
same side of the edge as the triangle's own), and only if it is more across than along the segment
(|dy| >= |dx| for horizontal pairs). With the crossing at distance ``dc`` (pixels, clamped to [0, 1],
accepted within 1/16 pixel of the segment) the pixel on the covered side's far half is blended:
``alpha = ds * (0.5 - dc)`` (ds = +1 if A is the left/lower pixel of the pair, else -1); if alpha > 0
the first pixel of the pair gets ``+= alpha * (c1 - c0)``, else the second does.

Gradients: to ``color`` exactly; to ``pos`` through alpha only, as nvdiffrast: the derivative of the
crossing w.r.t. the edge's two endpoints (with nvdiffrast's 1e-3 pixel guard on the edge's slope),
zero when ``|alpha| >= 0.5`` (saturated), scaled by ``pos_gradient_boost``. Forward values are the
exact blend; the pos gradient enters through a straight-through term that adds nothing to the value.

Plain torch, vectorised over the (sparse) discontinuity pairs: runs on any device. CPU color, rast and
pos of one float dtype run the fused kernel of ``diffras.nv._antialias_numba`` (same rule, hand-written
backward).
"""
from __future__ import annotations

from typing import Optional

import torch

from .._validation import check_float, check_index_range, check_tensor
from ..raster.fragments import use_fused

__all__ = ["antialias", "antialias_construct_topology_hash"]

_EPS_EDGE = 0.0625  # nvdiffrast accepts crossings up to 1/16 pixel outside the pixel pair's segment
_EPS_SLOPE = 1e-3   # pixel guard on the edge's slope in the gradient, as nvdiffrast


def antialias_construct_topology_hash(tri: torch.Tensor) -> torch.Tensor:
    """Opposite corners across each triangle edge (``nvdiffrast.torch.antialias_construct_topology_hash``).

    Args:
        tri: (T, 3) int triangles.

    Returns:
        (T, 3) int64 ``opp``: ``opp[t, k]`` is the third corner of the other triangle sharing the edge
        opposite corner k of triangle t (the edge (tri[t, k+1], tri[t, k+2])), or -1 if no triangle, or
        more than one other triangle, shares it (then the edge is always a silhouette). Opaque to
        :func:`antialias`, which accepts it as ``topology_hash``.
    """
    check_tensor(tri, "tri", shape=(None, 3), dtype="int")
    t = tri.to(torch.int64)
    T = t.shape[0]
    opp = torch.full((T, 3), -1, dtype=torch.int64, device=t.device)
    if T == 0:
        return opp
    ea, eb = t.roll(-1, 1), t.roll(-2, 1)  # edge k joins corners k+1 and k+2
    lo, hi = torch.minimum(ea, eb).reshape(-1), torch.maximum(ea, eb).reshape(-1)
    valid = ((t[:, 0] != t[:, 1]) & (t[:, 1] != t[:, 2]) & (t[:, 2] != t[:, 0]))[:, None].expand(T, 3).reshape(-1)
    big = int(max(int(hi.max()) + 1, 1))
    key = torch.where(valid, lo * big + hi, torch.full_like(lo, -1))
    order = torch.argsort(key, stable=True)
    ks = key[order]
    _, inv, counts = torch.unique_consecutive(ks, return_inverse=True, return_counts=True)
    pair = (counts[inv] == 2) & (ks >= 0)
    # In a group of exactly two, each member's partner is its sorted neighbour.
    first = torch.zeros_like(pair)
    first[1:] = ks[1:] != ks[:-1]
    first[0] = True
    partner = torch.where(first, order.roll(-1), order.roll(1))
    own = t.reshape(-1)  # opposite corner of flat edge e = 3 t + k is tri[t, k]
    res = torch.where(pair, own[partner], torch.full_like(order, -1))
    opp.view(-1)[order] = res
    return opp


def antialias(
    color: torch.Tensor, rast: torch.Tensor, pos: torch.Tensor, tri: torch.Tensor,
    topology_hash: Optional[torch.Tensor] = None, pos_gradient_boost: float = 1.0,
) -> torch.Tensor:
    """Antialias silhouette edges of ``color`` (``nvdiffrast.torch.antialias``).

    Args:
        color: (N, H, W, C) float image to antialias (row 0 at the bottom, as ``rast``).
        rast: (N, H, W, 4) from :func:`rasterize` of the same ``pos`` and ``tri``.
        pos: (N, V, 4) or (V, 4) float clip-space positions given to :func:`rasterize`.
        tri: (T, 3) int triangles given to :func:`rasterize`.
        topology_hash: optional result of :func:`antialias_construct_topology_hash` for ``tri``.
        pos_gradient_boost: multiplier of the gradient propagated to ``pos``.

    Returns:
        (N, H, W, C) antialiased image; pixels away from silhouette edges are unchanged.
    """
    check_tensor(color, "color", ndim=4, dtype="float")
    N, H, W, C = color.shape
    check_tensor(rast, "rast", shape=(N, H, W, 4), dtype="float")
    check_tensor(pos, "pos", dtype="float", finite=True)
    if pos.dim() not in (2, 3) or pos.shape[-1] != 4 or (pos.dim() == 3 and pos.shape[0] != N):
        raise ValueError(f"pos: expected shape (V, 4) or ({N}, V, 4), got {tuple(pos.shape)}")
    check_tensor(tri, "tri", shape=(None, 3), dtype="int")
    for name, t in (("rast", rast), ("pos", pos), ("tri", tri), ("topology_hash", topology_hash)):
        if t is not None and t.device != color.device:
            raise ValueError(f"{name}: expected device {color.device} (the device of color), got {t.device}")
    V = pos.shape[-2]
    check_index_range(tri, "tri", V)
    boost = check_float(pos_gradient_boost, "pos_gradient_boost")
    if topology_hash is None:
        topology_hash = antialias_construct_topology_hash(tri)
    check_tensor(topology_hash, "topology_hash", shape=(tri.shape[0], 3), dtype="int")

    ids = rast[..., 3].detach().round().to(torch.int64) - 1  # (N, H, W), -1 empty
    if ids.numel() and int(ids.max()) >= tri.shape[0]:
        raise ValueError(f"rast: expected triangle ids <= {tri.shape[0]} in channel 3, got {int(ids.max()) + 1}")
    if use_fused(color, rast, pos):
        from ._antialias_numba import fused_antialias

        return fused_antialias(color, rast, pos, tri, topology_hash, boost)
    zw = rast[..., 2].detach()
    flat_ids, flat_z = ids.reshape(-1), zw.reshape(-1)
    base = torch.arange(N * H * W, device=color.device).reshape(N, H, W)
    # Pairs (pixel0, pixel1, d): d = 0 right neighbour, d = 1 next row (y up in OpenGL order).
    hp = ids[:, :, :-1] != ids[:, :, 1:]
    vp = ids[:, :-1, :] != ids[:, 1:, :]
    p0 = torch.cat([base[:, :, :-1][hp], base[:, :-1, :][vp]])
    d = torch.cat([torch.zeros(int(hp.sum()), dtype=torch.int64, device=color.device),
                   torch.ones(int(vp.sum()), dtype=torch.int64, device=color.device)])
    p1 = p0 + torch.where(d == 1, W, 1)
    if p0.numel() == 0:
        return color.clone()
    t0, t1 = flat_ids[p0], flat_ids[p1]
    use1 = (t0 < 0) | ((t1 >= 0) & ~(flat_z[p0] < flat_z[p1]))
    tri_sel = torch.where(use1, t1, t0)
    pa = torch.where(use1, p1, p0)  # pixel A, whose centre lies on the triangle
    ds = torch.where(use1, -1.0, 1.0).to(color.dtype)

    n = torch.div(pa, H * W, rounding_mode="floor")
    rem = pa - n * H * W
    py = torch.div(rem, W, rounding_mode="floor")
    px = rem - py * W
    tl = tri.to(torch.int64)
    vi = tl[tri_sel]  # (P, 3)
    op = topology_hash.to(torch.int64)[tri_sel]
    oi = torch.where(op >= 0, op, vi)  # no neighbour: the corner itself, so the edge is a silhouette
    vb = (n * V)[:, None] if pos.dim() == 3 else torch.zeros_like(vi)
    pflat = pos.reshape(-1, 4)
    fx = (px.to(color.dtype) + 0.5)[:, None]
    fy = (py.to(color.dtype) + 0.5)[:, None]

    def screen(p):  # pixel coordinates relative to A's centre
        return p[..., 0] / p[..., 3] * (W / 2) + W / 2 - fx, p[..., 1] / p[..., 3] * (H / 2) + H / 2 - fy

    with torch.no_grad():
        x, y = screen(pflat.detach()[vi + vb])
        ox, oy = screen(pflat.detach()[oi + vb])
        x = x.to(color.dtype)
        y = y.to(color.dtype)
        ox, oy = ox.to(color.dtype), oy.to(color.dtype)
        x1, y1, x2, y2 = x.roll(-1, 1), y.roll(-1, 1), x.roll(-2, 1), y.roll(-2, 1)
        bb = (x[:, 1] - x[:, 0]) * (y[:, 2] - y[:, 0]) - (x[:, 2] - x[:, 0]) * (y[:, 1] - y[:, 0])
        # Wing k: the opposite corner against edge (k+1, k+2), same orientation as bb.
        a = (x1 - ox) * (y2 - oy) - (x2 - ox) * (y1 - oy)
        sil = torch.signbit(a) == torch.signbit(bb)[:, None]
        vert = (d == 1)[:, None]
        x1s, y1s = torch.where(vert, y1, x1), torch.where(vert, x1, y1)
        x2s, y2s = torch.where(vert, y2, x2), torch.where(vert, x2, y2)
        dx, dy = x2s - x1s, y2s - y1s
        num = ds[:, None] * (x1s * dy - y1s * dx)
        crosses = torch.signbit(y1s) != torch.signbit(y2s)
        ratio = torch.where(crosses, num / torch.where(crosses, dy, torch.ones_like(dy)),
                            torch.full_like(num, -float("inf")))
        di = torch.argmax(ratio, 1)
        pick = lambda z: z.gather(1, di[:, None])[:, 0]  # noqa: E731
        dc = pick(ratio)
        ok = pick(sil) & (pick(dy).abs() >= pick(dx).abs()) & pick(crosses)
        ok &= (dc > -_EPS_EDGE) & (dc < 1.0 + _EPS_EDGE)
    keep = torch.nonzero(ok, as_tuple=True)[0]
    p0, p1, ds, di, vi, vb, d = p0[keep], p1[keep], ds[keep], di[keep], vi[keep], vb[keep], d[keep]
    fx, fy = fx[keep], fy[keep]
    alpha = ds * (0.5 - dc[keep].clamp(0.0, 1.0))
    target = torch.where(alpha > 0, p0, p1)

    # Straight-through pos gradient: the derivative of alpha w.r.t. the edge's endpoints, nvdiffrast's.
    if pos.requires_grad and keep.numel():
        k1 = (di + 1) % 3
        k2 = (di + 2) % 3
        e1 = pflat[vi.gather(1, k1[:, None])[:, 0] + vb[:, 0]]
        e2 = pflat[vi.gather(1, k2[:, None])[:, 0] + vb[:, 0]]
        X1 = e1[:, 0] / e1[:, 3] * (W / 2) + W / 2 - fx[:, 0]
        Y1 = e1[:, 1] / e1[:, 3] * (H / 2) + H / 2 - fy[:, 0]
        X2 = e2[:, 0] / e2[:, 3] * (W / 2) + W / 2 - fx[:, 0]
        Y2 = e2[:, 1] / e2[:, 3] * (H / 2) + H / 2 - fy[:, 0]
        vflag = d == 1
        X1, Y1 = torch.where(vflag, Y1, X1), torch.where(vflag, X1, Y1)
        X2, Y2 = torch.where(vflag, Y2, X2), torch.where(vflag, X2, Y2)
        gdy = Y2 - Y1
        guard = torch.where(torch.signbit(gdy.detach()), -_EPS_SLOPE, _EPS_SLOPE)
        galpha = -(X1 * gdy - Y1 * (X2 - X1)) / (gdy + guard)
        live = (alpha.abs() < 0.5).to(galpha.dtype) * boost
        alpha = alpha + (galpha - galpha.detach()) * live

    cf = color.reshape(-1, C)
    delta = alpha[:, None] * (cf[p1] - cf[p0])
    return cf.index_add(0, target, delta.to(cf.dtype)).reshape(N, H, W, C)
