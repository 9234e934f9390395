"""Time ``diffras.splat.rasterization`` forward + backward: ns per Gaussian-pixel pair, numba vs torch, scaling.

Usage: ``python benchmarks/splat.py [--runs 3] [--sizes 10000 30000 100000 300000 1000000] [--torch-n 10000]``

Scene: ``N`` Gaussians uniform in a ball of radius 1 at distance 4 in front of a 60-degree pinhole camera,
512^2, standard deviations uniform in [0.005, 0.025] (a trained scene's small splats), random rotations,
opacities uniform in [0.1, 0.9], RGB colours. "fwd+bwd" is ``rasterization`` then the backward of
``colors.sum() + alphas.sum()`` to means, quats, scales, opacities and colours (median of ``--runs`` after a
warm-up). "pairs" counts the (pixel, Gaussian) pairs the compositor examines: per tile intersection, the
tile pixels inside the Gaussian's footprint box -- the work a tile rasterizer cannot avoid; the table
shows the cost per pair staying flat while N grows 100x. The plain-torch path is timed on the same scene in
the same run at ``--torch-n`` Gaussians (it is far slower; at 100k it takes minutes).
Writes the "Gaussian splatting" section of ``benchmarks/RESULTS.md``.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import machine_description, markdown_table, time_fwd_bwd, update_section  # noqa: E402

from diffras.splat import rasterization  # noqa: E402

SIZE = 512


def scene(n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    d = torch.randn(n, 3, generator=g)
    means = d / d.norm(dim=-1, keepdim=True) * torch.rand(n, 1, generator=g) ** (1 / 3)
    means[:, 2] += 4.0
    f = 0.5 * SIZE / math.tan(math.radians(30))
    return dict(means=means, quats=torch.randn(n, 4, generator=g), scales=0.005 + 0.02 * torch.rand(n, 3, generator=g),
                opacities=0.1 + 0.8 * torch.rand(n, generator=g), colors=torch.rand(n, 3, generator=g),
                viewmats=torch.eye(4)[None], Ks=torch.tensor([[[f, 0, SIZE / 2], [0, f, SIZE / 2], [0, 0, 1]]]),
                width=SIZE, height=SIZE)


def count_pairs(meta) -> int:
    """Sum over tile intersections of the tile pixels inside the Gaussian's footprint box."""
    ts, tw = meta["tile_size"], meta["tile_width"]
    offsets = meta["isect_offsets"].reshape(-1).long()
    n_isect = meta["flatten_ids"].numel()
    counts = torch.diff(torch.cat([offsets, torch.tensor([n_isect])]))
    tile = torch.repeat_interleave(torch.arange(offsets.numel()), counts) % (tw * meta["tile_height"])
    g = meta["flatten_ids"]
    m = meta["means2d"].reshape(-1, 2)[g].detach().double()
    r = meta["radii"].reshape(-1, 2)[g].double()
    tx0, ty0 = (tile % tw) * ts, (tile // tw) * ts
    x0 = torch.maximum(torch.ceil(m[:, 0] - r[:, 0] - 0.5), tx0.double())
    x1 = torch.minimum(torch.floor(m[:, 0] + r[:, 0] - 0.5) + 1, (tx0 + ts).clamp(max=meta["width"]).double())
    y0 = torch.maximum(torch.ceil(m[:, 1] - r[:, 1] - 0.5), ty0.double())
    y1 = torch.minimum(torch.floor(m[:, 1] + r[:, 1] - 0.5) + 1, (ty0 + ts).clamp(max=meta["height"]).double())
    return int(((x1 - x0).clamp(min=0) * (y1 - y0).clamp(min=0)).sum())


def measure(n: int, backend: str, runs: int, baseline_bytes: int = 0) -> dict:
    s = scene(n)
    leaves = {k: s[k].clone().requires_grad_(True) for k in ("means", "quats", "scales", "opacities", "colors")}

    def fwd():
        return rasterization(**dict(s, **leaves), packed=False, backend=backend)

    def fwd_bwd():
        out, alpha, meta = fwd()
        (out.sum() + alpha.sum()).backward()
        for t in leaves.values():
            t.grad = None
        return meta

    r = time_fwd_bwd(fwd, fwd_bwd, runs, baseline_bytes, fwd_no_grad=True)
    meta = r["warmup"]
    # CPU seconds (all threads) of one more fwd+bwd: on a shared machine wall time mostly measures the wait
    # for a core, CPU time much less so (on a quiet 2-core machine wall ~ CPU / 1.5-2).
    c0 = time.process_time()
    fwd_bwd()
    cpu_ms = 1e3 * (time.process_time() - c0)
    return {"n": n, "backend": backend, "fwd_ms": r["fwd_ms"], "fwdbwd_ms": r["fwdbwd_ms"],
            "isects": meta["flatten_ids"].numel(), "pairs": count_pairs(meta), "peak_mib": r["peak_mib"], "cpu_ms": cpu_ms}


def main() -> None:
    import resource

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 30_000, 100_000, 300_000, 1_000_000])
    ap.add_argument("--torch-n", type=int, default=10_000)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    load0 = os.getloadavg()
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    rows = []
    for n in args.sizes:
        # Memory: the scene's splats are tiny and rarely visit more than ~3 tiles, so 1M Gaussians make ~3M
        # tile entries (8 bytes each, plus 9 gradient rows); the peak column shows what the process held.
        m = measure(n, "numba", args.runs, base)
        rows.append(m)
        print(f"N={n:>8}  isects={m['isects']:>9}  pairs={m['pairs']:>11}  fwd {m['fwd_ms']:8.1f} ms  "
              f"fwd+bwd {m['fwdbwd_ms']:8.1f} ms (CPU {m['cpu_ms']:.0f} ms)  {1e6 * m['fwdbwd_ms'] / max(m['pairs'], 1):6.2f} ns/pair  "
              f"peak RSS +{m['peak_mib']:.0f} MiB", flush=True)
    t = measure(args.torch_n, "torch", 1)
    nb = measure(args.torch_n, "numba", args.runs)
    load1 = os.getloadavg()
    ratio = t["fwdbwd_ms"] / nb["fwdbwd_ms"]
    print(f"torch path at N={args.torch_n}: fwd+bwd {t['fwdbwd_ms']:.0f} ms vs numba {nb['fwdbwd_ms']:.1f} ms: {ratio:.1f}x "
          f"(CPU {t['cpu_ms']:.0f} vs {nb['cpu_ms']:.0f} ms)")
    table = markdown_table(
        ["N Gaussians", "tile isects", "pairs examined", "fwd ms", "fwd+bwd ms", "ns / pair (fwd+bwd)",
         "fwd+bwd CPU ms (all threads)",
         "peak RSS MiB (process, so far)"],
        [[f"{m['n']:,}", f"{m['isects']:,}", f"{m['pairs']:,}", f"{m['fwd_ms']:.1f}", f"{m['fwdbwd_ms']:.1f}",
          f"{1e6 * m['fwdbwd_ms'] / max(m['pairs'], 1):.2f}", f"{m['cpu_ms']:.0f}", f"{m['peak_mib']:.0f}"]
         for m in rows])
    body = (f"`python benchmarks/splat.py --runs {args.runs}` — `rasterization` forward + backward (to means, quats, "
            f"scales, opacities, colours) at 512^2, Numba kernels, median of the runs after a warm-up; small random "
            f"splats in a unit ball (see the script's docstring). \"pairs examined\": per tile intersection, the tile "
            f"pixels inside the Gaussian's footprint box.\n\nMachine: {machine_description()}. Load average before {load0[0]:.1f}, after "
            f"{load1[0]:.1f}: a load far above the core count inflates these times.\n\n{table}\n\n"
            f"Plain-torch path on the same scene at N={args.torch_n:,}: fwd+bwd {t['fwdbwd_ms']:.0f} ms vs Numba "
            f"{nb['fwdbwd_ms']:.1f} ms ({ratio:.1f}x); CPU {t['cpu_ms']:.0f} ms vs {nb['cpu_ms']:.0f} ms "
            f"({t['cpu_ms'] / max(nb['cpu_ms'], 1e-9):.1f}x).\n")
    if not args.no_write:
        print("wrote", update_section("Gaussian splatting", body))


if __name__ == "__main__":
    main()
