"""Fit a textured mesh to images of a target: the classic "fit a mesh via rendering" task.

An ico-sphere is deformed through per-vertex offsets, and coloured through per-vertex colours, with Adam,
so that its soft silhouettes and soft-Phong renders match those of the target from many views, held in
shape by edge-length, normal-consistency and Laplacian regularisers. Evaluation uses views the fit never saw.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional

import torch

from .. import distributed
from .._validation import check_choice
from ..cameras import sphere_cameras
from ..losses import (
    chamfer_distance,
    mesh_edge_loss,
    mesh_laplacian_smoothing,
    mesh_normal_consistency,
    psnr,
    silhouette_iou,
)
from ..ops import ico_sphere, sample_points_from_meshes
from ..raster import MeshRasterizer, RasterSettings
from ..shading import AntialiasedHardPhongShader, BlendParams, SoftPhongShader, TexturesVertex
from ..structures import Meshes
from .scene import (
    cosine_schedule,
    headlight,
    normalize_to_unit_sphere,
    render_views,
    soft_blur_radius,
    with_default_colors,
)
from .pose import GRADIENTS, _pyramid_mse

__all__ = ["FitConfig", "FitResult", "evaluate_fit", "fit_mesh"]


@dataclass
class FitConfig:
    """Every default of the fit lives here (the CLI only overrides what the user gives)."""

    views: int = 20  # training views
    holdout: int = 10  # evaluation views, never used for fitting
    # Training and held-out views. 192 since the packed, fused renderer made it affordable: measured on the cow
    # (seeds 0 and 1, both evaluated at 256^2), held-out IoU 0.9718 / 0.9715 and PSNR 26.48 / 26.17 dB against
    # 0.9695 / 0.9672 and 25.91 / 25.80 dB at 128, in ~22 s instead of ~16 s (256 gains ~0.3 dB more but
    # takes ~37 s, past the 30 s budget of issue 9).
    image_size: int = 192
    level: int = 4  # ico-sphere level of the initial mesh
    iters: int = 300
    views_per_iter: int = 4
    lr: float = 0.03  # Adam, vertex offsets (cosine-decayed to lr_final_fraction * lr over the run)
    color_lr: float = 0.2  # Adam, vertex colour logits (same decay)
    lr_final_fraction: float = 0.05
    sigma: float = 1e-4  # SoftRas blur at the start...
    sigma_end: float = 3e-6  # ...decayed geometrically to this: see fit_mesh for why
    # K of the soft renders. The cost of every fragment kernel follows the filled slots, and on a closed
    # mesh at this size a pixel near the start (large sigma) has ~22 faces within the blur radius, half of
    # them back faces that the depth-weighted blend gives no colour weight and that cannot raise an alpha the
    # front faces already saturate. K = 8 keeps the nearest (and the covering face, ``keep_covering``):
    # measured on the cow (1 thread; seeds 0-2 at K = 8, 0-1 at K = 30), the same held-out IoU (0.967-0.970)
    # and PSNR (26.1-26.3 dB against 26.0-26.2) as K = 30 at ~63% of the CPU time.
    faces_per_pixel: int = 8
    # Soft renders keep the faces turned away from the camera by default. Culling them halves the fragments
    # (and ~25% of the fit's time) but cost ~0.6 dB of held-out PSNR on the cow (measured, 2 seeds), even
    # when only the first half of the run culls: faces folded over during the fit get no colour or shape
    # gradient while they face away, yet show in the held-out renders.
    cull_backfaces: bool = False
    w_silhouette: float = 1.0
    w_rgb: float = 1.0
    w_edge: float = 1.0
    w_normal: float = 0.01
    w_laplacian: float = 1.0
    snapshot_every: int = 10
    chamfer_samples: int = 10000
    dist: float = 2.7
    fov: float = 60.0
    # "soft": SoftRas blur (sigma schedule above); "antialias": hard K = 1 renders with nvdiffrast's analytic
    # silhouette antialiasing, compared on an image pyramid of pyramid_levels scales.
    gradients: str = "soft"
    pyramid_levels: int = 3


@dataclass
class FitResult:
    mesh: Meshes  # the fitted mesh, in the target's normalised frame, with TexturesVertex colours
    target: Meshes  # the target, normalised to the unit sphere
    history: Dict[str, List[float]] = field(default_factory=dict)  # loss terms per iteration
    snapshots: List[torch.Tensor] = field(default_factory=list)  # (H, 2W, 3) fit beside target
    metrics: Dict[str, float] = field(default_factory=dict)


def evaluate_fit(fit: Meshes, target: Meshes, cfg: FitConfig, device=None) -> Dict[str, float]:
    """Held-out silhouette IoU and RGB PSNR, and chamfer distance, both meshes scaled so that the target's
    bounding-box diagonal is 1 (chamfer: squared distances, mean over points, summed over both directions,
    as PyTorch3D's ``chamfer_distance``)."""
    cams = sphere_cameras(cfg.holdout, dist=cfg.dist, fov=cfg.fov, phase=1.0, device=device)
    with torch.no_grad():
        a = render_views(fit, cams, cfg.image_size)
        b = render_views(target, cams, cfg.image_size)
        iou = silhouette_iou(a[..., 3], b[..., 3]).mean()
        full_psnr = psnr(a[..., :3], b[..., :3]).mean()
        bbox = target.get_bounding_boxes()[0]
        diag = (bbox[:, 1] - bbox[:, 0]).norm()
        pts_fit = sample_points_from_meshes(fit.scale_verts(1.0 / diag), cfg.chamfer_samples)
        pts_tgt = sample_points_from_meshes(target.scale_verts(1.0 / diag), cfg.chamfer_samples)
        cham, _ = chamfer_distance(pts_fit, pts_tgt)
    return {
        "heldout_silhouette_iou": float(iou),
        "heldout_rgb_psnr_db": float(full_psnr),
        "chamfer_unit_diagonal": float(cham),
    }


def fit_mesh(
    target: Meshes,
    cfg: Optional[FitConfig] = None,
    *,
    device: Optional[torch.device] = None,
    seed: int = 0,
    progress: Optional[Callable[[int, Dict[str, float]], None]] = None,
) -> FitResult:
    """Deform an ico-sphere into ``target`` (a one-mesh ``Meshes``) from its rendered views.

    Args:
        target: the mesh to reconstruct; it is normalised to the unit sphere first.
        cfg: settings; ``FitConfig()`` by default.
        device: where to run (default: the target's device).
        seed: seeds the choice of views per step and the chamfer samples.
        progress: called as ``progress(step, losses)`` after every step (a progress bar hook).

    Under ``torchrun`` (see :mod:`diffras.distributed`) every rank draws the same views per step and renders
    its share of them; the image losses are normalised by the step's total view count and the regularisers
    split evenly, so the all-reduced gradient is the single-process one and all ranks stay identical.
    """
    cfg = cfg or FitConfig()
    check_choice(cfg.gradients, "gradients", GRADIENTS)
    if len(target) != 1:
        raise ValueError(f"target: expected a single mesh, got a batch of {len(target)}")
    device = torch.device(device) if device is not None else target.device
    torch.manual_seed(seed)
    target = with_default_colors(normalize_to_unit_sphere(target.to(device)))
    start = time.perf_counter()

    cams = sphere_cameras(cfg.views, dist=cfg.dist, fov=cfg.fov, device=device)
    with torch.no_grad():
        target_images = render_views(target, cams, cfg.image_size)  # (V, H, W, 4)

    src = ico_sphere(cfg.level, device=device)
    offsets = torch.zeros_like(src.verts_packed(), requires_grad=True)
    # Colours through a sigmoid: a clamped parameter pushed past 0 or 1 gets no gradient and stays stuck at
    # a saturated colour (speckles); a logit is always pulled back.
    color_logits = torch.zeros_like(src.verts_packed(), requires_grad=True)  # sigmoid(0) = 0.5 grey
    opt = torch.optim.Adam([{"params": [offsets], "lr": cfg.lr}, {"params": [color_logits], "lr": cfg.color_lr}])
    # Large steps early to move the sphere into place, small ones late so Adam's noise does not keep the
    # surface jittering around the optimum.
    sched = cosine_schedule(opt, cfg.iters, cfg.lr_final_fraction)

    settings = RasterSettings(
        image_size=cfg.image_size, blur_radius=soft_blur_radius(cfg.sigma), faces_per_pixel=cfg.faces_per_pixel
    )
    rasterizer = MeshRasterizer(cameras=cams, raster_settings=settings)
    phong = SoftPhongShader(cameras=cams, lights=headlight(cams))
    aa_phong = AntialiasedHardPhongShader(cameras=cams, lights=headlight(cams))

    eval_cam = sphere_cameras(1, dist=cfg.dist, fov=cfg.fov, phase=2.0, device=device)
    with torch.no_grad():
        eval_target = render_views(target, eval_cam, cfg.image_size)[0, ..., :3]

    history: Dict[str, List[float]] = {}
    snapshots: List[torch.Tensor] = []
    gen = torch.Generator().manual_seed(seed)
    ctx = distributed.context()
    for step in range(cfg.iters):
        distributed.fault_injection(step, ctx)
        chosen = torch.randperm(cfg.views, generator=gen)[: cfg.views_per_iter]
        # Every rank draws the same views (same generator); each renders its share of them.
        idx = chosen[ctx.rank::ctx.world_size].to(device)
        # A rank with no view this step (more ranks than views per step) renders one view with zero weight,
        # so that it still contributes (zero) gradients to the all-reduce.
        render_idx = idx if len(idx) else chosen[:1].to(device)
        # offset_verts keeps the sphere's cached topology (edges, index maps): nothing is rebuilt per step.
        mesh = src.offset_verts(offsets)
        mesh.textures = TexturesVertex([torch.sigmoid(color_logits)])
        batch = mesh.extend(len(render_idx))
        view_cams = cams[render_idx]
        # A soft silhouette is dilated: outside the surface every face within the blur radius adds
        # sigmoid(-d / sigma) to the coverage, so a fixed sigma makes the fit settle about a pixel inside
        # the true outline (held-out IoU stalls near 0.90). A large sigma early gives long-range
        # gradients; decaying it geometrically makes the final edges nearly hard, and cheaper.
        sigma = cfg.sigma * (cfg.sigma_end / cfg.sigma) ** (step / max(cfg.iters - 1, 1))
        blend = BlendParams(sigma=sigma, gamma=1e-4)
        target_batch = target_images[idx]
        # Each view's loss is weighted by 1 / (the step's view count over all ranks): summed over the ranks
        # that is the mean over the chosen views, whoever rendered them; the regularisers are split evenly.
        n_chosen, share, mine = len(chosen), 1.0 / ctx.world_size, len(idx)
        # One rasterization serves both losses: the silhouette and the colour see the same fragments.
        if cfg.gradients == "antialias":
            fragments = rasterizer(batch, cameras=view_cams, blur_radius=0.0, faces_per_pixel=1)
            img = aa_phong(fragments, batch, cameras=view_cams, lights=headlight(view_cams))
            alpha, rgb = img[..., 3:], img[..., :3]

            def view_loss(pred, tgt):
                return _pyramid_mse(pred, tgt, cfg.pyramid_levels)
        else:
            fragments = rasterizer(batch, cameras=view_cams, blur_radius=soft_blur_radius(sigma),
                                   cull_backfaces=cfg.cull_backfaces)
            # One shader serves both losses: the softmax blend's alpha, 1 - prod_k (1 - sigmoid(-d_k / sigma)),
            # is exactly the soft silhouette's (PyTorch3D's SoftSilhouetteShader) with the same sigma.
            img = phong(fragments, batch, cameras=view_cams, lights=headlight(view_cams), blend_params=blend)
            alpha, rgb = img[..., 3:], img[..., :3]

            def view_loss(pred, tgt):
                return ((pred - tgt) ** 2).mean()
        # ``* 0.0`` terms keep a rank with no view this step in the graph (zero gradients, same all-reduce).
        terms = {
            "silhouette": sum(view_loss(alpha[v], target_batch[v, ..., 3:]) for v in range(mine)) / n_chosen
            + alpha.sum() * 0.0,
            "rgb": sum(view_loss(rgb[v], target_batch[v, ..., :3]) for v in range(mine)) / n_chosen + rgb.sum() * 0.0,
            "edge": mesh_edge_loss(mesh) * share,
            "normal": mesh_normal_consistency(mesh) * share,
            "laplacian": mesh_laplacian_smoothing(mesh, method="uniform") * share,
        }
        weights = {k: getattr(cfg, f"w_{k}") for k in terms}
        loss = sum(weights[k] * v for k, v in terms.items())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        logged = torch.stack([v.detach() for v in terms.values()] + [loss.detach()])
        logged, _ = distributed.all_reduce_grads([offsets, color_logits], extra=logged, ctx=ctx)
        opt.step()
        sched.step()

        values = {k: float(v) for k, v in zip(list(terms) + ["total"], logged)}
        for k, v in values.items():
            history.setdefault(k, []).append(v)
        if ctx.is_main and (step % cfg.snapshot_every == 0 or step == cfg.iters - 1):
            with torch.no_grad():
                img = render_views(mesh.detach(), eval_cam, cfg.image_size)[0, ..., :3]
            snapshots.append(torch.cat([img, eval_target], dim=1).cpu())
        if progress is not None:
            progress(step, values)

    final = src.offset_verts(offsets.detach())
    final.textures = TexturesVertex([torch.sigmoid(color_logits.detach())])
    elapsed = time.perf_counter() - start
    # Evaluation is for the outputs, which only the main rank writes.
    metrics = evaluate_fit(final, target, cfg, device=device) if ctx.is_main else {}
    metrics.update({"iterations": cfg.iters, "wall_time_s": round(elapsed, 2), "config": asdict(cfg)})
    return FitResult(mesh=final, target=target, history=history, snapshots=snapshots, metrics=metrics)
