"""What each ``diffras`` command does with its parsed arguments: load, run the workflow, write outputs.

Each runner checks its inputs and the output folder before any heavy work, shows a progress bar, and writes
through ``OutputDir`` so a failed run leaves nothing in ``--out`` that looks complete.
"""
from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path
from typing import Dict, List, Optional

import torch

from .outputs import OutputDir, check_writable

__all__ = ["run_render", "run_fit", "run_pose", "run_texture", "plot_losses"]


def _device(args: argparse.Namespace) -> torch.device:
    name = args.device or "cpu"
    try:
        dev = torch.device(name)
        torch.empty(0, device=dev)
    except (RuntimeError, AssertionError) as e:
        raise ValueError(f"--device: {name!r} is not available here ({str(e).splitlines()[0]})") from e
    return dev


def _progress(args: argparse.Namespace, total: int, desc: str):
    """A tqdm bar and the ``progress(step, losses)`` hook the workflows call."""
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, disable=args.quiet, leave=False, dynamic_ncols=True)

    def hook(step: int, losses: Dict[str, float]) -> None:
        bar.update(1)
        if step % 10 == 0:
            bar.set_postfix({k: f"{v:.4f}" for k, v in losses.items() if k in ("total", "rgb", "silhouette")})

    return bar, hook


def _config(cls, args: argparse.Namespace, mapping: Dict[str, str]):
    """The workflow's config with the options the user gave (``mapping``: CLI name -> config field)."""
    given = {field: getattr(args, opt) for opt, field in mapping.items() if getattr(args, opt, None) is not None}
    return dataclasses.replace(cls(), **given)


def _load(path: Path, device: torch.device, what: str = "mesh"):
    from ..io import load_mesh

    if not Path(path).exists():
        raise FileNotFoundError(f"{what}: {str(path)!r} does not exist")
    return load_mesh(path, device=device)


