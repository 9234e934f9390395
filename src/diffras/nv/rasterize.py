"""nvdiffrast's ``rasterize`` and ``DepthPeeler``: clip-space triangles to (u, v, z/w, triangle_id).

Conventions (nvdiffrast's, i.e. OpenGL's): ``pos`` is in clip space (x, y, z, w); the image has
``rast[n, row, col]`` with row 0 at the *bottom* (y = -1); the centre of pixel (row i, column j) is at
NDC ``((2 j + 1) / W - 1, (2 i + 1) / H - 1)``. Barycentrics are perspective-correct: corner 0 of a
triangle has (u, v) = (1, 0), corner 1 (0, 1), corner 2 (0, 0). Visibility (which triangle a pixel
sees, clipping, ties) is the rule in ``diffras.nv._raster_numba``.

Two stages, as everywhere in diffras: an integer visibility pass (Numba, no gradients), then u, v, z/w
and their screen derivatives recomputed in plain torch for the covered pixels only, so autograd gives
exact gradients to ``pos`` on any device (CPU float32/float64 ``pos`` runs the same formulas fused, with a
hand-written backward: ``diffras.nv._fill_numba``). Deliberate difference: nvdiffrast returns no gradient through
z/w; here z/w is differentiable too (a superset: a loss that ignores z/w gets the same gradients).
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np
import torch

from .._validation import check_image_size, check_index_range, check_tensor
from ..raster.fragments import use_fused
from .context import check_context

__all__ = ["DepthPeeler", "rasterize"]


def _check_pos_tri(pos: Any, tri: Any) -> None:
    check_tensor(pos, "pos", dtype="float", finite=True)
    if pos.dim() not in (2, 3) or pos.shape[-1] != 4:
        raise ValueError(f"pos: expected shape (V, 4) or (N, V, 4), got {tuple(pos.shape)}")
    check_tensor(tri, "tri", shape=(None, 3), dtype="int")
    if tri.device != pos.device:
        raise ValueError(f"tri: expected device {pos.device} (the device of pos), got {tri.device}")
    check_index_range(tri, "tri", pos.shape[-2])


def _ranges(pos: torch.Tensor, tri: torch.Tensor, ranges: Any) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vbase, lo, hi) per image: vertex offset into the flattened pos, triangle range [lo, hi)."""
    T = tri.shape[0]
    if pos.dim() == 3:
        N, V = pos.shape[0], pos.shape[1]
        return np.arange(N, dtype=np.int64) * V, np.zeros(N, np.int64), np.full(N, T, np.int64)
    if ranges is None:
        raise ValueError("ranges: expected an (N, 2) int tensor in range mode (pos of shape (V, 4)), got None")
    check_tensor(ranges, "ranges", shape=(None, 2), dtype="int")
    r = ranges.detach().cpu().to(torch.int64).numpy()
    if r.size and ((r < 0).any() or (r[:, 0] + r[:, 1] > T).any()):
        raise ValueError(f"ranges: expected rows (start, count) with start >= 0, count >= 0 and start + count <= {T}")
    N = r.shape[0]
    return np.zeros(N, np.int64), r[:, 0].copy(), (r[:, 0] + r[:, 1]).copy()


# Bytes per pixel of one rasterize call (rast, rast_db, ids, depths and the temporaries of the fill), and
# the most one call may ask for: a typo in resolution or batch size must not exhaust the machine.
_BYTES_PER_PIXEL = 96
MAX_BYTES = 12 * 2**30


def _check_memory(N: int, H: int, W: int) -> None:
    need = N * H * W * _BYTES_PER_PIXEL
    if need > MAX_BYTES:
        raise ValueError(f"resolution: {N} images of {H} x {W} need about {need / 2**30:.0f} GiB, more than the "
                         f"{MAX_BYTES / 2**30:.0f} GiB one rasterize call may use; render fewer or smaller images per call")


def _visibility(pos, tri, vbase, lo, hi, H, W, prev=None):
    """Triangle ids (N, H, W) int64 (1-based, 0 empty) and z/w, on pos's device."""
    from ._raster_numba import rasterize_ids

    p = pos.detach().reshape(-1, 4).to(device="cpu", dtype=torch.float64).numpy()
    t = tri.detach().to(device="cpu", dtype=torch.int64).numpy()
    pv = None if prev is None else prev.detach().to("cpu", torch.float64).numpy()
    ids, zw = rasterize_ids(p, t, vbase, lo, hi, H, W, pv)
    return torch.from_numpy(ids).to(pos.device), torch.from_numpy(zw).to(pos.device)


