"""Soft (SoftRas blur) vs antialias (hard render + nvdiffrast's analytic edge antialiasing) gradients in the
workflows, side by side in one run (issue 11):

- pose: random starts 30-60 degrees from the truth (the same starts for both), how many converge to
  under 2 degrees (target for antialias: >= 18/20), median error and time per run;
- fit: held-out silhouette IoU, chamfer and PSNR of ``diffras fit``'s default run, and its time.

    nice .venv/bin/python benchmarks/gradients.py [--starts 20] [--only pose|fit] [--modes soft antialias] [--iters N] [--size S]

Prints a table and rewrites the "Gradients: soft vs antialias" section of benchmarks/RESULTS.md, with the
load average (the numbers of a shared machine are noisy).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import machine_description, markdown_table, update_section  # noqa: E402

from diffras.data import load_cow  # noqa: E402
from diffras.workflows import FitConfig, PoseConfig, fit_mesh, fit_pose, rotation_error_deg  # noqa: E402
from diffras.workflows import camera_from_eye, normalize_to_unit_sphere  # noqa: E402
from diffras.workflows.pose import random_eye, start_eye  # noqa: E402
from diffras.workflows.scene import render_views  # noqa: E402

MODES = ("soft", "antialias")


def bench_pose(starts: int, overrides: dict, modes=MODES):
    mesh = normalize_to_unit_sphere(load_cow())
    base = dataclasses.replace(PoseConfig(), **overrides)
    gen = torch.Generator().manual_seed(0)
    cases = []
    for _ in range(starts):
        truth = random_eye(gen, base.dist)
        cases.append((truth, start_eye(truth, gen, base)))
    rows = []
    for mode in modes:
        cfg = dataclasses.replace(base, gradients=mode)
        errs, times = [], []
        for i, (truth, init) in enumerate(cases):
            with torch.no_grad():
                ref = render_views(mesh, camera_from_eye(truth[None], cfg.fov), cfg.image_size)[0]
            start_err = rotation_error_deg(camera_from_eye(init[None], cfg.fov).R, camera_from_eye(truth[None], cfg.fov).R).item()
            t = time.perf_counter()
            r = fit_pose(mesh, ref, init, cfg, true_eye=truth)
            times.append(time.perf_counter() - t)
            errs.append(r.metrics["rotation_error_deg"])
            print(f"  {mode:9s} start {i:2d}: {start_err:5.1f} deg -> {errs[-1]:6.2f} deg in {times[-1]:.1f} s", flush=True)
        good = sum(e < 2.0 for e in errs)
        rows.append((f"pose, {mode}", f"{good}/{starts} under 2 deg; median {sorted(errs)[len(errs) // 2]:.2f} deg",
                     f"median {sorted(times)[len(times) // 2]:.1f} s per run ({cfg.iters} steps, {cfg.image_size} px)"))
    return rows


def bench_fit(overrides: dict, modes=MODES):
    rows = []
    for mode in modes:
        cfg = dataclasses.replace(FitConfig(), gradients=mode, **overrides)
        t = time.perf_counter()
        m = fit_mesh(load_cow(), cfg, seed=0).metrics
        wall = time.perf_counter() - t
        rows.append((f"fit, {mode}", f"IoU {m['heldout_silhouette_iou']:.3f}; chamfer {m['chamfer_unit_diagonal']:.4f}; "
                     f"PSNR {m['heldout_rgb_psnr_db']:.1f} dB", f"{wall:.1f} s ({cfg.iters} steps, {cfg.image_size} px)"))
        print("  " + " | ".join(rows[-1]), flush=True)
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", choices=["fit", "pose"], default=None)
    p.add_argument("--starts", type=int, default=20)
    p.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES), help="gradient modes to compare")
    p.add_argument("--iters", type=int, default=None, help="override the workflows' default steps")
    p.add_argument("--size", type=int, default=None, help="override the workflows' default image size")
    args = p.parse_args()
    overrides = {k: v for k, v in (("iters", args.iters), ("image_size", args.size)) if v is not None}
    load0 = os.getloadavg()
    rows = []
    if args.only in (None, "pose"):
        rows += bench_pose(args.starts, overrides, args.modes)
    if args.only in (None, "fit"):
        rows += bench_fit(overrides, args.modes)
    load1 = os.getloadavg()
    table = markdown_table(("workflow, gradients", "quality", "time"), rows)
    print(table)
    cmd = "nice .venv/bin/python benchmarks/gradients.py " + " ".join(sys.argv[1:])
    body = (f"`{cmd}` on {machine_description()}; load average {load0[0]:.1f} before, {load1[0]:.1f} after "
            f"(a shared machine: times are indicative only).\n\n{table}\n")
    update_section("Gradients: soft vs antialias", body)


if __name__ == "__main__":
    main()
