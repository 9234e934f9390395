"""``rasterize_points``: a ``Pointclouds`` already in NDC -> ``PointFragments`` (PyTorch3D's function).

Visibility (which points touch each pixel, nearest first) comes from
:func:`diffras.points.visibility.points_visibility`; the differentiable values, ``zbuf`` (the point's z)
and ``dists`` (squared NDC distance from the pixel centre), are recomputed in torch on the filled slots
only, so autograd gives exact gradients with respect to the points on every device (PyTorch3D's
hand-written backward computes the same derivatives).
"""
from __future__ import annotations

from typing import Any, NamedTuple, Optional, Sequence, Tuple, Union

import torch

from .._validation import _describe, as_tensor, check_image_size, check_int, check_tensor
from ..raster.pixels import pixel_centers_ndc
from .visibility import points_visibility

__all__ = ["PointFragments", "format_radius", "point_fragments", "rasterize_points"]

RadiusLike = Union[float, Sequence[float], torch.Tensor]


class PointFragments(NamedTuple):
    """Outputs of point rasterization (PyTorch3D's ``PointFragments``), all (N, H, W, K).

    - ``idx``: int64. ``idx[n, y, x, k] = p`` means packed point p (``points_packed()[p]``) is the k-th
      nearest point (by view-space z, ties to the lower index) whose disk covers the centre of pixel
      (y, x) of image n; -1 where fewer than k + 1 do. (PyTorch3D returns int32; int64 indexes
      directly and ``.long()`` still works.)
    - ``zbuf``: float, view-space z of that point; -1 where empty.
    - ``dists``: float, squared Euclidean distance in NDC (x, y) from the pixel centre to the point;
      -1 where empty.

    ``zbuf`` and ``dists`` are differentiable with respect to the points (hence the world points and
    camera parameters through the projection); ``idx`` carries no gradient.
    """

    idx: torch.Tensor
    zbuf: torch.Tensor
    dists: torch.Tensor


def _check_pointclouds(pointclouds: Any, name: str = "pointclouds") -> None:
    for attr in ("points_packed", "cloud_to_packed_first_idx", "num_points_per_cloud", "padded_to_packed_idx"):
        if not hasattr(pointclouds, attr):
            raise TypeError(f"{name}: expected a diffras.structures.Pointclouds, got {_describe(pointclouds)}")


def format_radius(radius: RadiusLike, pointclouds: Any) -> torch.Tensor:
    """The radius of every packed point: (sum P,) in the points' dtype, finite and >= 0 (not differentiable).

    ``radius`` is a number (every point), a 0-d tensor, a per-point ``(N, max P_i)`` tensor, list or
    tuple (PyTorch3D's padded form; a 1-D ``(P,)`` is accepted for a single cloud), or a packed
    ``(sum P,)`` tensor.
    """
    _check_pointclouds(pointclouds)
    pts = pointclouds.points_packed()
    total = pts.shape[0]
    if isinstance(radius, (list, tuple)):
        radius = as_tensor(radius, "radius", dtype=pts.dtype, device=pts.device)
    if not isinstance(radius, torch.Tensor):
        if isinstance(radius, bool) or not isinstance(radius, (int, float)):
            raise TypeError(f"radius: expected a number, a sequence or a tensor, got {_describe(radius)}")
        radius = pts.new_tensor(float(radius))
    check_tensor(radius, "radius", dtype="float", finite=True)
    radius = radius.detach().to(device=pts.device, dtype=pts.dtype)
    counts = pointclouds.num_points_per_cloud()
    n = counts.shape[0]
    p_max = int(counts.max()) if n else 0
    if radius.dim() == 0:
        out = radius.expand(total)
    elif radius.dim() == 1 and radius.shape[0] == total:
        out = radius
    elif radius.dim() == 2 and radius.shape == (n, p_max):
        out = radius.reshape(-1)
        if out.shape[0] != total:
            out = out[pointclouds.padded_to_packed_idx()]
    else:
        raise ValueError(f"radius: expected a number, shape ({n}, {p_max}) (N, max P_i) or ({total},) (sum P), "
                         f"got {tuple(radius.shape)}")
    if out.numel() and bool((out < 0).any()):
        raise ValueError(f"radius: expected values >= 0, got min {float(out.min())}")
    return out