def _fill(pos, tri, ids, vbase, H, W, grad_db):
    """Differentiable (u, v, z/w) and (du/dX, du/dY, dv/dX, dv/dY) at the covered pixels, scattered
    into (N, H, W, 4) tensors (zero where empty, as nvdiffrast)."""
    if use_fused(pos):
        from ._fill_numba import fused_fill

        return fused_fill(pos, tri, ids, vbase, H, W, grad_db)
    N = ids.shape[0]
    dev, dt = pos.device, pos.dtype
    flat = ids.reshape(-1)
    pix = torch.nonzero(flat, as_tuple=True)[0]
    t = flat[pix] - 1
    n = torch.div(pix, H * W, rounding_mode="floor")
    rem = pix - n * H * W
    i = torch.div(rem, W, rounding_mode="floor")
    j = rem - i * W
    xn = (2.0 * j.to(dt) + 1.0) / W - 1.0
    yn = (2.0 * i.to(dt) + 1.0) / H - 1.0
    vb = torch.as_tensor(vbase, device=dev)[n]
    pflat = pos.reshape(-1, 4)
    corners = tri.to(torch.int64)[t] + vb[:, None]  # (P, 3)

    def coeffs(p):
        v = p[corners]  # (P, 3, 4)
        x, y, z, w = v.unbind(-1)
        # Edge k = cross of corners (k+1, k+2) in (x, y, w): e_k = a_k xn + b_k yn + c_k.
        x1, y1, w1 = x.roll(-1, 1), y.roll(-1, 1), w.roll(-1, 1)
        x2, y2, w2 = x.roll(-2, 1), y.roll(-2, 1), w.roll(-2, 1)
        a = y1 * w2 - w1 * y2
        b = w1 * x2 - x1 * w2
        c = x1 * y2 - y1 * x2
        return a, b, c, z, w

    a, b, c, z, w = coeffs(pflat)
    e = a * xn[:, None] + b * yn[:, None] + c
    se = e.sum(1)
    bary = e / se[:, None]
    zw = (bary * z).sum(1) / (bary * w).sum(1)
    tid = t.to(dt) + 1.0
    rast = torch.zeros(N * H * W, 4, dtype=dt, device=dev)
    rast = rast.index_put((pix,), torch.stack([bary[:, 0], bary[:, 1], zw, tid], 1))
    if not grad_db:
        a, b, c, z, w = coeffs(pflat.detach())
        e = e.detach()
        se = se.detach()
    # d b_k / d xn = (a_k S - e_k sum(a)) / S^2, and d xn / dX = 2 / W (pixels), likewise for y.
    s2 = se * se
    dbx = (a * se[:, None] - e * a.sum(1, keepdim=True)) / s2[:, None] * (2.0 / W)
    dby = (b * se[:, None] - e * b.sum(1, keepdim=True)) / s2[:, None] * (2.0 / H)
    db = torch.zeros(N * H * W, 4, dtype=dt, device=dev)
    db = db.index_put((pix,), torch.stack([dbx[:, 0], dby[:, 0], dbx[:, 1], dby[:, 1]], 1))
    return rast.reshape(N, H, W, 4), db.reshape(N, H, W, 4)


def rasterize(
    glctx: Any, pos: torch.Tensor, tri: torch.Tensor, resolution: Any, ranges: Optional[torch.Tensor] = None,
    grad_db: bool = True,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Rasterize triangles (``nvdiffrast.torch.rasterize``).

    Args:
        glctx: a ``RasterizeCudaContext`` / ``RasterizeGLContext`` / ``RasterizeCPUContext``.
        pos: clip-space vertex positions, (N, V, 4) float (instanced mode: the same ``tri`` for every
            image) or (V, 4) float (range mode, with ``ranges``).
        tri: (T, 3) int triangles (corner indices into pos's V axis).
        resolution: (H, W) (or an int for a square image).
        ranges: range mode only: (N, 2) int rows (first triangle, count) drawn into image n.
        grad_db: let gradients of ``rast_db`` flow to ``pos``.

    Returns:
        rast: (N, H, W, 4) ``(u, v, z/w, triangle_id + 1)``, all zero where no triangle is visible;
            row 0 is the bottom of the image. Differentiable w.r.t. pos through u, v and z/w.
        rast_db: (N, H, W, 4) ``(du/dX, du/dY, dv/dX, dv/dY)`` in pixel units (X right, Y up).
    """
    check_context(glctx)
    _check_pos_tri(pos, tri)
    H, W = check_image_size(resolution, "resolution")
    vbase, lo, hi = _ranges(pos, tri, ranges)
    _check_memory(len(lo), H, W)
    ids, _ = _visibility(pos, tri, vbase, lo, hi, H, W)
    return _fill(pos, tri, ids, vbase, H, W, bool(grad_db))


class DepthPeeler:
    """Depth peeling (``nvdiffrast.torch.DepthPeeler``): ``rasterize_next_layer()`` returns the nearest
    surface on its first call and, on each further call, the nearest surface strictly behind the depth
    reported at that pixel by the previous layer (points at the same or a closer depth are culled, as in
    nvdiffrast). Arguments as :func:`rasterize`. Use it as a context manager."""

    def __init__(self, glctx: Any, pos: torch.Tensor, tri: torch.Tensor, resolution: Any,
                 ranges: Optional[torch.Tensor] = None, grad_db: bool = True):
        check_context(glctx)
        _check_pos_tri(pos, tri)
        self.glctx, self.pos, self.tri = glctx, pos, tri
        self.resolution = check_image_size(resolution, "resolution")
        self.grad_db = bool(grad_db)
        self._ranges = _ranges(pos, tri, ranges)
        _check_memory(len(self._ranges[1]), *self.resolution)
        self._prev: Optional[torch.Tensor] = None
        self._active = False

    def __enter__(self) -> "DepthPeeler":
        if self.glctx.active_depth_peeler is not None:
            raise RuntimeError("glctx: a DepthPeeler is already active on this context (nvdiffrast allows one)")
        self.glctx.active_depth_peeler = self
        self._active = True
        self._prev = None
        return self

    def __exit__(self, *exc: Any) -> None:
        self.glctx.active_depth_peeler = None
        self._active = False
        self._prev = None

    def rasterize_next_layer(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """The next depth layer as ``(rast, rast_db)``, shapes as :func:`rasterize`."""
        if not self._active:
            raise RuntimeError("DepthPeeler: rasterize_next_layer() must be called inside a `with` block")
        H, W = self.resolution
        vbase, lo, hi = self._ranges
        ids, zw = _visibility(self.pos, self.tri, vbase, lo, hi, H, W, self._prev)
        # Empty pixels stay empty in later layers: peel from +inf there.
        prev = torch.where(ids > 0, zw, torch.full_like(zw, float("inf")))
        self._prev = prev
        return _fill(self.pos, self.tri, ids, vbase, H, W, self.grad_db)
