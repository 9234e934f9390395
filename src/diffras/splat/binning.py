"""Tile binning: which projected Gaussians touch which 16x16 tile, depth-sorted per tile (no gradients).

gsplat's ``isect_tiles``: a Gaussian with pixel centre ``m`` and radii ``r`` covers the tiles
``[floor(m/ts - r/ts), ceil(m/ts + r/ts))`` on each axis, clipped to the tile grid; within a tile the list
is sorted by camera-space depth, ties by Gaussian index (what gsplat's stable radix sort on
``(camera, tile, depth)`` keys does). Two implementations return identical lists: a Numba counting sort
for CPU tensors and a torch sort for any device.
"""
from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import torch

__all__ = ["TileIntersections", "intersect_tiles"]


@dataclass(frozen=True)
class TileIntersections:
    """The per-tile Gaussian lists of ``C`` images.

    ``flatten_ids[offsets[j]:offsets[j + 1]]`` are the indices into the flattened ``(C * N)`` Gaussians that
    touch tile ``j = c * tile_height * tile_width + ty * tile_width + tx``, nearest first.
    ``tiles_per_gauss: (C, N)`` counts the tiles each Gaussian touches.
    """

    flatten_ids: torch.Tensor  # (M,) int64
    offsets: torch.Tensor  # (C * tile_height * tile_width + 1,) int64
    tiles_per_gauss: torch.Tensor  # (C, N) int64
    tile_size: int
    tile_width: int
    tile_height: int

    def isect_offsets(self, n_cameras: int) -> torch.Tensor:
        """gsplat's layout: ``(C, tile_height, tile_width)`` start offsets (int32)."""
        return self.offsets[:-1].reshape(n_cameras, self.tile_height, self.tile_width).to(torch.int32)


def _tile_boxes(means2d, radii, tile_size, tile_width, tile_height):
    """Inclusive-min, exclusive-max tile ranges (C, N) per axis, in the input's float precision as gsplat."""
    ts = float(tile_size)
    r = radii.to(means2d.dtype)
    tx, ty = means2d[..., 0].detach() / ts, means2d[..., 1].detach() / ts
    rx, ry = r[..., 0] / ts, r[..., 1] / ts
    x0 = torch.floor(tx - rx).clamp(0, tile_width).long()
    x1 = torch.ceil(tx + rx).clamp(0, tile_width).long()
    y0 = torch.floor(ty - ry).clamp(0, tile_height).long()
    y1 = torch.ceil(ty + ry).clamp(0, tile_height).long()
    visible = (radii > 0).all(dim=-1)
    count = torch.where(visible, (x1 - x0) * (y1 - y0), torch.zeros_like(x0))
    return x0, x1, y0, y1, count


def _front_to_back(depths: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
    """The visible flattened (C * N) Gaussians ordered by camera, then depth, then index."""
    C, N = depths.shape
    ids = torch.nonzero(visible.reshape(-1), as_tuple=True)[0]  # ascending: camera-major, then index
    order = ids[torch.argsort(depths.detach().reshape(-1)[ids], stable=True)]
    if C > 1:
        order = order[torch.argsort(torch.div(order, N, rounding_mode="floor"), stable=True)]
    return order


@numba.njit(cache=True)
def _fill_tiles(order, x0, x1, y0, y1, n_per_cam, tiles_per_cam, tile_width, offsets, flatten_ids):
    """Counting sort of Gaussians (visited in ``order``) into their tiles' lists."""
    counts = np.zeros(offsets.shape[0] - 1, np.int64)
    for g in order:
        base = (g // n_per_cam) * tiles_per_cam
        for ty in range(y0[g], y1[g]):
            for tx in range(x0[g], x1[g]):
                counts[base + ty * tile_width + tx] += 1
    offsets[0] = 0
    for j in range(counts.shape[0]):
        offsets[j + 1] = offsets[j] + counts[j]
    cursor = offsets[:-1].copy()
    for g in order:
        base = (g // n_per_cam) * tiles_per_cam
        for ty in range(y0[g], y1[g]):
            for tx in range(x0[g], x1[g]):
                j = base + ty * tile_width + tx
                flatten_ids[cursor[j]] = g
                cursor[j] += 1


def intersect_tiles(
    means2d: torch.Tensor, radii: torch.Tensor, depths: torch.Tensor, width: int, height: int,
    tile_size: int = 16, *, backend: str = "auto",
) -> TileIntersections:
    """Bin ``(C, N)`` projected Gaussians into tiles; ``backend`` is ``"numba"``, ``"torch"`` or ``"auto"``
    (Numba for CPU tensors)."""
    C, N = depths.shape
    tile_width = -(-width // tile_size)
    tile_height = -(-height // tile_size)
    tiles_per_cam = tile_width * tile_height
    x0, x1, y0, y1, count = _tile_boxes(means2d, radii, tile_size, tile_width, tile_height)
    order = _front_to_back(depths, count > 0)
    if backend == "auto":
        backend = "numba" if depths.device.type == "cpu" else "torch"
    if backend == "numba":
        total = int(count.sum())
        offsets = np.empty(C * tiles_per_cam + 1, np.int64)
        flat = np.empty(total, np.int64)
        arrays = [t.reshape(-1).cpu().numpy() for t in (x0, x1, y0, y1)]
        _fill_tiles(order.cpu().numpy(), *arrays, N, tiles_per_cam, tile_width, offsets, flat)
        return TileIntersections(torch.from_numpy(flat).to(depths.device), torch.from_numpy(offsets).to(depths.device),
                                 count, tile_size, tile_width, tile_height)
    # torch: expand each Gaussian (in front-to-back order) into its tiles, then a stable sort by tile.
    cnt = count.reshape(-1)[order]
    g = torch.repeat_interleave(order, cnt)
    start = torch.cumsum(cnt, 0) - cnt
    local = torch.arange(g.numel(), device=g.device) - torch.repeat_interleave(start, cnt)
    bw = (x1 - x0).reshape(-1)[g]
    tx = x0.reshape(-1)[g] + local % bw.clamp(min=1)
    ty = y0.reshape(-1)[g] + torch.div(local, bw.clamp(min=1), rounding_mode="floor")
    tile = torch.div(g, N, rounding_mode="floor") * tiles_per_cam + ty * tile_width + tx
    perm = torch.argsort(tile, stable=True)
    flat = g[perm]
    per_tile = torch.bincount(tile, minlength=C * tiles_per_cam)
    offsets = torch.cat([per_tile.new_zeros(1), torch.cumsum(per_tile, 0)])
    return TileIntersections(flat, offsets, count, tile_size, tile_width, tile_height)
