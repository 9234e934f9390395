"""Time ``rasterize_visibility`` (numba vs torch backends) on ico-spheres.

Usage: ``python benchmarks/visibility.py [--repeat 5] [--sizes 256 512] [--levels 4 6] [--backends numba torch]``

The scene is the speed-target scene of the visibility brief: a unit ico-sphere seen from distance 2.7
by a 60-degree field-of-view perspective camera, perspective-correct barycentrics on (the rasterizer's
default for perspective cameras). Settings per (mesh, size): K=1 hard, and K=8 soft with
``sigma = 1e-4, blur_radius = log(1 / sigma - 1) * sigma`` (the SoftRas setting) with clipped
barycentrics (the rasterizer's default when blur_radius > 0), keeping each pixel's covering face (the
default) or not ("K=8 strict", PyTorch3D's rule; its warning is silenced here). The table gives the
median and minimum wall time in milliseconds after one warm-up call (compilation excluded) and the
torch/numba ratio of the minima.
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import time
import warnings

import numba
import torch

from diffras.raster.visibility import rasterize_visibility


def ico_sphere(level: int, dtype=torch.float64):
    """Unit ico-sphere: (V, 3) vertices and (F, 3) faces, F = 20 * 4**level, outward winding."""
    t = (1.0 + 5**0.5) / 2.0
    v = torch.tensor(
        [[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0], [0, -1, t], [0, 1, t],
         [0, -1, -t], [0, 1, -t], [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]], dtype=dtype,
    )
    f = torch.tensor(
        [[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9], [5, 11, 4], [11, 10, 2],
         [10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8], [3, 8, 9], [4, 9, 5],
         [2, 4, 11], [6, 2, 10], [8, 6, 7], [9, 8, 1]], dtype=torch.int64,
    )
    v = v / v.norm(dim=1, keepdim=True)
    for _ in range(level):
        edges = torch.cat([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]).sort(dim=1).values
        uniq, inv = torch.unique(edges, dim=0, return_inverse=True)
        mid = v[uniq].mean(dim=1)
        mid = mid / mid.norm(dim=1, keepdim=True)
        m = inv.view(3, -1).T + v.shape[0]  # midpoints of edges (01, 12, 20)
        v = torch.cat([v, mid])
        a, b, c = f.T
        m01, m12, m20 = m.T
        f = torch.cat([
            torch.stack([a, m01, m20], 1), torch.stack([b, m12, m01], 1),
            torch.stack([c, m20, m12], 1), torch.stack([m01, m12, m20], 1),
        ])
    return v, f


def sphere_face_verts(level: int, dist: float = 2.7, fov_deg: float = 60.0) -> torch.Tensor:
    """(F, 3, 3) float32 face corners (x_ndc, y_ndc, z_view) of the sphere at ``dist`` in front."""
    v, f = ico_sphere(level)
    view = v + torch.tensor([0.0, 0.0, dist], dtype=v.dtype)
    s = 1.0 / math.tan(math.radians(fov_deg) / 2)
    ndc = torch.stack([view[:, 0] * s / view[:, 2], view[:, 1] * s / view[:, 2], view[:, 2]], 1)
    return ndc[f].to(torch.float32)


def time_call(fn, repeat: int):
    """(median, min) wall milliseconds after one warm-up call (compilation on the first ever call)."""
    fn()
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts) * 1e3, min(ts) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--levels", type=int, nargs="+", default=[4, 6])
    ap.add_argument("--backends", nargs="+", default=["numba", "torch"])
    args = ap.parse_args()
    warnings.filterwarnings("ignore", message="faces_per_pixel: .* lost their covering face")
    sigma = 1e-4
    # The rasterizer's defaults: clipped barycentrics exactly when blur_radius > 0 (as PyTorch3D).
    soft = dict(faces_per_pixel=8, blur_radius=math.log(1 / sigma - 1) * sigma, clip_barycentric_coords=True)
    # "strict": PyTorch3D's K-nearest rule (keep_covering=False), to show what keeping covering faces costs.
    settings = [("K=1", dict(faces_per_pixel=1)), ("K=8 soft", soft),
                ("K=8 strict", dict(soft, keep_covering=False))]
    # On a shared machine the median suffers from other processes; the minimum shows the kernel's own cost.
    print(f"torch threads: {torch.get_num_threads()}, numba threads: {numba.get_num_threads()}, "
          f"load average: {os.getloadavg()[0]:.1f}; times in ms as median / min of {args.repeat}")
    head = f"{'mesh':>14} {'size':>5} {'setting':>10} " + " ".join(f"{b:>15}" for b in args.backends)
    if len(args.backends) == 2:
        head += f" {args.backends[1] + '/' + args.backends[0] + ' (min)':>18}"
    print(head)
    for level in args.levels:
        fv = sphere_face_verts(level)
        first, num = torch.tensor([0]), torch.tensor([fv.shape[0]])
        for size in args.sizes:
            for name, kw in settings:
                ms = []
                for b in args.backends:
                    ms.append(time_call(lambda: rasterize_visibility(
                        fv, first, num, size, perspective_correct=True, backend=b, **kw), args.repeat))
                row = f"{'ico' + str(level) + ' F=' + str(fv.shape[0]):>14} {size:>5} {name:>10} "
                row += " ".join(f"{med:>7.1f} /{mn:>6.1f}" for med, mn in ms)
                if len(ms) == 2:
                    row += f" {ms[1][1] / ms[0][1]:>18.2f}"
                print(row, flush=True)


if __name__ == "__main__":
    main()
