"""``rasterization``: gsplat 1.5's Gaussian-splatting entry point, on the CPU (Numba) and any torch device.

gsplat users change only the import: ``from diffras.splat import rasterization``. The semantics are those of
gsplat's CUDA kernels (not of its pure-torch helpers, which differ in places); docs/splatting.md lists them
with the few gsplat options not supported here.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch

from .._validation import (
    check_choice,
    check_float,
    check_int,
    check_same_device,
    check_tensor,
    MAX_IMAGE_SIDE,
)
from ._composite import composite
from .binning import intersect_tiles
from .projection import project_gaussians
from .sh import num_sh_bases, spherical_harmonics

__all__ = ["rasterization"]

RENDER_MODES = ("RGB", "D", "ED", "RGB+D", "RGB+ED")
# Refuse scenes whose tile lists alone would not fit in memory (8 bytes per entry, plus the gradient rows).
MAX_INTERSECTIONS = 400_000_000


def _check_inputs(means, quats, scales, opacities, colors, viewmats, Ks, sh_degree, backgrounds):
    sizes: Dict[str, int] = {}
    check_tensor(means, "means", shape=("N", 3), dtype="float", finite=True, sizes=sizes)
    check_tensor(quats, "quats", shape=("N", 4), dtype="float", finite=True, sizes=sizes)
    check_tensor(scales, "scales", shape=("N", 3), dtype="float", finite=True, sizes=sizes)
    check_tensor(opacities, "opacities", shape=("N",), dtype="float", finite=True, sizes=sizes)
    check_tensor(viewmats, "viewmats", shape=("C", 4, 4), dtype="float", finite=True, sizes=sizes)
    check_tensor(Ks, "Ks", shape=("C", 3, 3), dtype="float", finite=True, sizes=sizes)
    if sh_degree is None:
        check_tensor(colors, "colors", dtype="float", finite=True)
        spec = ("N", None) if colors.dim() == 2 else ("C", "N", None)
        check_tensor(colors, "colors (post-activation, sh_degree=None)", shape=spec, sizes=sizes)
    else:
        k = num_sh_bases(sh_degree)
        check_tensor(colors, "colors", dtype="float", finite=True)
        spec = ("N", None, 3) if colors.dim() == 3 else ("C", "N", None, 3)
        check_tensor(colors, f"colors (SH coefficients, sh_degree={sh_degree})", shape=spec, sizes=sizes)
        if colors.shape[-2] < k:
            raise ValueError(f"colors: expected at least {k} SH coefficients for sh_degree={sh_degree}, got {colors.shape[-2]}")
    if quats.numel() and not bool((quats.norm(dim=-1) > 0).all()):
        raise ValueError("quats: expected non-zero quaternions (they are normalised), got a zero row")
    if Ks.numel() and not bool(((Ks[:, 0, 0] > 0) & (Ks[:, 1, 1] > 0)).all()):
        raise ValueError("Ks: expected positive focal lengths fx = Ks[:, 0, 0] and fy = Ks[:, 1, 1]")
    check_same_device(means=means, quats=quats, scales=scales, opacities=opacities, colors=colors,
                      viewmats=viewmats, Ks=Ks, backgrounds=backgrounds)
    return sizes


def rasterization(
    means: torch.Tensor,
    quats: torch.Tensor,
    scales: torch.Tensor,
    opacities: torch.Tensor,
    colors: torch.Tensor,
    viewmats: torch.Tensor,
    Ks: torch.Tensor,
    width: int,
    height: int,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    radius_clip: float = 0.0,
    eps2d: float = 0.3,
    sh_degree: Optional[int] = None,
    packed: bool = True,
    tile_size: int = 16,
    backgrounds: Optional[torch.Tensor] = None,
    render_mode: str = "RGB",
    sparse_grad: bool = False,
    absgrad: bool = False,
    rasterize_mode: str = "classic",
    channel_chunk: int = 32,
    camera_model: str = "pinhole",
    *,
    backend: str = "auto",
) -> Tuple[torch.Tensor, torch.Tensor, Dict]:
    """Render ``N`` 3D Gaussians into ``C`` pinhole cameras, front to back per 16x16 tile, as gsplat.

    Args:
        means: (N, 3) world positions.  quats: (N, 4) rotations, wxyz, any non-zero norm.
        scales: (N, 3) standard deviations along the rotated axes (not log-scales).
        opacities: (N,) in [0, 1] (after the sigmoid).
        colors: post-activation ``(N, D)`` or ``(C, N, D)`` when ``sh_degree`` is None; else SH coefficients
            ``(N, K, 3)`` or ``(C, N, K, 3)`` with ``K >= (sh_degree + 1) ** 2``, turned into colours by
            ``max(SH(mean - camera centre) + 0.5, 0)``.
        viewmats: (C, 4, 4) world-to-camera in the OpenCV convention (+X right, +Y down, +Z forward).
        Ks: (C, 3, 3) intrinsics in pixels; pixel ``(row i, column j)`` has its centre at ``(j + 0.5, i + 0.5)``.
        width, height: image size in pixels.
        near_plane, far_plane: Gaussians whose camera z is outside ``[near, far]`` are culled.
        radius_clip: Gaussians whose pixel radii are both ``<= radius_clip`` are culled.
        eps2d: added to the diagonal of each 2D covariance (screen-space blur, pixels^2).
        sh_degree: None (colours given) or 0-3.
        packed: layout of ``meta``'s per-Gaussian entries (gsplat's): True gives ``(nnz, ...)`` lists of the
            visible (camera, Gaussian) pairs with ``camera_ids``/``gaussian_ids``; False gives ``(C, N, ...)``.
            The images are identical.
        tile_size: tile side in pixels (16).
        backgrounds: optional (C, D) colours behind the Gaussians (the depth channel's background is 0).
        render_mode: "RGB", "D" (accumulated depth), "ED" (expected depth ``D / max(alpha, 1e-10)``),
            "RGB+D", "RGB+ED".
        rasterize_mode: "classic" or "antialiased" (opacity times ``sqrt(det Sigma / det(Sigma + eps2d I))``).
        sparse_grad, absgrad, channel_chunk, camera_model: gsplat's options; only the defaults (and
            ``camera_model="pinhole"``) are supported; ``channel_chunk`` has no effect here.
        backend: diffras's choice of kernels: "auto" (Numba for CPU float32/float64, else torch), "numba",
            "torch".

    Returns:
        ``render_colors: (C, H, W, D')`` (D' = D, 1 or D + 1 with a depth channel last),
        ``render_alphas: (C, H, W, 1)`` (1 - final transmittance) and ``meta``, a dict with gsplat's keys:
        ``means2d`` (with a gradient; call ``retain_grad()`` before backward to read it, as
        ``DefaultStrategy`` does), ``radii`` (int32, 0 = culled), ``depths``, ``conics``, ``opacities``,
        ``camera_ids``/``gaussian_ids`` (packed) or None, ``tiles_per_gauss``, ``flatten_ids``,
        ``isect_offsets``, ``tile_width``, ``tile_height``, ``tile_size``, ``width``, ``height``,
        ``n_cameras``, ``n_batches``.
    """
    sizes = _check_inputs(means, quats, scales, opacities, colors, viewmats, Ks, sh_degree, backgrounds)
    C, N = sizes["C"], sizes["N"]
    width = check_int(width, "width", min=1, max=MAX_IMAGE_SIDE)
    height = check_int(height, "height", min=1, max=MAX_IMAGE_SIDE)
    near_plane = check_float(near_plane, "near_plane", min=0.0, min_exclusive=True)
    far_plane = check_float(far_plane, "far_plane", min=near_plane, min_exclusive=True)
    radius_clip = check_float(radius_clip, "radius_clip")
    eps2d = check_float(eps2d, "eps2d", min=0.0)
    tile_size = check_int(tile_size, "tile_size", min=1, max=256)
    check_choice(render_mode, "render_mode", RENDER_MODES)
    check_choice(rasterize_mode, "rasterize_mode", ("classic", "antialiased"))
    check_choice(camera_model, "camera_model", ("pinhole",))
    check_choice(backend, "backend", ("auto", "numba", "torch"))
    for name, flag in (("sparse_grad", sparse_grad), ("absgrad", absgrad)):
        if flag:
            raise ValueError(f"{name}: only False is supported by diffras.splat, got {flag!r}")
    dtype = means.dtype
    if backend == "auto":
        backend = "numba" if means.device.type == "cpu" and dtype in (torch.float32, torch.float64) else "torch"
    if backend == "numba" and (means.device.type != "cpu" or dtype not in (torch.float32, torch.float64)):
        raise ValueError(f"backend: 'numba' needs CPU float32/float64 tensors, got {dtype} on {means.device}")
    quats, scales, opacities, colors, viewmats, Ks = (t.to(dtype) for t in (quats, scales, opacities, colors, viewmats, Ks))

    proj = project_gaussians(means, quats, scales, opacities, viewmats, Ks, width, height, near_plane=near_plane,
                             far_plane=far_plane, radius_clip=radius_clip, eps2d=eps2d,
                             antialiased=rasterize_mode == "antialiased", backend=backend)
    radii, depths = proj["radii"], proj["depths"]
    visible = (radii > 0).all(dim=-1)  # (C, N)

    if sh_degree is None:
        cols = colors if colors.dim() == 3 else colors[None].expand(C, N, colors.shape[-1])
    else:
        campos = torch.linalg.inv(viewmats)[:, :3, 3]  # (C, 3)
        shs = colors if colors.dim() == 4 else colors[None].expand((C,) + tuple(colors.shape))
        cols = torch.clamp_min(spherical_harmonics(sh_degree, means[None] - campos[:, None], shs) + 0.5, 0.0)
    if backgrounds is not None:
        backgrounds = check_tensor(backgrounds, "backgrounds", shape=(C, cols.shape[-1]), dtype="float", finite=True).to(dtype)
    if render_mode in ("RGB+D", "RGB+ED"):
        cols = torch.cat([cols, depths[..., None]], dim=-1)
        backgrounds = None if backgrounds is None else torch.cat([backgrounds, backgrounds.new_zeros(C, 1)], -1)
    elif render_mode in ("D", "ED"):
        cols = depths[..., None]
        backgrounds = None if backgrounds is None else backgrounds.new_zeros(C, 1)
    D = cols.shape[-1]
    bg = backgrounds if backgrounds is not None else cols.new_zeros(C, D)

    means2d = proj["means2d"]
    meta: Dict = {"n_batches": 1, "n_cameras": C, "width": width, "height": height, "tile_size": tile_size}
    if packed:
        camera_ids, gaussian_ids = torch.nonzero(visible, as_tuple=True)
        flat_ids = camera_ids * N + gaussian_ids
        # The packed means2d is the tensor the compositor reads (scattered back), so its .grad is filled.
        means2d_packed = means2d.reshape(C * N, 2)[flat_ids]
        means2d_flat = torch.zeros(C * N, 2, dtype=dtype, device=means.device).index_put((flat_ids,), means2d_packed)
        meta.update(camera_ids=camera_ids, gaussian_ids=gaussian_ids, means2d=means2d_packed,
                    radii=radii[visible], depths=depths[visible], conics=proj["conics"][visible],
                    opacities=proj["opacities"][visible])
    else:
        means2d_flat = means2d.reshape(C * N, 2)
        meta.update(camera_ids=None, gaussian_ids=None, means2d=means2d, radii=radii, depths=depths,
                    conics=proj["conics"], opacities=proj["opacities"])

    with torch.no_grad():
        isect = intersect_tiles(means2d.detach(), radii, depths.detach(), width, height, tile_size,
                                backend="numba" if backend == "numba" else "torch")
    n_isect = int(isect.flatten_ids.numel())
    if n_isect > MAX_INTERSECTIONS:
        raise ValueError(f"means/scales: the Gaussians cover {n_isect} (tile, Gaussian) pairs, more than the "
                         f"{MAX_INTERSECTIONS} diffras.splat holds in memory; use fewer or smaller Gaussians or cameras")
    meta.update(tile_width=isect.tile_width, tile_height=isect.tile_height, tiles_per_gauss=isect.tiles_per_gauss,
                flatten_ids=isect.flatten_ids, isect_offsets=isect.isect_offsets(C))

    render_colors, render_alphas = composite(
        means2d_flat, proj["conics"].reshape(C * N, 3), proj["opacities"].reshape(C * N),
        cols.reshape(C * N, D), bg, radii.reshape(C * N, 2), isect, C, width, height, backend)
    if render_mode in ("ED", "RGB+ED"):
        render_colors = torch.cat([render_colors[..., :-1], render_colors[..., -1:] / render_alphas.clamp(min=1e-10)], -1)
    return render_colors, render_alphas, meta
