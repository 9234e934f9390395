"""``diffras splat [DATA]``: train Gaussian splats from posed images and write the standard outputs.

The options are declared with the other commands' in ``diffras.cli.parser``; ``run_splat(args)`` runs it;
``render_splat_file(path, args)`` is the hook through which ``diffras render`` renders a trained ``.ply``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path
from typing import Dict, List

import torch

__all__ = ["orbit_viewmats", "render_splat_file", "run_splat"]


def _look_at(eye: torch.Tensor, centre: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """OpenCV world-to-camera (4, 4) at ``eye`` looking at ``centre`` with image-up ``up``."""
    z = centre - eye
    z = z / z.norm()
    x = torch.linalg.cross(z, up)  # right = forward x up (up is -Y of the camera)
    x = x / x.norm()
    y = torch.linalg.cross(z, x)
    V = torch.eye(4, dtype=eye.dtype)
    V[:3, :3] = torch.stack([x, y, z])
    V[:3, 3] = -V[:3, :3] @ eye
    return V


def orbit_viewmats(viewmats: torch.Tensor, centre: torch.Tensor, n: int = 36) -> torch.Tensor:
    """``n`` OpenCV viewmats circling ``centre`` about the training cameras' mean up axis, at their median
    distance and mean elevation: a turntable for any posed dataset."""
    c2w = torch.linalg.inv(viewmats.double())
    up = -c2w[:, :3, 1].mean(0)
    up = up / up.norm()
    eyes = c2w[:, :3, 3] - centre.double()
    dist = eyes.norm(dim=-1).median()
    elev = torch.asin(((eyes / eyes.norm(dim=-1, keepdim=True)) @ up).mean().clamp(-0.95, 0.95))
    a = torch.linalg.cross(up, torch.tensor([1.0, 0, 0], dtype=up.dtype))
    if a.norm() < 1e-3:
        a = torch.linalg.cross(up, torch.tensor([0, 0, 1.0], dtype=up.dtype))
    a = a / a.norm()
    b = torch.linalg.cross(up, a)
    out = []
    for k in range(n):
        t = 2 * math.pi * k / n
        d = math.cos(elev) * (math.cos(t) * a + math.sin(t) * b) + math.sin(elev) * up
        out.append(_look_at(centre.double() + dist * d, centre.double(), up))
    return torch.stack(out).float()


def plot_training(path: Path, history: Dict[str, List[float]]) -> None:
    """Loss (log scale) and PSNR (training view per step, held-out views as points) against the step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6), dpi=100)
    a.plot(history["loss"], lw=0.6)
    a.set_yscale("log")
    a.set_xlabel("step")
    a.set_ylabel("loss (0.8 L1 + 0.2 (1 - SSIM))")
    k = 25
    p = torch.tensor(history["psnr"])
    smooth = torch.nn.functional.avg_pool1d(p[None, None], k, 1, padding=0)[0, 0] if len(p) > k else p
    b.plot(p.tolist(), lw=0.4, alpha=0.4, label="training view")
    b.plot(range(len(p) - len(smooth), len(p)), smooth.tolist(), lw=1.2, label=f"training ({k}-step mean)")
    if history.get("test_psnr"):
        b.plot(history["test_step"], history["test_psnr"], "o-", label="held-out views")
    b.set_xlabel("step")
    b.set_ylabel("PSNR (dB)")
    b.legend(fontsize=8)
    for ax in (a, b):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _turntable(splats, data, sh_degree: int, n: int = 36) -> torch.Tensor:
    from .trainer import render_splats

    means = splats["means"]
    centre = means.median(dim=0).values if len(data.points) < 4 else data.points.median(dim=0).values
    V = orbit_viewmats(data.viewmats, centre.cpu(), n).to(means.device)
    H, W = data.images.shape[1:3]
    frames = []
    with torch.no_grad():
        for i in range(n):
            frames.append(render_splats(splats, V[i:i + 1], data.Ks[:1].to(means.device), W, H, sh_degree=sh_degree,
                                        background=data.background)[0][0].clamp(0, 1).cpu())
    return torch.stack(frames)


