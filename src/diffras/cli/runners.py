"""What each ``diffras`` command does with its parsed arguments: load, check, run the workflow, write outputs.

Each runner checks its inputs, the output folder and the memory the run will need before any heavy work,
shows a progress bar, and writes through ``OutputDir`` so a failed run leaves nothing in ``--out`` that
looks complete.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Tuple, TypeVar

import torch

from ..workflows.outputs import OutputDir, check_writable
from . import memory

if TYPE_CHECKING:
    from tqdm import tqdm

    from ..distributed import Context

    from ..structures import Meshes

__all__ = ["plot_losses", "run_fit", "run_pose", "run_render", "run_splat", "run_texture"]

_Config = TypeVar("_Config")

# Turntable GIF frames are at most this many pixels on a side (the PNGs keep the full --size): a GIF of
# large frames is tens of MB per frame and no viewer wants it.
_GIF_MAX_SIDE = 1024


def _device(args: argparse.Namespace) -> torch.device:
    name = args.device or "cpu"
    try:
        dev = torch.device(name)
        torch.zeros(1, device=dev).cpu()  # a device that cannot compute (or is absent) fails here, not mid-run
    except (RuntimeError, AssertionError, NotImplementedError) as e:
        raise ValueError(f"--device: {name!r} is not available here ({str(e).splitlines()[0]})") from e
    if dev.type == "meta":
        raise ValueError(f"--device: {name!r} holds no data (shapes only); expected a device that computes, e.g. cpu")
    return dev


def _ranks(args: argparse.Namespace, device: torch.device) -> "Context":
    """Join the torchrun process group if there is one (a no-op for one process); ranks other than 0 log to
    ``<out>.logs/rank<r>.log``. Returns the :class:`diffras.distributed.Context`."""
    from .. import distributed

    ctx = distributed.init_from_env(device)
    distributed.log_to_file_unless_main(str(args.out) + ".logs", ctx)
    return ctx


def _progress(args: argparse.Namespace, total: int, desc: str) -> Tuple["tqdm", Callable[[int, Dict[str, float]], None]]:
    """A tqdm bar (on the main rank only) and the ``progress(step, losses)`` hook the workflows call."""
    from tqdm.auto import tqdm

    from ..distributed import context

    bar = tqdm(total=total, desc=desc, disable=args.quiet or not context().is_main, leave=False, dynamic_ncols=True)

    def hook(step: int, losses: Dict[str, float]) -> None:
        bar.update(1)
        if step % 10 == 0:
            bar.set_postfix({k: f"{v:.4f}" for k, v in losses.items() if k in ("total", "rgb", "silhouette")})

    return bar, hook


def _config(cls: Callable[[], _Config], args: argparse.Namespace, mapping: Dict[str, str]) -> _Config:
    """The workflow's config with the options the user gave (``mapping``: CLI name -> config field)."""
    given = {field: getattr(args, opt) for opt, field in mapping.items() if getattr(args, opt, None) is not None}
    return dataclasses.replace(cls(), **given)


def _load(path: Path, device: torch.device, what: str = "mesh", *, normalize: bool = False) -> "Meshes":
    """Load a mesh file; with ``normalize``, scale it to the unit sphere in float64 first, so that a mesh
    far from the origin (coordinates ~1e6) keeps its shape when it becomes float32."""
    from ..io import load_mesh
    from ..ops import normalize_to_unit_sphere

    if not Path(path).exists():
        raise FileNotFoundError(f"{what}: {str(path)!r} does not exist")
    if not normalize:
        return load_mesh(path, device=device)
    mesh = load_mesh(path, device=device, dtype=torch.float64)
    return normalize_to_unit_sphere(mesh).to(dtype=torch.float32)


