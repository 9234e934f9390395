"""Training Gaussian splats from posed images: the 3DGS recipe (gsplat's ``simple_trainer`` defaults, with a
schedule shortened for the CPU).

Adam with one learning rate per parameter (means decaying exponentially to 1 %), loss
``(1 - ssim_lambda) L1 + ssim_lambda (1 - SSIM)``, one random training view per step, SH degree raised by one
every ``sh_interval`` steps, densification / pruning / opacity reset by :class:`DefaultStrategy`.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import torch

from ..ops._filter import gaussian_filter
from .datasets import SplatData
from .rasterization import rasterization
from .. import distributed
from .sh import num_sh_bases, rgb_to_sh
from .strategy import DefaultStrategy

__all__ = ["SplatConfig", "SplatResult", "init_splats", "render_splats", "ssim", "train_splats"]


@dataclass
class SplatConfig:
    """Training options; the defaults reach >= 30 dB held-out PSNR on the 256^2 cow in a few CPU minutes."""

    iters: int = 1500
    sh_degree: int = 3
    sh_interval: int = 300
    init: str = "points"  # "points" (the data's sparse points) or "random"
    init_random: int = 10_000  # random initial Gaussians (also when there are no points)
    init_opacity: float = 0.1
    init_scale: float = 1.0
    ssim_lambda: float = 0.2
    lr_means: float = 1.6e-4  # times the scene scale
    lr_scales: float = 5e-3
    lr_quats: float = 1e-3
    lr_opacities: float = 5e-2
    lr_sh0: float = 5e-3  # 2x gsplat's: colours start grey and have 1500 steps, not 30k, to settle
    lr_shN: float = 2.5e-3 / 20
    # Refinement every 50 steps from step 100 to 1200 (gsplat: every 100 from 500 to 15k of 30k): the
    # Gaussian count grows early, and the last 300 steps only optimise the Gaussians that exist.
    refine_start: int = 100
    refine_stop: int = 1200
    refine_every: int = 50
    reset_every: int = 3000  # no opacity reset in the default run: recovering from one takes ~500 steps
    grow_grad2d: float = 0.0002
    antialiased: bool = False
    eval_every: int = 250
    views_per_step: int = 1  # training views per step; under torchrun each rank renders its share of them


@dataclass
class SplatResult:
    splats: Dict[str, torch.Tensor]
    history: Dict[str, List[float]] = field(default_factory=dict)
    metrics: Dict[str, float] = field(default_factory=dict)


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Mean SSIM of images ``(B, H, W, C)`` in [0, 1]: Gaussian window 11, sigma 1.5, valid padding, the
    standard constants ``(0.01, 0.03)^2``."""
    C = a.shape[-1]
    x, y = a.permute(0, 3, 1, 2), b.permute(0, 3, 1, 2)
    # The window is separable: two 1D passes over the five local moments stacked as channels, one conv
    # call each (a 2D 11x11 window per moment costs ~5x more, forward and backward; SSIM was a third of a
    # training step).
    m = gaussian_filter(torch.cat([x, y, x * x, y * y, x * y], dim=1), sigma, window // 2)
    mx, my, mxx, myy, mxy = m.split(C, dim=1)
    sxx, syy, sxy = mxx - mx * mx, myy - my * my, mxy - mx * my
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    return (((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))).mean()


def _knn_scale(points: torch.Tensor, k: int = 3) -> torch.Tensor:
    """Mean distance of each point to its ``k`` nearest neighbours (chunked, so memory stays small)."""
    out = []
    for chunk in points.split(2048):
        d = torch.cdist(chunk, points)
        out.append(d.topk(k + 1, largest=False).values[:, 1:].mean(-1))
    return torch.cat(out).clamp(min=1e-7)


def init_splats(data: SplatData, cfg: SplatConfig, generator: torch.Generator) -> Dict[str, torch.Tensor]:
    """Gaussians at the sparse points (coloured by them) or uniform in the points' / cameras' box, isotropic
    with the mean distance to their 3 nearest neighbours, opacity ``init_opacity``."""
    if cfg.init == "points" and len(data.points) >= 4:
        means, rgb = data.points.float(), data.point_colors.float()
    else:
        ref = data.points if len(data.points) >= 4 else torch.linalg.inv(data.viewmats)[:, :3, 3]
        lo, hi = ref.min(0).values, ref.max(0).values
        centre, half = (lo + hi) / 2, (hi - lo) / 2 * (1.0 if len(data.points) >= 4 else 0.5)
        means = centre + half * (2 * torch.rand(cfg.init_random, 3, generator=generator) - 1)
        rgb = torch.rand(cfg.init_random, 3, generator=generator)
    n = len(means)
    scale = _knn_scale(means) * cfg.init_scale
    return {
        "means": means,
        "scales": torch.log(scale)[:, None].repeat(1, 3),
        "quats": torch.tensor([1.0, 0.0, 0.0, 0.0]).repeat(n, 1),
        "opacities": torch.logit(torch.full((n,), cfg.init_opacity)),
        "sh0": rgb_to_sh(rgb)[:, None, :],
        "shN": torch.zeros(n, num_sh_bases(cfg.sh_degree) - 1, 3),
    }


def render_splats(splats, viewmats, Ks, width, height, *, sh_degree: int, background=(1.0, 1.0, 1.0),
                  antialiased: bool = False, packed: bool = False):
    """Render stored splats (log scales, logit opacities, SH) into ``C`` cameras: (colors, alphas, meta)."""
    C = viewmats.shape[0]
    bg = torch.tensor(background, dtype=viewmats.dtype, device=viewmats.device).expand(C, 3)
    sh = torch.cat([splats["sh0"], splats["shN"]], dim=1)
    return rasterization(splats["means"], splats["quats"], torch.exp(splats["scales"]),
                         torch.sigmoid(splats["opacities"]), sh, viewmats, Ks, width, height,
                         sh_degree=sh_degree, backgrounds=bg, packed=packed,
                         rasterize_mode="antialiased" if antialiased else "classic")


def evaluate(splats, data: SplatData, views: List[int], sh_degree: int, antialiased: bool = False) -> Dict[str, float]:
    """Mean PSNR and SSIM over ``views``."""
    from ..losses import psnr

    H, W = data.images.shape[1:3]
    ps, ss = [], []
    with torch.no_grad():
        for i in views:
            img = render_splats(splats, data.viewmats[i:i + 1], data.Ks[i:i + 1], W, H, sh_degree=sh_degree,
                                background=data.background, antialiased=antialiased)[0].clamp(0, 1)
            ps.append(float(psnr(img, data.images[i:i + 1])))
            ss.append(float(ssim(img, data.images[i:i + 1])))
    return {"psnr": sum(ps) / max(len(ps), 1), "ssim": sum(ss) / max(len(ss), 1)}


def train_splats(data: SplatData, cfg: SplatConfig = SplatConfig(), *, seed: int = 0, device=None,
                 progress: Optional[Callable[[int, Dict[str, float]], None]] = None) -> SplatResult:
    """Optimise Gaussians to reproduce ``data``'s training views; evaluates the held-out views at the end.

    ``progress(step, {"loss", "psnr"})`` is called after every step (a progress bar hook).
    """
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    device = torch.device(device or "cpu")
    scene_scale = data.scene_scale()
    params = {k: torch.nn.Parameter(v.to(device)) for k, v in init_splats(data, cfg, gen).items()}
    lrs = {"means": cfg.lr_means * scene_scale, "scales": cfg.lr_scales, "quats": cfg.lr_quats,
           "opacities": cfg.lr_opacities, "sh0": cfg.lr_sh0, "shN": cfg.lr_shN}
    optimizers = {k: torch.optim.Adam([params[k]], lr=lrs[k], eps=1e-15) for k in params}
    gamma = 0.01 ** (1.0 / max(cfg.iters, 1))  # means' lr decays to 1 % over the run
    strategy = DefaultStrategy(refine_start_iter=cfg.refine_start, refine_stop_iter=cfg.refine_stop,
                               reset_every=cfg.reset_every, refine_every=cfg.refine_every, grow_grad2d=cfg.grow_grad2d)
    strategy.check_sanity(params, optimizers)
    state = strategy.initialize_state(scene_scale=scene_scale)
    images = data.images.to(device)
    viewmats, Ks = data.viewmats.to(device), data.Ks.to(device)
    H, W = images.shape[1:3]
    train = data.train
    hist: Dict[str, List[float]] = {"loss": [], "psnr": [], "n_gaussians": [], "test_step": [], "test_psnr": []}
    start = time.perf_counter()
    ctx = distributed.context()
    if ctx.distributed:
        strategy.reduce = lambda t: distributed.all_reduce_grads([], extra=t, ctx=ctx)[0]
    for step in range(cfg.iters):
        distributed.fault_injection(step, ctx)
        # Every rank draws the same views (same generator) and renders its share; a rank with none renders
        # one with zero weight, so that it still takes part in the all-reduces.
        chosen = [train[int(j)] for j in torch.randint(len(train), (cfg.views_per_step,), generator=gen)]
        mine = chosen[ctx.rank::ctx.world_size]
        views = mine or chosen[:1]
        deg = min(step // cfg.sh_interval, cfg.sh_degree)
        out, alpha, info = render_splats(params, viewmats[views], Ks[views], W, H, sh_degree=deg,
                                         background=data.background, antialiased=cfg.antialiased)
        strategy.step_pre_backward(params, optimizers, state, step, info)
        target = images[views]
        # Each view's loss over the step's view count (all ranks): summed over ranks it is the mean.
        per_view = [(1 - cfg.ssim_lambda) * (out[j] - target[j]).abs().mean()
                    + cfg.ssim_lambda * (1 - ssim(out[j:j + 1], target[j:j + 1])) for j in range(len(mine))]
        loss = sum(per_view) / len(chosen) + out.sum() * 0.0
        loss.backward()
        sq = sum(float(((out[j].detach() - target[j]) ** 2).mean()) for j in range(len(mine)))
        logged = torch.tensor([float(loss.detach()), sq], dtype=torch.float64)
        logged, _ = distributed.all_reduce_grads(list(params.values()), extra=logged, ctx=ctx)
        for opt in optimizers.values():
            opt.step()
            opt.zero_grad(set_to_none=True)
        # After the optimizer step, as gsplat's simple_trainer: grow / prune / reset on schedule. The
        # screen-space gradients were taken of a loss divided by the step's view count, hence n_cameras.
        info["n_cameras"] = len(chosen)
        if not mine:
            info[strategy.key_for_gradient].grad = None  # the zero-weight view adds no statistics
        strategy.step_post_backward(params, optimizers, state, step, info)
        for group in optimizers["means"].param_groups:
            group["lr"] *= gamma
        mse = float(logged[1]) / len(chosen)
        hist["loss"].append(float(logged[0]))
        hist["psnr"].append(-10 * math.log10(max(mse, 1e-12)))
        hist["n_gaussians"].append(len(params["means"]))
        if ctx.is_main and data.test and cfg.eval_every and (step + 1) % cfg.eval_every == 0 and step + 1 < cfg.iters:
            t0 = time.perf_counter()
            hist["test_step"].append(step + 1)
            hist["test_psnr"].append(evaluate(params, data, data.test, deg, cfg.antialiased)["psnr"])
            start += time.perf_counter() - t0  # evaluation is not training time
        if progress is not None:
            progress(step, {"loss": hist["loss"][-1], "psnr": hist["psnr"][-1], "n": len(params["means"])})
    train_time = time.perf_counter() - start
    splats = {k: v.detach() for k, v in params.items()}
    final_deg = min((cfg.iters - 1) // cfg.sh_interval, cfg.sh_degree)
    metrics = {"train_time_s": round(train_time, 2), "iters": cfg.iters, "n_gaussians": len(splats["means"]),
               "sh_degree": final_deg, "n_train_views": len(train), "n_test_views": len(data.test),
               "image_size": [int(H), int(W)]}
    if data.test and ctx.is_main:
        ev = evaluate(splats, data, data.test, final_deg, cfg.antialiased)
        metrics.update(test_psnr=round(ev["psnr"], 3), test_ssim=round(ev["ssim"], 4))
        hist["test_step"].append(cfg.iters)
        hist["test_psnr"].append(ev["psnr"])
    if final_deg < cfg.sh_degree:  # the .ply keeps the degree it was trained to
        splats["shN"] = splats["shN"][:, : num_sh_bases(final_deg) - 1]
    return SplatResult(splats, hist, metrics)