def run_splat(args: argparse.Namespace) -> None:
    import dataclasses

    from ..vis import save_image, save_turntable
    from ..cli.runners import _device, _ranks
    from ..workflows.outputs import OutputDir, check_writable
    from .datasets import cow_views, load_views
    from .ply import save_ply
    from .trainer import SplatConfig, render_splats, train_splats

    check_writable(args.out)
    device = _device(args)
    ctx = _ranks(args, device)
    given = {"iters": args.iters, "sh_degree": args.sh_degree, "init": args.init,
             "views_per_step": args.views_per_step}
    cfg = dataclasses.replace(SplatConfig(), **{k: v for k, v in given.items() if v is not None},
                              antialiased=args.antialiased)
    if cfg.iters != SplatConfig.iters:  # keep the schedule's shape for other run lengths
        f = cfg.iters / SplatConfig.iters
        every = max(10, int(cfg.refine_every * f))
        cfg = dataclasses.replace(
            cfg, refine_every=every, refine_start=max(every, int(cfg.refine_start * f)),
            refine_stop=int(cfg.refine_stop * f), sh_interval=max(1, int(cfg.sh_interval * f)),
            eval_every=max(1, int(cfg.eval_every * f)),
            # An opacity reset needs a few hundred steps to recover from: none in short runs.
            reset_every=int(cfg.reset_every * f) if cfg.iters >= 1000 else cfg.iters + 1)
    t0 = time.perf_counter()
    if args.data is None:
        data = cow_views(n_train=args.views, n_test=10, size=args.size or 256, seed=args.seed)
    else:
        data = load_views(args.data, size=args.size)
    prep = time.perf_counter() - t0
    from tqdm.auto import tqdm

    bar = tqdm(total=cfg.iters, desc="splat", disable=args.quiet or not ctx.is_main, leave=False, dynamic_ncols=True)

    def hook(step, d):
        bar.update(1)
        if step % 10 == 0:
            bar.set_postfix({"loss": f"{d['loss']:.4f}", "psnr": f"{d['psnr']:.2f}", "gaussians": d["n"]})

    result = train_splats(data, cfg, seed=args.seed, device=device, progress=hook)
    bar.close()
    if not ctx.is_main:
        return  # every rank holds the same splats; the main rank writes them
    m = dict(result.metrics)
    m.update(data_time_s=round(prep, 2), total_wall_time_s=round(time.perf_counter() - t0, 2),
             load_average=[round(v, 2) for v in os.getloadavg()], data=str(args.data) if args.data else "bundled cow")
    deg = m["sh_degree"]
    with OutputDir(args.out) as out:
        save_ply(out.path("splats.ply"), result.splats)
        save_turntable(out.path("turntable.gif"), _turntable(result.splats, data, deg, args.frames), fps=12)
        if data.test:
            i = data.test[0]
            H, W = data.images.shape[1:3]
            with torch.no_grad():
                img = render_splats(result.splats, data.viewmats[i:i + 1].to(device), data.Ks[i:i + 1].to(device), W, H,
                                    sh_degree=deg, background=data.background)[0][0].clamp(0, 1).cpu()
            save_image(out.path("heldout_render_vs_truth.png"), torch.cat([img, data.images[i]], dim=1))
        plot_training(out.path("training.png"), result.history)
        out.write_json("metrics.json", m)
        with open(out.path("history.json"), "w") as f:
            json.dump(result.history, f)
    shown = {k: v for k, v in m.items() if isinstance(v, (int, float))}
    print(f"wrote {len(out.files)} files to {args.out}")
    print("  " + "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items()))


def render_splat_file(path: Path, args: argparse.Namespace) -> None:
    """``diffras render splats.ply``: a turntable of a 3DGS ``.ply`` (views_NNN.png + turntable.gif), with the
    render command's --views/--elev/--dist/--fov/--size; the splats are centred and scaled as meshes are."""
    from ..vis import save_image, save_turntable
    from ..cli.runners import _device
    from ..workflows.outputs import OutputDir, check_writable
    from .ply import load_ply, render_args
    from .rasterization import rasterization

    check_writable(args.out)
    device = _device(args)
    splats = load_ply(path, device=device)
    kw = render_args(splats)
    means = kw["means"]
    centre = means.median(dim=0).values
    radius = float((means - centre).norm(dim=-1).quantile(0.98)) or 1.0
    size = args.size
    f = 0.5 * size / math.tan(math.radians(args.fov) / 2)
    K = torch.tensor([[f, 0, size / 2], [0, f, size / 2], [0, 0, 1]], device=device)
    frames = []
    for k in range(args.views):
        az = math.radians(args.azim + 360.0 * k / args.views)
        el = math.radians(args.elev)
        # World +Y up (as diffras meshes); the camera orbits at dist * radius.
        d = torch.tensor([math.cos(el) * math.sin(az), math.sin(el), math.cos(el) * math.cos(az)], dtype=torch.float64)
        V = _look_at(centre.double().cpu() + args.dist * radius * d, centre.double().cpu(), torch.tensor([0, 1.0, 0], dtype=torch.float64))
        with torch.no_grad():
            img = rasterization(**kw, viewmats=V[None].float().to(device), Ks=K[None], width=size, height=size,
                backgrounds=torch.ones(1, 3, device=device))[0][0]
        frames.append(img.clamp(0, 1).cpu())
    with OutputDir(args.out) as out:
        for i, img in enumerate(frames):
            save_image(out.path(f"view_{i:03d}.png"), img)
        save_turntable(out.path("turntable.gif"), torch.stack(frames), fps=args.fps)
    print(f"wrote {len(out.files)} files to {args.out}")
