"""Time the losses at the sizes inverse rendering uses, forward + backward, and print a table.

    python benchmarks/losses.py            # chamfer up to 20k points, mesh losses on ico-sphere level 4
    python benchmarks/losses.py --large    # also two 100k-point clouds (tens of seconds on 2 cores)

Peak memory of the chamfer search is bounded by the block size, not by P1 x P2; the last column shows
the resident-set growth measured around each call.
"""
from __future__ import annotations

import argparse
import resource
import time

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--large", action="store_true", help="include 100k x 100k chamfer")
    args = ap.parse_args()
    torch.manual_seed(0)

    print(f"{'case':40s} {'ms (fwd+bwd)':>14s} {'rss growth MB':>14s}")
    sizes = [1_000, 5_000, 20_000] + ([100_000] if args.large else [])
    for p in sizes:
        x = torch.rand(1, p, 3, requires_grad=True)
        y = torch.rand(1, p, 3)

        def run():
            loss, _ = chamfer_distance(x, y)
            loss.backward()

        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        dt = _time(run, 1 if p >= 20_000 else 3)
        grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
        print(f"{f'chamfer_distance {p} x {p}':40s} {dt * 1e3:14.1f} {grown:14.0f}")

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