def _plotting_available() -> bool:
    """True if matplotlib imports; else warn once, before the run starts, that losses.png is skipped."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        warnings.warn("matplotlib is not installed: losses.png will not be written (pip install matplotlib)",
                      RuntimeWarning, stacklevel=2)
        return False
    return True


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


def _gif_frame(image: torch.Tensor) -> torch.Tensor:
    """(H, W, C) -> the same frame box-filtered to at most ``_GIF_MAX_SIDE`` pixels a side."""
    factor = -(-max(image.shape[0], image.shape[1]) // _GIF_MAX_SIDE)
    if factor == 1:
        return image
    from ..workflows.scene import box_downsample

    return box_downsample(image[None], factor)[0]


def run_splat(args: argparse.Namespace) -> None:
    from ..splat.command import run_splat as run

    run(args)


def run_render(args: argparse.Namespace) -> None:
    from ..distributed import gather_to_main, shard
    from ..splat.ply import is_splat_ply

    if is_splat_ply(args.mesh):  # a trained 3DGS .ply renders through the splat rasterizer
        from ..splat.command import render_splat_file

        return render_splat_file(args.mesh, args)
    from ..vis import depth_image, save_image, save_turntable
    from ..workflows.scene import (
        box_downsample, default_faces_per_pixel, headlight, make_renderer, orbit_cameras, render_antialiased,
    )

    check_writable(args.out)
    device = _device(args)
    ctx = _ranks(args, device)
    s = args.supersample
    side = args.size * s
    if side > 16384:
        raise ValueError(f"--size {args.size} with --supersample {s}: the supersampled image would be {side} "
                         "pixels a side; expected at most 16384 (lower --size or --supersample)")
    # Memory: views are rendered one at a time and written as they come, so one view is the peak, plus the
    # turntable's frames (float32 RGBA, at most _GIF_MAX_SIDE a side) kept for the GIF.
    k = default_faces_per_pixel(args.shader)
    gif = args.views * min(args.size, _GIF_MAX_SIDE) ** 2 * 16
    memory.check_fits(memory.render_view_bytes(side, side, k) + gif,
                      f"--size {args.size} with --supersample {s} and --views {args.views}", device)
    torch.manual_seed(args.seed)
    mesh = _load(args.mesh, device, normalize=True)
    faces = int(mesh.num_faces_per_mesh().sum())
    memory.check_fits(memory.render_view_bytes(side, side, k, faces) + gif,
                      f"--size {args.size} with --supersample {s} for {faces:,} faces", device)
    cams = orbit_cameras(args.views, dist=args.dist, elev=args.elev, azim_start=args.azim, fov=args.fov, device=device)
    renderer = make_renderer(cams, side, shader=args.shader)
    bar, hook = _progress(args, args.views, "render")
    frames = []
    # Under torchrun each rank renders every world_size-th view; the main rank gathers one round of views at a
    # time and writes them in order, so memory stays at one view per rank.
    W = ctx.world_size
    out = OutputDir(args.out) if ctx.is_main else None
    with out if out is not None else contextlib.nullcontext(), torch.no_grad():
        for j in range(-(-args.views // W)):
            i = j * W + ctx.rank
            img = None
            if i < args.views:
                cam = cams[i : i + 1]
                if args.shader == "depth":
                    # Depth is mapped to grey before the box filter: a surface's depth averaged with the
                    # background's zfar is no depth at all. The mesh is in the unit sphere, so one range
                    # serves every view.
                    depth = renderer(mesh, cameras=cam)
                    img = box_downsample(depth_image(depth, args.dist - 1.0, args.dist + 1.0), s)[0].cpu()
                else:
                    img = render_antialiased(renderer, mesh, cam, s, lights=headlight(cam))[0].cpu()
            for k, part in enumerate(gather_to_main(img, ctx) or []):
                if part is not None:
                    save_image(out.path(f"view_{j * W + k:03d}.png"), part)
                    frames.append(_gif_frame(part))
                    hook(j * W + k, {})
        bar.close()
        if out is not None:
            save_turntable(out.path("turntable.gif"), torch.stack(frames), fps=args.fps)
    if out is not None:
        _summary(out.files)


def run_fit(args: argparse.Namespace) -> None:
    from ..data import load_cow
    from ..io import save_mesh
    from ..vis import save_image, save_turntable
    from ..workflows.fit import FitConfig, fit_mesh

    check_writable(args.out)
    device = _device(args)
    ctx = _ranks(args, device)
    cfg = _config(FitConfig, args, {"iters": "iters", "views": "views", "size": "image_size", "level": "level", "lr": "lr",
                                     "gradients": "gradients"})
    faces = 20 * 4 ** min(cfg.level, 16)  # capped so that a huge --level cannot stall on the arithmetic
    memory.check_fits(
        memory.fit_bytes(cfg.image_size, cfg.views + cfg.holdout, cfg.views_per_iter, cfg.faces_per_pixel, faces),
        f"--level {cfg.level} ({faces:,}{'+' if cfg.level > 16 else ''} faces) with --size {cfg.image_size} "
        f"and --views {cfg.views}", device)
    plots = _plotting_available()
    target = _load(args.target, device, "target") if args.target is not None else load_cow(device=device)
    start = time.perf_counter()
    bar, hook = _progress(args, cfg.iters, "fit")
    result = fit_mesh(target, cfg, device=device, seed=args.seed, progress=hook)
    bar.close()
    result.metrics["total_wall_time_s"] = round(time.perf_counter() - start, 2)
    if not ctx.is_main:
        return  # every rank holds the same fitted mesh; the main rank writes it
    result.metrics["ranks"] = ctx.world_size
    with OutputDir(args.out) as out:
        save_mesh(out.path("fit.obj"), result.mesh)
        save_mesh(out.path("fit.ply"), result.mesh)  # PLY keeps the fitted vertex colours
        save_turntable(out.path("progress.gif"), torch.stack(result.snapshots), fps=10)
        save_image(out.path("final.png"), result.snapshots[-1])
        if plots:
            plot_losses(out.path("losses.png"), result.history)
        out.write_json("metrics.json", result.metrics)
    _summary(out.files, result.metrics)


def run_pose(args: argparse.Namespace) -> None:
    from ..vis import save_turntable
    from ..workflows.pose import PoseConfig, camera_from_eye, fit_pose, random_eye, start_eye
    from ..workflows.scene import render_views, with_default_colors

    check_writable(args.out)
    device = _device(args)
    cfg = _config(PoseConfig, args, {"iters": "iters", "size": "image_size", "fov": "fov", "gradients": "gradients"})
    memory.check_fits(memory.fit_bytes(cfg.image_size, 1, 1, cfg.faces_per_pixel, 0), f"--size {cfg.image_size}", device)
    plots = _plotting_available()
    mesh = with_default_colors(_load(args.mesh, device, normalize=True))
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
        if plots:
            plot_losses(out.path("losses.png"), best.history)
        out.write_json("metrics.json", metrics)
    _summary(out.files, metrics)


def _read_reference(path: Path, size: int, device: torch.device) -> torch.Tensor:
    """A reference image: RGBA PNG (alpha = silhouette) or a greyscale/RGB silhouette, size x size."""
    from ..io.images import read_image

    arr = read_image(path, "--image", mode="auto")
    if arr.shape[0] != size or arr.shape[1] != size:
        raise ValueError(f"--image: expected a {size}x{size} image (or pass --size), got {arr.shape[1]}x{arr.shape[0]}")
    t = torch.from_numpy(arr).to(device)
    if t.dim() == 3 and not bool((t[..., 3] < 1).any()):
        raise ValueError(f"--image: {str(path)!r} has no transparent pixels; give an RGBA image whose alpha is the silhouette, or a greyscale mask")
    return t


def run_texture(args: argparse.Namespace) -> None:
    from ..cameras import sphere_cameras
    from ..data import load_cow
    from ..io import save_mesh
    from ..vis import save_image, save_turntable
    from ..workflows.scene import render_views
    from ..workflows.texture import TextureConfig, fit_texture, load_views, save_views

    check_writable(args.out)
    device = _device(args)
    ctx = _ranks(args, device)
    cfg = _config(TextureConfig, args, {"iters": "iters", "texture_size": "texture_size", "size": "image_size"})
    memory.check_fits(memory.texture_bytes(cfg.texture_size, cfg.image_size, cfg.views + cfg.holdout, cfg.views_per_iter),
                      f"--texture-size {cfg.texture_size} with --size {cfg.image_size}", device)
    mesh = _load(args.mesh, device) if args.mesh is not None else load_cow(device=device)
    torch.manual_seed(args.seed)
    holdout = None
    if args.views is not None:
        images, cams = load_views(args.views, device=device)
    else:
        # Self-contained default: photograph the mesh's own texture from known cameras, then forget it.
        cams = sphere_cameras(cfg.views, dist=cfg.dist, fov=cfg.fov, device=device)
        ho_cams = sphere_cameras(cfg.holdout, dist=cfg.dist, fov=cfg.fov, phase=1.0, device=device)
        with torch.no_grad():
            images = render_views(mesh, cams, cfg.image_size)
            holdout = (render_views(mesh, ho_cams, cfg.image_size), ho_cams)
    bar, hook = _progress(args, cfg.iters, "texture")
    result = fit_texture(mesh, images, cams, cfg, holdout=holdout, progress=hook, seed=args.seed)
    bar.close()
    if not ctx.is_main:
        return  # every rank holds the same texture; the main rank writes it
    result.metrics["ranks"] = ctx.world_size
    with OutputDir(args.out) as out:
        if args.views is None:
            save_views(out.path("views/cameras.json").parent, images, cams, cfg.fov)
        save_image(out.path("texture.png"), result.texture)  # stored as an image: row 0 is v = 1
        save_mesh(out.path("textured.obj"), result.mesh)
        save_turntable(out.path("progress.gif"), torch.stack(result.snapshots), fps=10)
        out.write_json("metrics.json", result.metrics)
    _summary(out.files, result.metrics)
