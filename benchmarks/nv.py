"""diffras.nv (nvdiffrast's API) at 512 x 512, forward + backward of the full primitive chain:
rasterize -> interpolate (with screen derivatives) -> texture (linear-mipmap-linear) -> antialias,
loss = mean of the image, gradients to the vertex positions, the texture and the uv coordinates.

- earth: the earth sample's mesh (examples/nvdiffrast/util.uv_sphere, 4k triangles) with a 512 x 1024
  texture; target <= 60 ms;
- dragon: the 100k-face dragon (shared/data/meshes/dragon/dragon_100k.ply) with spherical uv and the
  same texture; target <= 150 ms.

    nice .venv/bin/python benchmarks/nv.py [--runs 5] [--size 512]

Prints a table (with the per-op split of the forward and of the backward, each op timed alone) and rewrites the "diffras.nv" section of
benchmarks/RESULTS.md, with the load average (numbers from a shared machine are indicative only).
"""
from __future__ import annotations

import argparse
import math
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "examples" / "nvdiffrast"))
from _results import machine_description, markdown_table, time_fwd_bwd, update_section  # noqa: E402

import util  # noqa: E402  (the samples' helpers: matrices, procedural earth)

import diffras.nv as dr  # noqa: E402
from diffras.raster.fragments import fused_kernels  # noqa: E402

SHARED = Path(os.environ.get("DIFFRAS_SHARED_DATA", ROOT.parent / "shared" / "data"))


def earth_scene():
    pos_idx, pos, uv_idx, uv = util.uv_sphere()
    # interpolate needs one index buffer: give every corner its own uv vertex (uv_idx) and positions by uv vertex
    tri = torch.from_numpy(uv_idx.astype(np.int64)).to(torch.int32)
    vpos = np.zeros((uv.shape[0], 3), np.float32)
    vpos[uv_idx.reshape(-1)] = pos[pos_idx.reshape(-1)]
    return torch.from_numpy(vpos), tri, torch.from_numpy(uv)


def dragon_scene():
    from diffras.io import load_mesh

    mesh = load_mesh(SHARED / "meshes" / "dragon" / "dragon_100k.ply")
    v = mesh.verts_packed().float()
    v = (v - v.mean(0)) / (v - v.mean(0)).norm(dim=1).max()
    d = v / v.norm(dim=1, keepdim=True).clamp_min(1e-6)
    uv = torch.stack([torch.atan2(d[:, 2], d[:, 0]) / (2 * math.pi) + 0.5, torch.asin(d[:, 1].clamp(-1, 1)) / math.pi + 0.5], 1)
    return v, mesh.faces_packed().to(torch.int32), uv


def cpu_one_thread(fn, runs):
    """Median process CPU time (ms) of ``fn()`` with one torch and one Numba thread: the work itself, much
    less sensitive than wall time to other processes on a shared machine (it still counts cache and
    memory-bandwidth contention)."""
    import numba

    nt, nn = torch.get_num_threads(), numba.get_num_threads()
    torch.set_num_threads(1)
    numba.set_num_threads(1)
    try:
        fn()
        ts = []
        for _ in range(max(1, runs)):
            t0 = time.process_time()
            fn()
            ts.append(1e3 * (time.process_time() - t0))
    finally:
        torch.set_num_threads(nt)
        numba.set_num_threads(nn)
    return statistics.median(ts)


