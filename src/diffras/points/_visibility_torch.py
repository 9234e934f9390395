"""The ``"torch"`` point visibility backend: vectorised over (point, pixel) candidate pairs, any device.

Each (image, point) pair contributes the pixels of its box ``[x - r, x + r] x [y - r, y + r]`` (one pixel
of slack; the exact rule decides); those candidates are evaluated in chunks of at most ``CHUNK`` (memory
stays bounded however large the radii: never pixels x points at once) with exactly the float64
expressions of the rule in ``diffras.points.visibility``. The hits are reduced to the K nearest per
pixel by the mesh backend's stable sorts, whenever they pile up and once at the end.
"""
from __future__ import annotations

from typing import Tuple

import torch

from ..raster._visibility_torch import _reduce, candidate_chunks, scatter_k_nearest
from ..raster.pixels import pixel_centers_ndc

# Candidate (point, pixel) pairs evaluated at once; each holds ~10 temporaries of 8 bytes.
CHUNK = 1 << 20


def visibility_torch(
    points: torch.Tensor,
    radius: torch.Tensor,
    first: torch.Tensor,
    num: torch.Tensor,
    image_size: Tuple[int, int],
    K: int,
) -> torch.Tensor:
    """Arguments as ``diffras.points.visibility.points_visibility`` after validation: ``points`` (P, 3)
    and ``radius`` (P,) float64, ``first``/``num`` (N,) int64, one device. Returns (N, H, W, K) int64."""
    H, W = image_size
    N = first.shape[0]
    dev = points.device
    out = torch.full((N * H * W, K), -1, dtype=torch.int64, device=dev)
    total = int(num.sum()) if N else 0
    if total == 0:
        return out.view(N, H, W, K)
    S = float(min(H, W))
    centres = pixel_centers_ndc((H, W), device=dev, dtype=torch.float64)
    pxs = centres[0, :, 0].contiguous()
    pys = centres[:, 0, 1].contiguous()

    # (image, point) pairs, then the per-point tests that do not depend on the pixel.
    img = torch.repeat_interleave(torch.arange(N, device=dev), num)
    pid = first[img] + torch.arange(total, device=dev) - (torch.cumsum(num, 0) - num)[img]
    x, y, z = points[pid].unbind(1)
    r = radius[pid]
    j0 = torch.floor(((W - 1.0 - (x + r) * S) * 0.5 - 1.0).clamp(0.0, W)).long()
    j1 = torch.ceil(((W - 1.0 - (x - r) * S) * 0.5 + 1.0).clamp(-1.0, W - 1.0)).long()
    i0 = torch.floor(((H - 1.0 - (y + r) * S) * 0.5 - 1.0).clamp(0.0, H)).long()
    i1 = torch.ceil(((H - 1.0 - (y - r) * S) * 0.5 + 1.0).clamp(-1.0, H - 1.0)).long()
    ok = ~(z < 0.0) & (j1 >= j0) & (i1 >= i0)
    sel = ok.nonzero().squeeze(1)
    wcount = (j1 - j0 + 1)[sel]
    count = (i1 - i0 + 1)[sel] * wcount
    r2 = r * r

    kept = []
    kept_size = 0
    budget = max(4 * N * H * W * K, CHUNK)
    for g, i, j in candidate_chunks(sel, i0, j0, count, wcount, CHUNK):
        dx = x[g] - pxs[j]
        dy = y[g] - pys[i]
        hit = dx * dx + dy * dy < r2[g]
        g, i, j = g[hit], i[hit], j[hit]
        # +0.0 turns a -0.0 depth into +0.0: they compare equal in the rule, and must sort so too.
        kept.append(((img[g] * H + i) * W + j, z[g] + 0.0, pid[g]))
        kept_size += int(g.numel())
        if kept_size > budget:
            kept = _reduce(kept, K)
            kept_size = kept[0][0].numel()
    scatter_k_nearest(out, kept, K)
    return out.view(N, H, W, K)
