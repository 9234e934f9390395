"""Ray samplers: emit rays from cameras' image planes and sample depths along them, as PyTorch3D's.

Every sampler returns a :class:`RayBundle` whose ``lengths`` are view-space depths (the directions
have view-space z = 1) unless ``unit_directions=True`` normalises the directions (then ``lengths``
are still the depths that were asked for, measured along the unit vector, as PyTorch3D).

Image-plane coordinates ``xys`` are in the cameras' NDC (``docs/conventions.md``: +X left, +Y up, the
shorter side spanning [-1, 1]); rays are made by unprojecting each (x, y) at view depths 1 and 2
with ``cameras.unproject_points(..., from_ndc=True)``, so every camera model works.
"""
from __future__ import annotations

from typing import Optional, Tuple, Union

import torch

from .._validation import _describe, check_float, check_int, check_tensor
from ..cameras import CamerasBase
from .ray_bundle import HeterogeneousRayBundle, RayBundle

__all__ = ["MonteCarloRaysampler", "MultinomialRaysampler", "NDCMultinomialRaysampler"]


def _check_cameras(cameras) -> CamerasBase:
    if not isinstance(cameras, CamerasBase):
        raise TypeError(f"cameras: expected a diffras camera (CamerasBase), got {_describe(cameras)}")
    return cameras


def _check_depths(min_depth, max_depth) -> Tuple[float, float]:
    lo = check_float(min_depth, "min_depth")
    hi = check_float(max_depth, "max_depth")
    if hi < lo:
        raise ValueError(f"max_depth: expected max_depth >= min_depth ({lo}), got {hi}")
    return lo, hi


def _check_counts(n_rays_per_image, n_rays_total) -> None:
    if n_rays_per_image is not None:
        check_int(n_rays_per_image, "n_rays_per_image", min=1)
    if n_rays_total is not None:
        check_int(n_rays_total, "n_rays_total", min=1)


def jiggle_within_stratas(bin_centers: torch.Tensor) -> torch.Tensor:
    """(..., P) sorted depths -> one uniform sample in each depth's stratum: between the midpoints to
    its neighbours (the first and last strata end at the first and last depth), as PyTorch3D."""
    mids = 0.5 * (bin_centers[..., 1:] + bin_centers[..., :-1])
    upper = torch.cat((mids, bin_centers[..., -1:]), dim=-1)
    lower = torch.cat((bin_centers[..., :1], mids), dim=-1)
    return lower + (upper - lower) * torch.rand_like(lower)


def xy_to_ray_bundle(
    cameras: CamerasBase,
    xy_grid: torch.Tensor,
    min_depth: float,
    max_depth: float,
    n_pts_per_ray: int,
    unit_directions: bool,
    stratified_sampling: bool = False,
) -> RayBundle:
    """Rays through NDC points ``xy_grid`` (B, ..., 2) of B cameras, with ``n_pts_per_ray`` depths
    evenly spaced in [min_depth, max_depth] (jittered within strata if ``stratified_sampling``)."""
    batch = xy_grid.shape[0]
    spatial = xy_grid.shape[1:-1]
    n_rays = spatial.numel()
    xy = xy_grid.reshape(batch, n_rays, 2)
    zs = xy.new_empty((batch, n_rays, 0))
    if n_pts_per_ray > 0:
        depths = torch.linspace(min_depth, max_depth, n_pts_per_ray, dtype=xy.dtype, device=xy.device)
        zs = depths.expand(batch, n_rays, n_pts_per_ray)
        if stratified_sampling:
            zs = jiggle_within_stratas(zs)
    # Two points per ray, at view depth 1 and 2: their difference is the direction with view z = 1,
    # so a length is a view-space depth; the origin is one direction back from the first point.
    ones = xy.new_ones(batch, n_rays, 1)
    planes = torch.cat((torch.cat((xy, ones), -1), torch.cat((xy, 2 * ones), -1)), 1)
    world = cameras.unproject_points(planes, world_coordinates=True, from_ndc=True)
    if world.dim() == 2:
        world = world[None]
    world = world.expand(batch, -1, -1)
    first, second = world[:, :n_rays], world[:, n_rays:]
    directions = second - first
    origins = first - directions
    if unit_directions:
        directions = torch.nn.functional.normalize(directions, dim=-1)
    return RayBundle(
        origins.reshape(batch, *spatial, 3),
        directions.reshape(batch, *spatial, 3),
        zs.reshape(batch, *spatial, n_pts_per_ray),
        xy_grid,
    )


