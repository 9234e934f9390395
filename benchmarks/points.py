"""Time point-cloud rendering: diffras numba vs torch backends side by side, and PyTorch3D's CPU
``rasterize_points`` on the same cloud when a PyTorch3D build is available.

Usage: ``python benchmarks/points.py [--points 100000 1000000] [--size 512] [--runs 3] [--torch-max 1000000]
[--p3d-python /work/p3d/venv/bin/python] [--p3d-max 100000] [--no-write]``

Scene: P points uniform on the unit sphere, seen from distance 2.7 by a 60-degree ``FoVPerspectiveCameras``
(the mesh benchmarks' view), random RGB features, ``radius=0.01`` (PyTorch3D's default), K = 8 points
per pixel, ``AlphaCompositor``. Columns, each the median of ``--runs`` after one warm-up (compilation
excluded):

- ``raster fwd``: ``rasterize_points`` on the already projected cloud (visibility + differentiable
  ``zbuf``/``dists``): the operation PyTorch3D's CPU kernel performs;
- ``render fwd`` / ``render fwd+bwd``: the whole ``PointsRenderer`` (projection, rasterization,
  compositing), and with the backward of ``images.sum()`` to the points and the features.

PyTorch3D runs in a subprocess of its own interpreter on the identical projected cloud (its CPU path is
the naive pixels x points loop, ``bin_size=0``); its ``idx`` is compared with diffras's.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import machine_description, markdown_table, update_section  # noqa: E402

from diffras.cameras import FoVPerspectiveCameras, look_at_view_transform  # noqa: E402
from diffras.points import (  # noqa: E402
    AlphaCompositor,
    PointsRasterizationSettings,
    PointsRasterizer,
    PointsRenderer,
    rasterize_points,
)
from diffras.structures import Pointclouds  # noqa: E402

RADIUS = 0.01
K = 8

P3D_SCRIPT = r"""
import sys, time, torch
from pytorch3d.structures import Pointclouds
from pytorch3d.renderer import rasterize_points
pts = torch.load(sys.argv[1])
pc = Pointclouds(points=[pts])
t0 = time.perf_counter()
idx, zbuf, dists = rasterize_points(pc, image_size=int(sys.argv[2]), radius=float(sys.argv[3]),
                                    points_per_pixel=int(sys.argv[4]), bin_size=0)
