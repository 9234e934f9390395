"""Time the blending of the cow's fragments: fused numba kernels vs the packed torch path vs the old dense path.

Usage: ``python benchmarks/blend.py [--runs 5] [--views 8] [--size 512] [--no-write]``

Scene: the bundled Spot cow seen from ``--views`` directions at ``--size``^2, rasterized once with soft
settings (sigma = 1e-4, blur_radius = log(1/sigma - 1) * sigma) for K = 8 and K = 50: a realistic fill
(most of the 50 slots are empty). Random colours (P, 3). Each blend rule is timed forward + backward
(``out.sum()`` back to the colours, zbuf and dists) through:

- ``fused``: ``blend_packed`` on the CPU (numba kernels, hand-written backward);
- ``torch``: ``blend_packed``'s packed torch path (the path on other devices), in the same run;
- ``dense``: the dense (N, H, W, K, C) torch formulas diffras used before (PyTorch3D's), K = 8 only
  (at K = 50 it needs several GiB).

Median of ``--runs`` after one warm-up. Printed and written to the "Blending" section of
``benchmarks/RESULTS.md`` with the load average: on a shared machine compare the ratios, measured side
by side, not the absolute times. ``--cpu-time`` runs everything on one thread (torch and numba) and
reports process CPU time instead of wall time: the work done, nearly independent of other processes'
load, for comparing implementations on a busy machine (not what a user waits on 2 idle cores).
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SIGMA = 1e-4


def dense_blend(rule, colors, p2f, zbuf, dists, bg, znear=1.0, zfar=100.0):
    """The dense formulas (PyTorch3D's), as diffras computed them before the packed path."""
    import torch

    mask = p2f >= 0
    if rule == "hard":
        covered = mask[..., :1]
        return torch.cat([torch.where(covered, colors[..., 0, :], bg), covered.to(colors.dtype)], -1)
    prob = torch.where(mask, torch.sigmoid(-dists / SIGMA), 0.0)
    alpha = 1.0 - torch.prod(1.0 - prob, dim=-1)
    if rule == "sigmoid":
        return torch.cat([colors[..., 0, :], alpha[..., None]], -1)
    z_inv = torch.where(mask, (zfar - zbuf) / (zfar - znear), 0.0)
    z_max = torch.max(z_inv, dim=-1, keepdim=True).values.clamp(min=1e-10)
    w = prob * torch.exp((z_inv - z_max) / SIGMA)
    delta = torch.exp((1e-10 - z_max) / SIGMA).clamp(min=1e-10)
    rgb = (torch.einsum("...k,...kc->...c", w, colors) + delta * bg) / (w.sum(-1, keepdim=True) + delta)
    return torch.cat([rgb, alpha[..., None]], -1)


def _median_ms(fn, runs, clock=time.perf_counter):
    fn()
    ts = []
    for _ in range(runs):
        t0 = clock()
        fn()
        ts.append(clock() - t0)
    return 1e3 * statistics.median(ts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--views", type=int, default=8)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--cpu-time", action="store_true", help="one thread, process CPU time (see the docstring)")
    args = ap.parse_args()
    sys.path.insert(0, str(HERE))
    from _results import machine_description, markdown_table, update_section

    import torch

    import diffras.shading.blending as blending
    from diffras.cameras import FoVPerspectiveCameras, look_at_view_transform
    from diffras.data import load_cow
    from diffras.raster import MeshRasterizer, RasterSettings
    from diffras.shading.blending import BlendParams, blend_packed

    clock = time.perf_counter
    if args.cpu_time:
        import numba

        torch.set_num_threads(1)
        numba.set_num_threads(1)
        clock = time.process_time
    unit = "CPU ms (1 thread)" if args.cpu_time else "ms"
    load_before = os.getloadavg()
    cow = load_cow()
    R, T = look_at_view_transform(2.7, 10.0, torch.linspace(0.0, 360.0, args.views + 1)[:-1])
    cams = FoVPerspectiveCameras(R=R, T=T, fov=60.0)
    bp = BlendParams(sigma=SIGMA, gamma=SIGMA)
    bg = torch.ones(3)
    header = ["rule", "K", "filled fragments", f"fused {unit}", f"torch {unit}", f"dense {unit}", "torch / fused",
              "dense / fused", "fused ns / fragment"]
    rows = []
    g = torch.Generator().manual_seed(0)
    for K in (8, 50):
        settings = RasterSettings(args.size, faces_per_pixel=K, blur_radius=math.log(1.0 / SIGMA - 1.0) * SIGMA)
        with torch.no_grad():
            frag = MeshRasterizer(cams, settings)(cow.extend(args.views))
        shape = tuple(frag.pix_to_face.shape)
        slots = (frag.pix_to_face.reshape(-1) >= 0).nonzero()[:, 0]
        P = slots.shape[0]
        cols = torch.rand(P, 3, generator=g)
        z, d = frag.zbuf.reshape(-1)[slots].contiguous(), frag.dists.reshape(-1)[slots].contiguous()
        for rule in ("softmax", "sigmoid", "hard"):
            def packed(fused):
                blending._FUSED_CPU = fused
                c, zz, dd = (t.clone().requires_grad_(True) for t in (cols, z, d))
                blend_packed(rule, c, slots, zz, dd, shape, bp).sum().backward()

            t_fused = _median_ms(lambda: packed(True), args.runs, clock)
            t_torch = _median_ms(lambda: packed(False), args.runs, clock)
            blending._FUSED_CPU = True
            t_dense = float("nan")
            if K == 8:
                dense_cols = torch.zeros(shape + (3,))
                dense_cols.reshape(-1, 3)[slots] = cols

                def dense():
                    c, zz, dd = (t.clone().requires_grad_(True) for t in (dense_cols, frag.zbuf, frag.dists))
                    dense_blend(rule, c, frag.pix_to_face, zz, dd, bg).sum().backward()

                t_dense = _median_ms(dense, args.runs, clock)
            rows.append([rule, K, P, f"{t_fused:.1f}", f"{t_torch:.1f}",
                         "-" if math.isnan(t_dense) else f"{t_dense:.1f}", f"{t_torch / t_fused:.1f}x",
                         "-" if math.isnan(t_dense) else f"{t_dense / t_fused:.1f}x", f"{1e6 * t_fused / P:.1f}"])
            print(" | ".join(str(c) for c in rows[-1]), flush=True)
    table = markdown_table(header, rows)
    load_after = os.getloadavg()
    cmd = "python benchmarks/blend.py" + (" --cpu-time" if args.cpu_time else "")
    note = (f"`{cmd}` — the cow, {args.views} views at {args.size}^2, soft rasterization "
            f"(sigma = gamma = 1e-4), random colours; forward + backward of `out.sum()`, median of {args.runs} "
            f"runs after a warm-up{'; one thread, process CPU time' if args.cpu_time else ''}. Machine: {machine_description()}. Load average (1 min) {load_before[0]:.1f} "
            f"before, {load_after[0]:.1f} after, on {os.cpu_count()} cores: a load above the core count "
            "inflates the times; the ratios were measured side by side in one run.")
    print(table)
    if not args.no_write:
        print(f"wrote {update_section('Blending', note + chr(10) + chr(10) + table)}")


if __name__ == "__main__":
    main()
