"""Measure the main job's quality and speed targets with the defaults (issue 5):

- fit: held-out silhouette IoU >= 0.95 and chamfer (unit diagonal) <= 0.01, in <= 30 s (issue 9; was: 2 minutes);
- pose: from 20 random starts >= 30 degrees from the truth, >= 18 converge to < 2 degrees; each run < 30 s;
- texture: held-out PSNR >= 28 dB on the cow in under 2 minutes.

    .venv/bin/python benchmarks/workflows.py [--only fit|pose|texture] [--starts 20] [--compare-fit]

Prints a table and rewrites the "Workflows" section of benchmarks/RESULTS.md (``--only W``: only W's row of
it). ``--compare-fit`` also runs the fit with the previous defaults (K = 30 soft faces per pixel) in the same
process, for a side-by-side ratio on a noisy machine.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import RESULTS, machine_description, markdown_table, update_section  # noqa: E402

from diffras.data import load_cow  # noqa: E402
from diffras.workflows import FitConfig, PoseConfig, TextureConfig, fit_mesh, fit_pose, fit_texture  # noqa: E402
from diffras.workflows import camera_from_eye, normalize_to_unit_sphere, sphere_cameras  # noqa: E402
from diffras.workflows.pose import random_eye, start_eye  # noqa: E402
from diffras.workflows.scene import render_views  # noqa: E402


def _run_fit(cfg):
    t = time.perf_counter()
    r = fit_mesh(load_cow(), cfg, seed=0)
    return time.perf_counter() - t, r.metrics


def bench_fit(compare: bool = False):
    rows = []
    if compare:
        # The previous defaults, same process and machine state: the honest ratio on a shared machine.
        old_wall, old = _run_fit(dataclasses.replace(FitConfig(), faces_per_pixel=30))
        print(f"  fit, previous defaults (K = 30): {old_wall:.1f} s, IoU {old['heldout_silhouette_iou']:.3f}, "
              f"PSNR {old['heldout_rgb_psnr_db']:.2f} dB", flush=True)
    wall, m = _run_fit(FitConfig())
    ok = m["heldout_silhouette_iou"] >= 0.95 and m["chamfer_unit_diagonal"] <= 0.01 and wall <= 30
    time_cell = f"{wall:.1f} s (<= 30, issue 9)"
    if compare:
        time_cell += f"; previous defaults {old_wall:.1f} s in the same run ({old_wall / wall:.2f}x)"
    rows.append(("fit", f"IoU {m['heldout_silhouette_iou']:.3f} (>= 0.95); chamfer {m['chamfer_unit_diagonal']:.4f} (<= 0.01); "
                 f"PSNR {m['heldout_rgb_psnr_db']:.1f} dB", time_cell, "yes" if ok else "NO"))
    return rows


def bench_pose(starts: int):
    cfg = PoseConfig()
    mesh = normalize_to_unit_sphere(load_cow())
    gen = torch.Generator().manual_seed(0)
    errs, times, start_errs = [], [], []
    from diffras.workflows import rotation_error_deg

    for i in range(starts):
        truth = random_eye(gen, cfg.dist)
        init = start_eye(truth, gen, cfg)
        with torch.no_grad():
            ref = render_views(mesh, camera_from_eye(truth[None], cfg.fov), cfg.image_size)[0]
        start_errs.append(rotation_error_deg(camera_from_eye(init[None], cfg.fov).R, camera_from_eye(truth[None], cfg.fov).R).item())
        t = time.perf_counter()
        r = fit_pose(mesh, ref, init, cfg, true_eye=truth)
        times.append(time.perf_counter() - t)
        errs.append(r.metrics["rotation_error_deg"])
        print(f"  pose start {i:2d}: start error {start_errs[-1]:5.1f} deg -> {errs[-1]:6.2f} deg in {times[-1]:.1f} s", flush=True)
    good = sum(e < 2.0 for e in errs)
    ok = good >= int(0.9 * starts) and max(times) < 30
    return [("pose", f"{good}/{starts} under 2 deg (>= 18/20); starts {min(start_errs):.0f}-{max(start_errs):.0f} deg away; "
             f"median final error {sorted(errs)[len(errs) // 2]:.2f} deg",
             f"max {max(times):.1f} s, median {sorted(times)[len(times) // 2]:.1f} s per run (< 30)", "yes" if ok else "NO")]


def bench_texture():
    cfg = TextureConfig()
    cow = normalize_to_unit_sphere(load_cow())
    cams = sphere_cameras(cfg.views, dist=cfg.dist, fov=cfg.fov)
    ho = sphere_cameras(cfg.holdout, dist=cfg.dist, fov=cfg.fov, phase=1.0)
    t = time.perf_counter()
    with torch.no_grad():
        images = render_views(cow, cams, cfg.image_size)
        ho_images = render_views(cow, ho, cfg.image_size)
    r = fit_texture(cow, images, cams, cfg, holdout=(ho_images, ho))
    wall = time.perf_counter() - t
    m = r.metrics
    ok = m["heldout_psnr_foreground_db"] >= 28 and wall < 120
    return [("texture", f"held-out PSNR {m['heldout_psnr_foreground_db']:.1f} dB on the cow's pixels (>= 28); "
             f"{m['heldout_psnr_db']:.1f} dB whole image", f"{wall:.1f} s (< 120)", "yes" if ok else "NO")]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", choices=["fit", "pose", "texture"], default=None)
    p.add_argument("--starts", type=int, default=20)
    p.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    p.add_argument("--compare-fit", action="store_true", help="also time the fit with the previous defaults")
    args = p.parse_args()
    load = os.getloadavg()
    rows = []
    if args.only in (None, "fit"):
        rows += bench_fit(args.compare_fit)
    if args.only in (None, "pose"):
        rows += bench_pose(args.starts)
    if args.only in (None, "texture"):
        rows += bench_texture()
    table = markdown_table(["workflow (defaults)", "quality (target)", "time (target)", "met"], rows)
    print(table)
    if args.no_write:
        return
    loads = f"load average {load[0]:.1f} at start, {os.getloadavg()[0]:.1f} at end"
    if args.only is None:
        body = f"`python benchmarks/workflows.py` on {machine_description()}; {loads}.\n\n{table}\n"
        print(f"updated {update_section('Workflows', body)}")
    else:
        print(f"updated {_update_rows(rows, f'`--only {args.only}`: {machine_description()}; {loads}.')}")


def _update_rows(rows, note: str):
    """Replace the rows of these workflows in the existing Workflows table (others kept) and add ``note``."""
    text = RESULTS.read_text()
    section = re.search(r"^## Workflows\n.*?(?=^## |\Z)", text, re.S | re.M)
    if section is None:
        return update_section("Workflows", markdown_table(["workflow (defaults)", "quality (target)", "time (target)", "met"], rows))
    body = section.group(0)
    for row in rows:
        line = "| " + " | ".join(str(c) for c in row) + " |"
        body, n = re.subn(rf"^\| {re.escape(row[0])} \|.*$", lambda _: line, body, count=1, flags=re.M)
        if n == 0:
            raise SystemExit(f"RESULTS.md: no '{row[0]}' row in the Workflows table")
    # One re-measurement note per workflow, replaced on each run.
    tag = f"Re-measured {rows[0][0]} row"
    body = re.sub(rf"^{tag}: .*\n\n", "", body, flags=re.M)
    body = body.replace("\n\n| workflow", f"\n\n{tag}: {note}\n\n| workflow", 1)
    return update_section("Workflows", body.split("\n", 1)[1])


if __name__ == "__main__":
    main()