def safe_multinomial(weights: torch.Tensor, num_samples: int) -> torch.Tensor:
    """(B, n) non-negative weights -> (B, num_samples) indices: without replacement where a row has at
    least ``num_samples`` non-zero weights, with replacement elsewhere (as PyTorch3D)."""
    enough = (weights > 0).sum(-1) >= num_samples
    out = torch.empty(weights.shape[0], num_samples, dtype=torch.long, device=weights.device)
    if bool(enough.any()):
        out[enough] = torch.multinomial(weights[enough], num_samples, replacement=False)
    if not bool(enough.all()):
        out[~enough] = torch.multinomial(weights[~enough], num_samples, replacement=True)
    return out


def sample_cameras(n_rays_total: int, cameras: CamerasBase, mask: Optional[torch.Tensor]):
    """Draw ``n_rays_total`` cameras with replacement: (unique cameras, their masks, ids (M,),
    counts (M,), the largest count)."""
    ids = torch.randint(0, len(cameras), (n_rays_total,), dtype=torch.long)
    unique, counts = torch.unique(ids, return_counts=True)
    return cameras[unique], (mask[unique.to(mask.device)] if mask is not None else None), unique, counts, int(counts.max())


def pack_ray_bundle(bundle: RayBundle, camera_ids: torch.Tensor, camera_counts: torch.Tensor) -> HeterogeneousRayBundle:
    """Keep the first ``camera_counts[m]`` rays of camera m: (M, R, ...) -> (sum counts, 1, ...)."""
    counts = camera_counts.to(bundle.origins.device)
    r = bundle.origins.shape[1]
    keep = (torch.arange(r, device=counts.device)[None] < counts[:, None]).reshape(-1)

    def pack(t):
        return t.reshape(t.shape[0] * r, *t.shape[2:])[keep][:, None]

    return HeterogeneousRayBundle(
        origins=pack(bundle.origins), directions=pack(bundle.directions), lengths=pack(bundle.lengths),
        xys=pack(bundle.xys), camera_ids=camera_ids, camera_counts=camera_counts,
    )


