"""Time volume and implicit rendering: the fused CPU kernel against the plain-torch path, and one
training step of each ported PyTorch3D tutorial.

Usage: ``python benchmarks/volumes.py [--runs 3] [--tutorial-sizes] [--no-write]``

Rows (median wall time of ``--runs`` after a warm-up; "fwd+bwd" adds the backward of a loss):

- ``VolumeRenderer``: the fit_textured_volume step's render, B views of a V^3 grid (1 density + 3
  colour channels broadcast over the views, as the tutorial's ``expand``), ``NDCMultinomialRaysampler``
  S x S rays, P points per ray, ``EmissionAbsorptionRaymarcher``; ``fused`` (the Numba kernel, the default
  on the CPU) against ``torch`` (``renderer.use_fused = False``: ``grid_sample`` + the torch marcher), and
  ``PyTorch3D``: its own ``VolumeRenderer`` on the same scene, run by ``benchmarks/_p3d_volume_worker.py`` in
  the interpreter given by ``--p3d-python`` when one with PyTorch3D (CPU) exists.
- ``EA marcher``: ``EmissionAbsorptionRaymarcher`` alone on the NeRF step's (B, R, P) samples (torch).
- ``NeRF step`` / ``volume step``: one full optimisation step of examples/pytorch3d/'s two tutorials at
  their CPU defaults (model, loss, backward, Adam), i.e. the tutorials' per-iteration time.

Sizes: the examples' CPU defaults; ``--tutorial-sizes`` adds the tutorials' own (GPU) sizes for the
volume render. The table is printed and written to the "Volumes and implicit rendering" section of
``benchmarks/RESULTS.md`` with the load average (a shared machine inflates every number).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import machine_description, markdown_table, time_fwd_bwd, update_section  # noqa: E402

from diffras.cameras import FoVPerspectiveCameras, look_at_view_transform  # noqa: E402
from diffras.implicit import (  # noqa: E402
    EmissionAbsorptionRaymarcher,
    HarmonicEmbedding,
    ImplicitRenderer,
    MonteCarloRaysampler,
    NDCMultinomialRaysampler,
    VolumeRenderer,
    ray_bundle_to_ray_points,
)
from diffras.structures import Volumes  # noqa: E402


def _cameras(n):
    R, T = look_at_view_transform(dist=2.7, elev=0.0, azim=torch.linspace(0.0, 360.0, n + 1)[:-1])
    return FoVPerspectiveCameras(R=R, T=T)


def volume_render_rows(views, size, voxels, points, runs, p3d_python=None):
    cams = _cameras(views)
    log_d = torch.nn.Parameter(torch.randn(1, voxels, voxels, voxels) - 2.0)
    log_c = torch.nn.Parameter(torch.zeros(3, voxels, voxels, voxels))
    renderer = VolumeRenderer(NDCMultinomialRaysampler(image_width=size, image_height=size, n_pts_per_ray=points,
                                                       min_depth=0.1, max_depth=3.0), EmissionAbsorptionRaymarcher())

    def fwd():
        vol = Volumes(torch.sigmoid(log_d)[None].expand(views, -1, -1, -1, -1),
                      torch.sigmoid(log_c)[None].expand(views, -1, -1, -1, -1), voxel_size=3.0 / voxels)
        return renderer(cameras=cams, volumes=vol)[0]

    def fwd_bwd():
        img = fwd()
        img.square().mean().backward()
        return img

    out = {}
    for backend in ("fused", "torch"):
        renderer.use_fused = backend == "fused"
        out[backend] = time_fwd_bwd(fwd, fwd_bwd, runs, 0)
    if p3d_python:
        # PyTorch3D's own VolumeRenderer on the same scene, in its interpreter (benchmarks/_p3d_volume_worker.py).
        worker = Path(__file__).resolve().parent / "_p3d_volume_worker.py"
        proc = subprocess.run([p3d_python, str(worker), str(views), str(size), str(voxels), str(points), str(runs)],
                              capture_output=True, text=True)
        if proc.returncode == 0:
            f_ms, fb_ms = (float(x) for x in proc.stdout.split()[-2:])
            out["PyTorch3D"] = {"fwd_ms": f_ms, "fwdbwd_ms": fb_ms}
    name = f"VolumeRenderer {views} x {size}^2 x {points} pts, {voxels}^3 grid"
    rows = []
    for backend in out:
        r = out[backend]
        ratio = "" if backend == "fused" else (f"{r['fwd_ms'] / out['fused']['fwd_ms']:.1f}x / "
                                               f"{r['fwdbwd_ms'] / out['fused']['fwdbwd_ms']:.1f}x")
        rows.append((name, backend, f"{r['fwd_ms']:.0f}", f"{r['fwdbwd_ms']:.0f}", ratio))
    return rows


def marcher_row(views, rays, points, runs):
    d = torch.rand(views, rays, points, 1, requires_grad=True)
    f = torch.rand(views, rays, points, 3, requires_grad=True)
    m = EmissionAbsorptionRaymarcher()
    r = time_fwd_bwd(lambda: m(d, f), lambda: m(d, f).sum().backward(), runs, 0)
    return (f"EA marcher {views} x {rays} rays x {points} pts", "torch", f"{r['fwd_ms']:.1f}", f"{r['fwdbwd_ms']:.1f}", "")


def nerf_step_row(runs):
    # examples/pytorch3d/fit_simple_neural_radiance_field.py at its CPU defaults (the model inlined)
    views, rays, points, hidden, harmonics = 4, 256, 48, 64, 10
    cams = _cameras(views)
    emb = HarmonicEmbedding(harmonics, omega_0=0.1, append_input=False)
    e = harmonics * 6
    mlp = torch.nn.Sequential(torch.nn.Linear(e, hidden), torch.nn.Softplus(10.0), torch.nn.Linear(hidden, hidden),
                              torch.nn.Softplus(10.0))
    dens_l = torch.nn.Sequential(torch.nn.Linear(hidden, 1), torch.nn.Softplus(10.0))
    col_l = torch.nn.Sequential(torch.nn.Linear(hidden + e, hidden), torch.nn.Softplus(10.0), torch.nn.Linear(hidden, 3),
                                torch.nn.Sigmoid())
    params = [p for m in (mlp, dens_l, col_l) for p in m.parameters()]
    opt = torch.optim.Adam(params, lr=3e-3)

    def field(ray_bundle, **kwargs):
        feats = mlp(emb(ray_bundle_to_ray_points(ray_bundle)))
        dirs = emb(torch.nn.functional.normalize(ray_bundle.directions, dim=-1))[..., None, :].expand(*feats.shape[:-1], e)
        return 1 - (-dens_l(feats)).exp(), col_l(torch.cat((feats, dirs), -1))

    renderer = ImplicitRenderer(MonteCarloRaysampler(-1.0, 1.0, -1.0, 1.0, rays, points, 0.1, 3.0), EmissionAbsorptionRaymarcher())

    def step():
        opt.zero_grad()
        img, _ = renderer(cameras=cams, volumetric_function=field)
        img.square().mean().backward()
        opt.step()

    r = time_fwd_bwd(lambda: renderer(cameras=cams, volumetric_function=field), step, runs, 0, fwd_no_grad=True)
    rows = [(f"NeRF step {views} x {rays} rays x {points} pts, {hidden} hidden", "torch", f"{r['fwd_ms']:.0f}", f"{r['fwdbwd_ms']:.0f}", "")]
    rows.append(marcher_row(views, rays, points, runs))
    return rows


def volume_step_row(runs):
    # examples/pytorch3d/fit_textured_volume.py at its CPU defaults: 6 views, 64^2, 64^3, 80 points
    views, size, voxels, points = 6, 64, 64, 80
    cams = _cameras(views)
    log_d = torch.nn.Parameter(-4.0 * torch.ones(1, voxels, voxels, voxels))
    log_c = torch.nn.Parameter(torch.zeros(3, voxels, voxels, voxels))
    opt = torch.optim.Adam([log_d, log_c], lr=0.1)
    renderer = VolumeRenderer(NDCMultinomialRaysampler(image_width=size, image_height=size, n_pts_per_ray=points,
                                                       min_depth=0.1, max_depth=3.0), EmissionAbsorptionRaymarcher())
    target = torch.rand(views, size, size, 4)

    def render():
        vol = Volumes(torch.sigmoid(log_d)[None].expand(views, -1, -1, -1, -1),
                      torch.sigmoid(log_c)[None].expand(views, -1, -1, -1, -1), voxel_size=3.0 / voxels)
        return renderer(cameras=cams, volumes=vol)[0]

    def step():
        opt.zero_grad()
        (render() - target).abs().mean().backward()
        opt.step()

    r = time_fwd_bwd(render, step, runs, 0, fwd_no_grad=True)
    return [(f"volume step {views} x {size}^2 x {points} pts, {voxels}^3 grid", "fused", f"{r['fwd_ms']:.0f}", f"{r['fwdbwd_ms']:.0f}", "")]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tutorial-sizes", action="store_true", help="also the tutorial's 10 x 128^2 x 150, 128^3 render")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--p3d-python", default="/work/p3d/venv/bin/python",
                        help="an interpreter with PyTorch3D (CPU) to time its VolumeRenderer on the same scene")
    args = parser.parse_args()
    load_before = os.getloadavg()
    p3d = args.p3d_python if args.p3d_python and Path(args.p3d_python).exists() else None
    rows = volume_render_rows(6, 64, 64, 80, args.runs, p3d)
    if args.tutorial_sizes:
        rows += volume_render_rows(10, 128, 128, 150, args.runs)
    rows += volume_step_row(args.runs)
    rows += nerf_step_row(args.runs)
    load_after = os.getloadavg()
    header = ("case", "path", "fwd ms", "fwd+bwd ms", "vs fused (fwd / fwd+bwd)")
    table = markdown_table(header, rows)
    load = f"load average (1 min) {load_before[0]:.1f} before, {load_after[0]:.1f} after"
    body = (f"`python benchmarks/volumes.py{' --tutorial-sizes' if args.tutorial_sizes else ''}` on {machine_description()}; "
            f"{load}; OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}.\n\n{table}\n\n"
            "\"step\" rows are one optimisation step of the examples/pytorch3d/ tutorials (the fwd column: the render "
            "alone, no grad). Ratios are measured side by side in this one run.")
    print(table)
    print(load)
    if not args.no_write:
        print(f"wrote {update_section('Volumes and implicit rendering', body)}")


if __name__ == "__main__":
    main()