def bench(name, verts, tri, uv, tex, size, runs):
    glctx = dr.RasterizeCudaContext()
    mvp = torch.from_numpy(np.matmul(util.projection(x=0.4, n=1.0, f=200.0),
                                     np.matmul(util.translate(0, 0, -3.5), util.rotate_x(0.4) @ util.rotate_y(0.6))))
    topo = dr.antialias_construct_topology_hash(tri)
    v = verts.clone().requires_grad_(True)
    t = tex.clone().requires_grad_(True)

    def fwd():
        pos = (torch.cat([v, torch.ones(len(v), 1)], 1) @ mvp.T)[None]
        rast, db = dr.rasterize(glctx, pos, tri, (size, size))
        texc, texd = dr.interpolate(uv[None], rast, tri, rast_db=db, diff_attrs="all")
        col = dr.texture(t[None], texc, texd, filter_mode="linear-mipmap-linear")
        return dr.antialias(col, rast, pos, tri, topology_hash=topo), rast

    def fwd_bwd():
        v.grad = t.grad = None
        col, rast = fwd()
        col.mean().backward()
        return int((rast[..., 3] > 0).sum())

    def split():
        """Per-op forward and backward times (ms) of one pass: each op runs on detached leaf inputs, and
        the backward runs op by op in reverse, fed the gradients the later ops produced."""
        ms = lambda a, b: 1e3 * (b - a)  # noqa: E731
        leaf = lambda x: x.detach().requires_grad_(True)  # noqa: E731
        f, b = {}, {}
        t.grad = None
        c0 = time.perf_counter()
        pos = (torch.cat([v.detach(), torch.ones(len(v), 1)], 1) @ mvp.T)[None].requires_grad_(True)
        rast, db = dr.rasterize(glctx, pos, tri, (size, size))
        c1 = time.perf_counter()
        r_l, db_l = leaf(rast), leaf(db)
        texc, texd = dr.interpolate(uv[None], r_l, tri, rast_db=db_l, diff_attrs="all")
        c2 = time.perf_counter()
        tc_l, td_l = leaf(texc), leaf(texd)
        col = dr.texture(t[None], tc_l, td_l, filter_mode="linear-mipmap-linear")
        c3 = time.perf_counter()
        col_l, pos_l = leaf(col), leaf(pos)
        out = dr.antialias(col_l, rast.detach(), pos_l, tri, topology_hash=topo)
        c4 = time.perf_counter()
        f.update(rasterize=ms(c0, c1), interpolate=ms(c1, c2), texture=ms(c2, c3), antialias=ms(c3, c4))
        g = torch.full_like(out, 1.0 / out.numel())
        d0 = time.perf_counter()
        out.backward(g)
        d1 = time.perf_counter()
        col.backward(col_l.grad)
        d2 = time.perf_counter()
        torch.autograd.backward([texc, texd], [tc_l.grad, td_l.grad])
        d3 = time.perf_counter()
        torch.autograd.backward([rast, db, pos], [r_l.grad, db_l.grad, pos_l.grad])
        d4 = time.perf_counter()
        b.update(rasterize=ms(d3, d4), interpolate=ms(d2, d3), texture=ms(d1, d2), antialias=ms(d0, d1))
        return f, b

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    r = time_fwd_bwd(fwd, fwd_bwd, runs, base)
    splits = [split() for _ in range(max(1, runs))]
    r["cpu1_ms"] = cpu_one_thread(fwd_bwd, runs)
    med = lambda d: {k: statistics.median(s[d][k] for s in splits) for k in splits[0][d]}  # noqa: E731
    fs, bs = med(0), med(1)
    return r, ", ".join(f"{k} {x:.0f}" for k, x in fs.items()), ", ".join(f"{k} {x:.0f}" for k, x in bs.items())


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--scenes", default="earth,dragon", help="comma-separated subset of earth,dragon")
    p.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = p.parse_args()
    tex = torch.from_numpy(util.earth_texture(512, 1024))
    load0 = os.getloadavg()
    rows = []
    for name, scene, target in (("earth", earth_scene, 60), ("dragon 100k", dragon_scene, 150)):
        if name.split()[0] not in args.scenes.split(","):
            continue
        verts, tri, uv = scene()
        # The plain-torch path (what other devices run; this chain before the fused kernels) in the same run.
        with fused_kernels(False):
            rt, tfs, tbs = bench(name, verts, tri, uv, tex, args.size, args.runs)
        r, fsplit, bsplit = bench(name, verts, tri, uv, tex, args.size, args.runs)
        for label, x, fs, bs, ratio in ((name, r, fsplit, bsplit, rt["fwdbwd_ms"] / r["fwdbwd_ms"]),
                                        (f"{name}, torch path", rt, tfs, tbs, None)):
            rows.append((label, f"{len(tri)}", f"{x['warmup']}", f"{x['fwd_ms']:.0f}", f"{x['fwdbwd_ms']:.0f}",
                         f"<= {target}" if ratio else "", ("yes" if x["fwdbwd_ms"] <= target else "NO") if ratio else "",
                         f"{x['cpu1_ms']:.0f}", f"{ratio:.1f}x" if ratio else "", fs, bs))
            print(" | ".join(rows[-1]), flush=True)
    load1 = os.getloadavg()
    table = markdown_table(("scene", "triangles", "covered px", "fwd ms", "fwd+bwd ms", "target", "met",
                           "fwd+bwd 1-thread CPU ms", "fused vs torch path", "fwd split ms", "bwd split ms"), rows)
    print(table)
    body = (f"`nice .venv/bin/python benchmarks/nv.py --runs {args.runs} --size {args.size}` on {machine_description()}; "
            f"load average {load0[0]:.1f} before, {load1[0]:.1f} after (shared machine: indicative only). "
            f"Chain: rasterize, interpolate (+ derivatives), texture (linear-mipmap-linear, 512 x 1024 map), "
            f"antialias; loss = image mean; gradients to positions and texture. Wall-clock medians; the splits time "
            f"each op alone (forward, then backward op by op in reverse); the 1-thread CPU column is the process CPU "
            f"time of one fwd+bwd with one torch and one Numba thread (robust to other load); 'torch path' rows run "
            f"`fused_kernels(False)`, the plain-torch path other devices use. For reference, before the fused "
            f"kernels a quiet machine measured fwd+bwd earth 181 ms, dragon 251 ms.\n\n{table}\n")
    if not args.no_write:
        update_section("diffras.nv", body)


if __name__ == "__main__":
    main()