class MultinomialRaysampler(torch.nn.Module):
    """Rays through a regular grid of image points, with ``n_pts_per_ray`` depths each (PyTorch3D's).

    The grid has ``image_height`` rows from ``min_y`` to ``max_y`` and ``image_width`` columns from
    ``min_x`` to ``max_x`` (pixel centres, in the cameras' NDC). ``forward(cameras)`` returns a
    :class:`RayBundle` with origins / directions (B, H, W, 3), lengths (B, H, W, P), xys (B, H, W, 2);
    with ``n_rays_per_image`` (or a ``mask``) a random subset of grid rays: (B, n, 1, ...), drawn
    with probabilities proportional to ``mask`` (B, H, W); with ``n_rays_total`` a
    :class:`HeterogeneousRayBundle` of (n_rays_total, 1, ...) rays from cameras drawn with replacement.

    Every argument of ``forward`` except ``cameras`` overrides the constructor's value for one call.
    """

    def __init__(
        self,
        *,
        min_x: float,
        max_x: float,
        min_y: float,
        max_y: float,
        image_width: int,
        image_height: int,
        n_pts_per_ray: int,
        min_depth: float,
        max_depth: float,
        n_rays_per_image: Optional[int] = None,
        n_rays_total: Optional[int] = None,
        unit_directions: bool = False,
        stratified_sampling: bool = False,
    ) -> None:
        super().__init__()
        for v, name in ((min_x, "min_x"), (max_x, "max_x"), (min_y, "min_y"), (max_y, "max_y")):
            check_float(v, name)
        w = check_int(image_width, "image_width", min=1)
        h = check_int(image_height, "image_height", min=1)
        self._n_pts_per_ray = check_int(n_pts_per_ray, "n_pts_per_ray", min=0)
        self._min_depth, self._max_depth = _check_depths(min_depth, max_depth)
        _check_counts(n_rays_per_image, n_rays_total)
        self._n_rays_per_image = n_rays_per_image
        self._n_rays_total = n_rays_total
        self._unit_directions = bool(unit_directions)
        self._stratified_sampling = bool(stratified_sampling)
        self.min_x, self.max_x, self.min_y, self.max_y = min_x, max_x, min_y, max_y
        y, x = torch.meshgrid(
            torch.linspace(min_y, max_y, h, dtype=torch.float32),
            torch.linspace(min_x, max_x, w, dtype=torch.float32),
            indexing="ij",
        )
        self.register_buffer("_xy_grid", torch.stack((x, y), dim=-1), persistent=False)

    def forward(
        self,
        cameras: CamerasBase,
        *,
        mask: Optional[torch.Tensor] = None,
        min_depth: Optional[float] = None,
        max_depth: Optional[float] = None,
        n_rays_per_image: Optional[int] = None,
        n_pts_per_ray: Optional[int] = None,
        stratified_sampling: Optional[bool] = None,
        n_rays_total: Optional[int] = None,
        **kwargs,
    ) -> Union[RayBundle, HeterogeneousRayBundle]:
        _check_cameras(cameras)
        n_rays_total = n_rays_total or self._n_rays_total
        n_rays_per_image = n_rays_per_image or self._n_rays_per_image
        if n_rays_total is not None and n_rays_per_image is not None:
            raise ValueError("n_rays_total: expected at most one of n_rays_total and n_rays_per_image, got both")
        _check_counts(n_rays_per_image, n_rays_total)
        grid_hw = self._xy_grid.shape[:2]
        if mask is not None:
            check_tensor(mask, "mask", shape=(len(cameras), *grid_hw))
            if bool((mask < 0).any()) or not bool((mask.reshape(len(cameras), -1).sum(-1) > 0).all()):
                raise ValueError("mask: expected non-negative weights with a non-zero entry in every image")
        camera_ids = camera_counts = None
        if n_rays_total:
            cameras, mask, camera_ids, camera_counts, n_rays_per_image = sample_cameras(n_rays_total, cameras, mask)
        batch = len(cameras)
        xy_grid = self._xy_grid.to(device=cameras.device, dtype=cameras.dtype).expand(batch, -1, -1, -1)
        if mask is not None and n_rays_per_image is None:
            n_rays_per_image = int(mask.sum(dim=(1, 2)).min())
            if n_rays_per_image < 1:
                raise ValueError("mask: expected at least one ray per image (the smallest mask sums to < 1)")
        if n_rays_per_image is not None:
            weights = mask.reshape(batch, -1).to(xy_grid.dtype) if mask is not None else xy_grid.new_ones(batch, grid_hw.numel())
            idx = safe_multinomial(weights, n_rays_per_image)[..., None].expand(-1, -1, 2)
            xy_grid = torch.gather(xy_grid.reshape(batch, -1, 2), 1, idx)[:, :, None]
        lo, hi = _check_depths(
            self._min_depth if min_depth is None else min_depth, self._max_depth if max_depth is None else max_depth
        )
        n_pts = self._n_pts_per_ray if n_pts_per_ray is None else check_int(n_pts_per_ray, "n_pts_per_ray", min=0)
        strat = self._stratified_sampling if stratified_sampling is None else bool(stratified_sampling)
        bundle = xy_to_ray_bundle(cameras, xy_grid, lo, hi, n_pts, self._unit_directions, strat)
        return pack_ray_bundle(bundle, camera_ids, camera_counts) if n_rays_total else bundle