def point_fragments(points: torch.Tensor, idx: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(zbuf, dists)`` (N, H, W, K) of the slots of ``idx`` (N, H, W, K) for packed NDC ``points``
    (P, 3): the point's z, and ``(x - xc)^2 + (y - yc)^2`` to the pixel centre; -1 where ``idx < 0``.
    Torch on the filled slots only, differentiable with respect to ``points``."""
    N, H, W, K = idx.shape
    flat = (idx.reshape(-1) >= 0).nonzero().squeeze(1)
    p = idx.reshape(-1)[flat]
    pix = torch.div(flat, K, rounding_mode="floor")
    centres = pixel_centers_ndc((H, W), device=points.device, dtype=points.dtype).reshape(H * W, 2)
    c = centres[pix % (H * W)]
    q = points.index_select(0, p)
    dx = q[:, 0] - c[:, 0]
    dy = q[:, 1] - c[:, 1]
    base = points.new_full((N * H * W * K,), -1.0)
    zbuf = base.index_put((flat,), q[:, 2])
    dists = base.index_put((flat,), dx * dx + dy * dy)
    return zbuf.view(N, H, W, K), dists.view(N, H, W, K)


def rasterize_points(
    pointclouds: Any,
    image_size: Union[int, Tuple[int, int]] = 256,
    radius: RadiusLike = 0.01,
    points_per_pixel: int = 8,
    bin_size: Optional[int] = None,
    max_points_per_bin: Optional[int] = None,
    *,
    backend: str = "auto",
) -> PointFragments:
    """Rasterize each point cloud, already in NDC, onto its own image (PyTorch3D's ``rasterize_points``).

    Args:
        pointclouds: :class:`diffras.structures.Pointclouds` of N clouds whose points are
            ``(x_ndc, y_ndc, z_view)`` (what :class:`PointsRasterizer` produces from world points), NDC
            as in docs/conventions.md: +X left, +Y up, the shorter image side spans [-1, 1].
        image_size: int or (H, W); non-square images follow PyTorch3D's NDC.
        radius: disk radius in NDC units: a number, or per point (see :func:`format_radius`).
        points_per_pixel: K >= 1, points kept per pixel.
        bin_size: tile side in pixels of the numba backend; None chooses, 0 disables binning. Changes
            speed, never the result.
        max_points_per_bin: accepted for PyTorch3D compatibility; bins always grow to hold every point,
            so nothing is ever dropped and the value has no effect.
        backend: visibility backend: ``"auto"`` (numba on CPU, torch elsewhere), ``"numba"``,
            ``"torch"`` or ``"reference"``.

    Returns:
        :class:`PointFragments` ``(idx, zbuf, dists)``, each (N, H, W, K). The visibility rule (points
        with z < 0 skipped; a point touches a pixel when ``dists < radius^2``; the K nearest by z) is
        spelled out in :mod:`diffras.points.visibility`.

    Example:
        >>> import torch
        >>> from diffras.structures import Pointclouds
        >>> pc = Pointclouds(points=[torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 2.0]])])
        >>> idx, zbuf, dists = rasterize_points(pc, image_size=4, radius=0.4, points_per_pixel=2)
        >>> idx[0, 1:3, 1:3, 0].tolist(), zbuf[0, 1, 1].tolist()
        ([[0, 0], [0, 0]], [1.0, 2.0])
    """
    _check_pointclouds(pointclouds)
    H, W = check_image_size(image_size)
    K = check_int(points_per_pixel, "points_per_pixel", min=1, max=1024)
    if max_points_per_bin is not None:
        check_int(max_points_per_bin, "max_points_per_bin", min=1)
    points = pointclouds.points_packed()
    r = format_radius(radius, pointclouds)
    idx = points_visibility(points, r, pointclouds.cloud_to_packed_first_idx(), pointclouds.num_points_per_cloud(),
                            (H, W), points_per_pixel=K, backend=backend, bin_size=bin_size)
    zbuf, dists = point_fragments(points, idx)
    return PointFragments(idx, zbuf, dists)