def plot_losses(path: Path, history: Dict[str, List[float]]) -> None:
    """Loss curves, one line per term, log scale (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for name, values in history.items():
        ax.plot(values, label=name, lw=1.2 if name == "total" else 0.8)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _summary(files: Dict[str, Path], metrics: Optional[dict] = None) -> None:
    out = sorted({str(p.parent) for p in files.values()})
    print(f"wrote {len(files)} files to {', '.join(out)}")
    if metrics:
        shown = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
        print("  " + "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items()))


def run_render(args: argparse.Namespace) -> None:
    from ..vis import save_image, save_turntable
    from .scene import headlight, make_renderer, normalize_to_unit_sphere, orbit_cameras

    from ..splat.ply import is_splat_ply  # h12: a trained 3DGS .ply renders through the splat rasterizer

    if is_splat_ply(args.mesh):
        from ..splat.command import render_splat_file

        return render_splat_file(args.mesh, args)
    check_writable(args.out)
    device = _device(args)
    torch.manual_seed(args.seed)
    mesh = normalize_to_unit_sphere(_load(args.mesh, device))
    cams = orbit_cameras(args.views, dist=args.dist, elev=args.elev, azim_start=args.azim, fov=args.fov, device=device)
    renderer = make_renderer(cams, args.size, shader=args.shader)
    bar, hook = _progress(args, args.views, "render")
    frames = []
    with torch.no_grad():
        # One view at a time keeps memory flat for large meshes and lets the bar move.
        for i in range(args.views):
            cam = cams[i : i + 1]
            frames.append(renderer(mesh, cameras=cam, lights=headlight(cam))[0].cpu())
            hook(i, {})
    bar.close()
    with OutputDir(args.out) as out:
        for i, img in enumerate(frames):
            save_image(out.path(f"view_{i:03d}.png"), img)
        save_turntable(out.path("turntable.gif"), torch.stack(frames), fps=args.fps)
    _summary(out.files)


def run_fit(args: argparse.Namespace) -> None:
    from ..data import load_cow
    from ..io import save_mesh
    from ..vis import save_image, save_turntable
    from .fit import FitConfig, fit_mesh

    check_writable(args.out)
    device = _device(args)
    cfg = _config(FitConfig, args, {"iters": "iters", "views": "views", "size": "image_size", "level": "level", "lr": "lr"})
    target = _load(args.target, device, "target") if args.target is not None else load_cow(device=device)
    start = time.perf_counter()
    bar, hook = _progress(args, cfg.iters, "fit")
    result = fit_mesh(target, cfg, device=device, seed=args.seed, progress=hook)
    bar.close()
    result.metrics["total_wall_time_s"] = round(time.perf_counter() - start, 2)
    with OutputDir(args.out) as out:
        save_mesh(out.path("fit.obj"), result.mesh)
        save_mesh(out.path("fit.ply"), result.mesh)  # PLY keeps the fitted vertex colours
        save_turntable(out.path("progress.gif"), torch.stack(result.snapshots), fps=10)
        save_image(out.path("final.png"), result.snapshots[-1])
        plot_losses(out.path("losses.png"), result.history)
        out.write_json("metrics.json", result.metrics)
    _summary(out.files, result.metrics)


def run_pose(args: argparse.Namespace) -> None:
    from ..vis import save_turntable
    from .pose import PoseConfig, camera_from_eye, fit_pose, random_eye, start_eye
    from .scene import normalize_to_unit_sphere, render_views, with_default_colors

    check_writable(args.out)
    device = _device(args)
    cfg = _config(PoseConfig, args, {"iters": "iters", "size": "image_size", "fov": "fov"})
    mesh = with_default_colors(normalize_to_unit_sphere(_load(args.mesh, device)))
    gen = torch.Generator().manual_seed(args.seed)
    true_eye = None
    if args.image is not None:
        reference = _read_reference(args.image, cfg.image_size, device)
    else:
        true_eye = random_eye(gen, cfg.dist)
        with torch.no_grad():
            reference = render_views(mesh, camera_from_eye(true_eye[None].to(device), cfg.fov), cfg.image_size)[0]
    runs = []
    for s in range(args.starts):
        init = start_eye(true_eye, gen, cfg) if true_eye is not None else random_eye(gen, cfg.dist)
        bar, hook = _progress(args, cfg.iters, f"pose {s + 1}/{args.starts}")
        runs.append(fit_pose(mesh, reference, init, cfg, true_eye=true_eye, progress=hook))
        bar.close()
    best = min(runs, key=lambda r: r.history["total"][-1])
    metrics = dict(best.metrics)
    if true_eye is not None and args.starts > 1:
        errs = [r.metrics["rotation_error_deg"] for r in runs]
        metrics["starts"] = args.starts
        metrics["converged_under_2deg"] = sum(e < 2.0 for e in errs)
        metrics["rotation_errors_deg"] = errs
    metrics["recovered_eye"] = best.eye.tolist()
    metrics["recovered_R"] = best.cameras.R[0].tolist()
    metrics["recovered_T"] = best.cameras.T[0].tolist()
    with OutputDir(args.out) as out:
        save_turntable(out.path("pose.gif"), torch.stack(best.snapshots), fps=10)
        plot_losses(out.path("losses.png"), best.history)
        out.write_json("metrics.json", metrics)
    _summary(out.files, metrics)


def _read_reference(path: Path, size: int, device: torch.device) -> torch.Tensor:
    """A reference image: RGBA PNG (alpha = silhouette) or a greyscale/RGB silhouette, size x size."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    if not Path(path).is_file():
        raise FileNotFoundError(f"--image: {str(path)!r} does not exist")
    try:
        with Image.open(path) as im:
            mode = im.mode
            arr = np.asarray(im.convert("RGBA" if mode in ("RGBA", "LA", "P") else "L"), dtype=np.float32) / 255.0
    except (OSError, UnidentifiedImageError) as e:
        raise ValueError(f"--image: cannot read {str(path)!r} as an image: {e}") from e
    if arr.shape[0] != size or arr.shape[1] != size:
        raise ValueError(f"--image: expected a {size}x{size} image (or pass --size), got {arr.shape[1]}x{arr.shape[0]}")
    t = torch.from_numpy(arr).to(device)
    if t.dim() == 3 and not bool((t[..., 3] < 1).any()):
        raise ValueError(f"--image: {str(path)!r} has no transparent pixels; give an RGBA image whose alpha is the silhouette, or a greyscale mask")
    return t


def run_texture(args: argparse.Namespace) -> None:
    from ..data import load_cow
    from ..io import save_mesh
    from ..vis import save_image, save_turntable
    from .scene import render_views
    from .texture import TextureConfig, fit_texture, load_views, save_views
    from .views import sphere_cameras

    check_writable(args.out)
    device = _device(args)
    cfg = _config(TextureConfig, args, {"iters": "iters", "texture_size": "texture_size", "size": "image_size"})
    mesh = _load(args.mesh, device) if args.mesh is not None else load_cow(device=device)
    torch.manual_seed(args.seed)
    holdout = None
    with OutputDir(args.out) as out:
        if args.views is not None:
            images, cams = load_views(args.views, device=device)
        else:
            # Self-contained default: photograph the mesh's own texture from known cameras, then forget it.
            cams = sphere_cameras(cfg.views, dist=cfg.dist, fov=cfg.fov, device=device)
            ho_cams = sphere_cameras(cfg.holdout, dist=cfg.dist, fov=cfg.fov, phase=1.0, device=device)
            with torch.no_grad():
                images = render_views(mesh, cams, cfg.image_size)
                holdout = (render_views(mesh, ho_cams, cfg.image_size), ho_cams)
            save_views(out.path("views/cameras.json").parent, images, cams, cfg.fov)
        bar, hook = _progress(args, cfg.iters, "texture")
        result = fit_texture(mesh, images, cams, cfg, holdout=holdout, progress=hook, seed=args.seed)
        bar.close()
        save_image(out.path("texture.png"), result.texture)  # stored as an image: row 0 is v = 1
        save_mesh(out.path("textured.obj"), result.mesh)
        save_turntable(out.path("progress.gif"), torch.stack(result.snapshots), fps=10)
        out.write_json("metrics.json", result.metrics)
    _summary(out.files, result.metrics)