class NDCMultinomialRaysampler(MultinomialRaysampler):
    """:class:`MultinomialRaysampler` whose grid is the pixel centres of an ``image_height x
    image_width`` image in PyTorch3D's NDC (``docs/conventions.md``), row 0 at the top (largest y),
    column 0 at the left (largest x): so ``images[n, i, j]`` is pixel (i, j) of the mesh renderer."""

    def __init__(
        self,
        *,
        image_width: int,
        image_height: int,
        n_pts_per_ray: int,
        min_depth: float,
        max_depth: float,
        n_rays_per_image: Optional[int] = None,
        n_rays_total: Optional[int] = None,
        unit_directions: bool = False,
        stratified_sampling: bool = False,
    ) -> None:
        w = check_int(image_width, "image_width", min=1)
        h = check_int(image_height, "image_height", min=1)
        range_x, range_y = (w / h, 1.0) if w >= h else (1.0, h / w)
        half_w, half_h = range_x / w, range_y / h
        super().__init__(
            min_x=range_x - half_w, max_x=-range_x + half_w, min_y=range_y - half_h, max_y=-range_y + half_h,
            image_width=w, image_height=h, n_pts_per_ray=n_pts_per_ray, min_depth=min_depth, max_depth=max_depth,
            n_rays_per_image=n_rays_per_image, n_rays_total=n_rays_total,
            unit_directions=unit_directions, stratified_sampling=stratified_sampling,
        )


class MonteCarloRaysampler(torch.nn.Module):
    """``n_rays_per_image`` rays through uniformly random image points in [min_x, max_x] x [min_y,
    max_y] (the cameras' NDC), ``n_pts_per_ray`` depths each (PyTorch3D's). ``forward(cameras)``
    returns origins / directions (B, n, 3), lengths (B, n, P), xys (B, n, 2); with ``n_rays_total``
    instead a :class:`HeterogeneousRayBundle` of (n_rays_total, 1, ...) rays."""

    def __init__(
        self,
        min_x: float,
        max_x: float,
        min_y: float,
        max_y: float,
        n_rays_per_image: Optional[int],
        n_pts_per_ray: int,
        min_depth: float,
        max_depth: float,
        *,
        n_rays_total: Optional[int] = None,
        unit_directions: bool = False,
        stratified_sampling: bool = False,
    ) -> None:
        super().__init__()
        self._min_x, self._max_x = check_float(min_x, "min_x"), check_float(max_x, "max_x")
        self._min_y, self._max_y = check_float(min_y, "min_y"), check_float(max_y, "max_y")
        _check_counts(n_rays_per_image, n_rays_total)
        if (n_rays_per_image is None) == (n_rays_total is None):
            raise ValueError(
                f"n_rays_per_image: expected exactly one of n_rays_per_image and n_rays_total, "
                f"got {n_rays_per_image!r} and {n_rays_total!r}"
            )
        self._n_rays_per_image = n_rays_per_image
        self._n_rays_total = n_rays_total
        self._n_pts_per_ray = check_int(n_pts_per_ray, "n_pts_per_ray", min=0)
        self._min_depth, self._max_depth = _check_depths(min_depth, max_depth)
        self._unit_directions = bool(unit_directions)
        self._stratified_sampling = bool(stratified_sampling)

    def forward(self, cameras: CamerasBase, *, stratified_sampling: Optional[bool] = None, **kwargs):
        _check_cameras(cameras)
        camera_ids = camera_counts = None
        if self._n_rays_total:
            cameras, _, camera_ids, camera_counts, n_rays = sample_cameras(self._n_rays_total, cameras, None)
        else:
            n_rays = self._n_rays_per_image
        batch = len(cameras)
        lo = torch.tensor([self._min_x, self._min_y], dtype=cameras.dtype, device=cameras.device)
        hi = torch.tensor([self._max_x, self._max_y], dtype=cameras.dtype, device=cameras.device)
        xy = torch.rand(batch, n_rays, 2, dtype=cameras.dtype, device=cameras.device) * (hi - lo) + lo
        strat = self._stratified_sampling if stratified_sampling is None else bool(stratified_sampling)
        bundle = xy_to_ray_bundle(
            cameras, xy, self._min_depth, self._max_depth, self._n_pts_per_ray, self._unit_directions, strat
        )
        return pack_ray_bundle(bundle, camera_ids, camera_counts) if self._n_rays_total else bundle
