"""Point visibility: which points touch each pixel, nearest first (the only hot loop of point rendering).

``points_visibility`` validates its inputs and dispatches to one of three interchangeable backends that
return identical ``idx``:

- ``"numba"``: compiled CPU kernel, points binned into screen tiles by a counting sort, tiles rasterized
  in parallel (``diffras.points._visibility_numba``); cost grows with pixels + points, not their product;
- ``"torch"``: vectorised over (point, pixel) candidate pairs from each point's box, in memory-bounded
  chunks; runs on any torch device (``diffras.points._visibility_torch``);
- ``"reference"``: brute force over every (pixel, point) pair in plain Python floats, written to be read,
  not to be fast; tests compare the other backends against it on small scenes.

Semantics: PyTorch3D's ``rasterize_points`` (its CPU kernel ``RasterizePointsNaiveCpu``). PyTorch3D
decides in float32; diffras decides in float64 (every input value is exact in float64) with the same
expressions, evaluated in the same order, without fused multiply-add, in every backend, so their
``idx`` agree bit for bit. For image n, pixel centre (xc, yc) in NDC (``diffras.raster.pixel_centers_ndc``:
``xc = (W - 2j - 1) / S``, ``yc = (H - 2i - 1) / S``, ``S = min(H, W)``) and packed point p of cloud n at
``(x, y, z)`` (x, y in NDC, z the view-space depth) with radius r:

1. Skip p if ``z < 0`` (behind the camera; ``z == 0`` is kept, as PyTorch3D).
2. ``dx = x - xc``, ``dy = y - yc``, ``d2 = dx * dx + dy * dy``; p touches the pixel iff ``d2 < r * r``
   (strict: a point exactly ``r`` away does not, and ``r = 0`` touches nothing).
3. Keep the K touching points with the smallest ``(z, p)`` pairs, sorted: ties in depth go to the lower
   packed index (PyTorch3D's priority queue of ``(z, p, d2)`` tuples keeps the same ones). Empty slots
   are -1.
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

import torch

from .._validation import (
    check_choice,
    check_image_size,
    check_index_range,
    check_int,
    check_same_device,
    check_tensor,
)

__all__ = ["BACKENDS", "MAX_OUTPUT_BYTES", "points_visibility"]

BACKENDS = ("auto", "numba", "torch", "reference")

# Refuse outputs the machine cannot hold: idx (int64) plus zbuf and dists, N * H * W * K entries each.
MAX_OUTPUT_BYTES = 8 * 2**30
_BYTES_PER_SLOT = 24


def check_output_size(n: int, image_size: Tuple[int, int], k: int) -> None:
    """Raise ``ValueError`` if (N, H, W, K) fragments would exceed ``MAX_OUTPUT_BYTES``."""
    h, w = image_size
    need = n * h * w * k * _BYTES_PER_SLOT
    if need > MAX_OUTPUT_BYTES:
        raise ValueError(
            f"image_size, points_per_pixel: expected N * H * W * K fragments below {MAX_OUTPUT_BYTES / 2**30:.0f} GiB, "
            f"got N={n}, H={h}, W={w}, K={k} ({need / 2**30:.1f} GiB); render fewer or smaller images"
        )


def points_visibility(
    points: torch.Tensor,
    radius: torch.Tensor,
    cloud_to_packed_first_idx: torch.Tensor,
    num_points_per_cloud: torch.Tensor,
    image_size: Any,
    *,
    points_per_pixel: int = 8,
    backend: str = "auto",
    bin_size: Optional[int] = None,
) -> torch.Tensor:
    """For every pixel, the K nearest points whose disk covers its centre (PyTorch3D's rule).

    Args:
        points: (P, 3) float packed points ``(x_ndc, y_ndc, z_view)``, NDC as in docs/conventions.md
            (+X left, +Y up, shorter side [-1, 1]); finite.
        radius: (P,) float per-point radius in NDC units, finite and >= 0.
        cloud_to_packed_first_idx: (N,) int, first packed point of each cloud.
        num_points_per_cloud: (N,) int: image n sees the points ``[first[n], first[n] + num[n])``.
        image_size: int or (H, W).
        points_per_pixel: K >= 1.
        backend: ``"auto"`` (numba for CPU tensors, torch otherwise), ``"numba"``, ``"torch"`` or
            ``"reference"`` (brute force, small scenes only).
        bin_size: tile side in pixels of the ``"numba"`` backend; None picks one, 0 means one tile per
            image. Changes speed, never the result; the other backends ignore it.

    Returns:
        idx: (N, H, W, K) int64 on ``points.device``. ``idx[n, y, x, k] = p`` means packed point p is the
        k-th nearest point (by view z, ties to the lower index) whose disk covers the centre of pixel
        (y, x) of image n; -1 if fewer than k + 1 do. Not differentiable. Exact rule: module docstring.
    """
    sizes: dict = {}
    check_tensor(points, "points", shape=("P", 3), dtype="float", finite=True, sizes=sizes)
    check_tensor(radius, "radius", shape=("P",), dtype="float", finite=True, sizes=sizes)
    check_tensor(cloud_to_packed_first_idx, "cloud_to_packed_first_idx", shape=("N",), dtype="int", sizes=sizes)
    check_tensor(num_points_per_cloud, "num_points_per_cloud", shape=("N",), dtype="int", sizes=sizes)
    check_same_device(points=points, radius=radius, cloud_to_packed_first_idx=cloud_to_packed_first_idx,
                      num_points_per_cloud=num_points_per_cloud)
    if radius.numel() and bool((radius < 0).any()):
        raise ValueError(f"radius: expected values >= 0, got min {float(radius.min())}")
    P = points.shape[0]
    first = cloud_to_packed_first_idx.to(torch.int64)
    num = num_points_per_cloud.to(torch.int64)
    check_index_range(num, "num_points_per_cloud", P + 1)
    check_index_range(first, "cloud_to_packed_first_idx", P + 1)
    if num.numel() and bool(((first + num) > P).any()):
        raise ValueError(
            f"num_points_per_cloud: expected cloud_to_packed_first_idx + num_points_per_cloud <= P = {P} "
            f"for every cloud, got a cloud reaching point {int((first + num).max())}"
        )
    H, W = check_image_size(image_size)
    K = check_int(points_per_pixel, "points_per_pixel", min=1)
    check_output_size(first.shape[0], (H, W), K)
    check_choice(backend, "backend", BACKENDS)
    if bin_size is not None:
        bin_size = check_int(bin_size, "bin_size", min=0)
    if backend == "auto":
        backend = "numba" if points.device.type == "cpu" else "torch"
    if backend == "numba" and points.device.type != "cpu":
        raise ValueError(f"backend: expected CPU points for 'numba', got device {points.device}")

    args = (points.detach().to(torch.float64), radius.detach().to(torch.float64), first, num, (H, W), K)
    if backend == "reference":
        out = _visibility_reference(*args)
    elif backend == "numba":
        from ._visibility_numba import visibility_numba

        out = visibility_numba(*args, bin_size=bin_size)
    else:
        from ._visibility_torch import visibility_torch

        out = visibility_torch(*args)
    return out.to(points.device)


def _visibility_reference(
    points: torch.Tensor,
    radius: torch.Tensor,
    first: torch.Tensor,
    num: torch.Tensor,
    image_size: Tuple[int, int],
    K: int,
) -> torch.Tensor:
    H, W = image_size
    N = first.shape[0]
    S = float(min(H, W))
    pts = points.cpu().tolist()
    rad = radius.cpu().tolist()
    out = torch.full((N, H, W, K), -1, dtype=torch.int64)
    for n in range(N):
        lo = int(first[n])
        hi = lo + int(num[n])
        for i in range(H):
            yc = (H - 2.0 * i - 1.0) / S
            for j in range(W):
                xc = (W - 2.0 * j - 1.0) / S
                hits = []
                for p in range(lo, hi):
                    x, y, z = pts[p]
                    if z < 0.0:
                        continue
                    dx = x - xc
                    dy = y - yc
                    if dx * dx + dy * dy < rad[p] * rad[p]:
                        hits.append((z + 0.0, p))  # + 0.0: -0.0 and 0.0 are the same depth
                hits.sort()
                for k, (_, p) in enumerate(hits[:K]):
                    out[n, i, j, k] = p
    return out