t1 = time.perf_counter()
torch.save(idx.long(), sys.argv[5])
print(f"{(t1 - t0) * 1e3:.1f}")
"""


def sphere_cloud(p: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    pts = torch.randn(p, 3, generator=g)
    pts = pts / pts.norm(dim=1, keepdim=True)
    return pts, torch.rand(p, 3, generator=g)


def median_ms(fn, runs: int) -> float:
    fn()
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(ts)


def p3d_available(python: str) -> bool:
    if not Path(python).exists():
        return False
    proc = subprocess.run([python, "-c", "import pytorch3d.renderer"], capture_output=True, text=True)
    return proc.returncode == 0


def time_p3d(python: str, projected: torch.Tensor, size: int, tmp: Path):
    src, out = tmp / "cloud.pt", tmp / "idx.pt"
    torch.save(projected, src)
    proc = subprocess.run([python, "-c", P3D_SCRIPT, str(src), str(size), str(RADIUS), str(K), str(out)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return float(proc.stdout.strip().splitlines()[-1]), torch.load(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--torch-max", type=int, default=1_000_000, help="largest cloud timed with the torch backend")
    ap.add_argument("--p3d-python", default="/work/p3d/venv/bin/python")
    ap.add_argument("--p3d-max", type=int, default=100_000,
                    help="largest cloud timed with PyTorch3D (its CPU loop is pixels x points: minutes at 1M)")
    ap.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = ap.parse_args()
    load_before = os.getloadavg()
    have_p3d = p3d_available(args.p3d_python)
    print(f"{machine_description()}\nload average {load_before}; PyTorch3D: "
          f"{'found at ' + args.p3d_python if have_p3d else 'not available'}", flush=True)
    R, T = look_at_view_transform(dist=2.7, elev=20.0, azim=30.0)
    cameras = FoVPerspectiveCameras(R=R, T=T, fov=60.0)
    header = ["points", "size", "backend", "fragments", "raster fwd ms", "render fwd ms", "render fwd+bwd ms",
              "vs numba (fwd+bwd)", "PyTorch3D raster fwd ms", "PyTorch3D / numba raster", "idx equal"]
    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="diffras_points_bench_"))
    for p in args.points:
        pts, cols = sphere_cloud(p)
        pc = Pointclouds([pts], features=[cols])
        settings = PointsRasterizationSettings(image_size=args.size, radius=RADIUS, points_per_pixel=K)
        projected = PointsRasterizer(cameras, settings).transform(pc)
        numba_ms = {}
        for backend in ("numba", "torch"):
            if backend == "torch" and p > args.torch_max:
                continue
            s = PointsRasterizationSettings(image_size=args.size, radius=RADIUS, points_per_pixel=K, backend=backend)
            renderer = PointsRenderer(PointsRasterizer(cameras, s), AlphaCompositor())
            frags = rasterize_points(projected, args.size, RADIUS, K, backend=backend)
            raster = median_ms(lambda: rasterize_points(projected, args.size, RADIUS, K, backend=backend), args.runs)
            with torch.no_grad():
                fwd = median_ms(lambda: renderer(pc), args.runs)
            p_leaf = pts.clone().requires_grad_()
            c_leaf = cols.clone().requires_grad_()

            def fwd_bwd():
                renderer(Pointclouds([p_leaf], features=[c_leaf])).sum().backward()

            fb = median_ms(fwd_bwd, args.runs)
            if backend == "numba":
                numba_ms = {"raster": raster, "fb": fb, "idx": frags.idx}
            p3d_ms = p3d_ratio = same = "-"
            if backend == "numba" and have_p3d and p <= args.p3d_max:
                ms, idx = time_p3d(args.p3d_python, projected.points_packed().detach(), args.size, tmp)
                p3d_ms, p3d_ratio = f"{ms:.0f}", f"{ms / raster:.0f}x"
                same = f"{100.0 * float((idx == frags.idx).float().mean()):.4f}%"
            row = [f"{p:,}", f"{args.size}^2", backend, int((frags.idx >= 0).sum()), f"{raster:.0f}", f"{fwd:.0f}",
                   f"{fb:.0f}", f"{fb / numba_ms['fb']:.1f}x", p3d_ms, p3d_ratio, same]
            rows.append(row)
            print(" | ".join(str(c) for c in row), flush=True)
    load_after = os.getloadavg()
    table = markdown_table(header, rows)
    print(table)
    if not args.no_write:
        p3d_note = ("PyTorch3D: its CPU `rasterize_points` (naive loop, `bin_size=0`) from " + args.p3d_python +
                    f", on clouds up to {args.p3d_max:,} points (the 1M run takes minutes)." if have_p3d else
                    "PyTorch3D: no CPU build was available when this ran (`" + args.p3d_python + "`), so no ratio.")
        body = (f"`python benchmarks/points.py` (args: {' '.join(sys.argv[1:]) or 'defaults'}): P points uniform on "
                f"the unit sphere, FoV 60 camera at distance 2.7, radius {RADIUS}, K = {K}, AlphaCompositor, random "
                f"RGB. raster fwd = `rasterize_points` on the projected cloud (what PyTorch3D's CPU kernel does); "
                f"render = the whole `PointsRenderer`; fwd+bwd = backward of `images.sum()` to points and "
                f"features. Median of {args.runs} runs after a warm-up. {p3d_note}\n\n"
                f"Machine: {machine_description()}; OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}. "
                f"Load average {load_before[0]:.1f} before and {load_after[0]:.1f} after (a load above the core "
                f"count means other processes inflated these times).\n\n{table}")
        print(f"wrote {update_section('Point clouds', body)}")


if __name__ == "__main__":
    main()
