"""Time the losses at the sizes inverse rendering uses, forward + backward, and print a table.

    python benchmarks/losses.py            # chamfer up to 100k points, mesh losses on ico-sphere level 4
    python benchmarks/losses.py --no-write # print only

``chamfer_distance`` between two uniform random clouds in the unit cube (float32, gradient w.r.t. x),
through the default CPU search (``cKDTree``) and through the brute-force blocked search (the only search
before, still the path on other devices) on the sizes where it takes seconds, not minutes; each case
runs in its own subprocess, so "peak MiB" is that case's peak RSS above its baseline after set-up.
The chamfer table is written to the "Chamfer distance" section of ``benchmarks/RESULTS.md``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from diffras.losses import chamfer_distance, mesh_edge_loss, mesh_laplacian_smoothing, mesh_normal_consistency
from diffras.ops.ico_sphere import ico_sphere
from diffras.structures import Meshes


def _time(fn, repeat: int) -> float:
    fn()  # warm-up
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t0) / repeat


def _rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def chamfer_worker(search: str, p: int) -> dict:
    import resource

    import diffras.losses.knn as knn_mod

    knn_mod._KDTREE_CPU = search == "kdtree"
    torch.manual_seed(0)
    x = torch.rand(1, p, 3, requires_grad=True)
    y = torch.rand(1, p, 3)
    baseline = _rss_bytes()

    def run():
        loss, _ = chamfer_distance(x, y)
        loss.backward()

    dt = _time(run, 1 if p >= 20_000 else 3)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"ms": dt * 1e3, "peak_mib": (peak - baseline) / 2**20}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000, 5_000, 20_000, 100_000])
    ap.add_argument("--brute-max", type=int, default=20_000, help="largest size timed with the brute-force search")
    ap.add_argument("--no-write", action="store_true", help="print only, leave RESULTS.md alone")
    ap.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(chamfer_worker(args.worker[0], int(args.worker[1]))))
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _results import machine_description, markdown_table, update_section

    torch.manual_seed(0)
    load_before = os.getloadavg()
    rows = []
    for p in args.sizes:
        res = {}
        for search in ("kdtree", "brute"):
            if search == "brute" and p > args.brute_max:
                continue
            out = subprocess.run([sys.executable, __file__, "--worker", search, str(p)], capture_output=True, text=True)
            if out.returncode != 0:
                raise RuntimeError(out.stderr.strip().splitlines()[-1])
            res[search] = json.loads(out.stdout.strip().splitlines()[-1])
        k, b = res["kdtree"], res.get("brute")
        rows.append([f"{p:,} x {p:,}", f"{k['ms']:.1f}", f"{k['peak_mib']:.0f}",
                     f"{b['ms']:.1f}" if b else "-", f"{b['peak_mib']:.0f}" if b else "-",
                     f"{b['ms'] / k['ms']:.1f}x" if b else "-"])
        print(" | ".join(rows[-1]), flush=True)
    table = markdown_table(["chamfer_distance, fwd+bwd", "kd-tree ms", "kd-tree peak MiB", "brute ms",
                            "brute peak MiB", "brute / kd-tree"], rows)
    print(table)
    if not args.no_write:
        note = (f"`python benchmarks/losses.py` — two uniform float32 clouds, gradient w.r.t. x. Machine: "
                f"{machine_description()}. Load average (1 min) {load_before[0]:.1f} before, "
                f"{os.getloadavg()[0]:.1f} after, on {os.cpu_count()} cores (a shared machine inflates the "
                "times; the ratio is measured side by side).")
        print(f"wrote {update_section('Chamfer distance', note + chr(10) + chr(10) + table)}")

    sphere = ico_sphere(4)
    verts = sphere.verts_packed().clone().requires_grad_(True)
    faces = sphere.faces_packed()
    cases = {
        "mesh_edge_loss": mesh_edge_loss,
        "mesh_normal_consistency": mesh_normal_consistency,
        "mesh_laplacian_smoothing uniform": mesh_laplacian_smoothing,
        "mesh_laplacian_smoothing cot": lambda m: mesh_laplacian_smoothing(m, "cot"),
        "mesh_laplacian_smoothing cotcurv": lambda m: mesh_laplacian_smoothing(m, "cotcurv"),
    }
    for name, fn in cases.items():
        # A fresh Meshes per step, as in an optimisation loop (offsets change the vertices every step).
        dt = _time(lambda: fn(Meshes([verts], [faces])).backward(), 10)
        print(f"{name + ' (ico-sphere 4)':40s} {dt * 1e3:14.1f} {'':>14s}")


if __name__ == "__main__":
    main()
