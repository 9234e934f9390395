"""diffras.nv (nvdiffrast's API) at 512 x 512, forward + backward of the full primitive chain:
rasterize -> interpolate (with screen derivatives) -> texture (linear-mipmap-linear) -> antialias,
loss = mean of the image, gradients to the vertex positions, the texture and the uv coordinates.

- earth: the earth sample's mesh (examples/nvdiffrast/util.uv_sphere, 4k triangles) with a 512 x 1024
  texture; target <= 60 ms;
- dragon: the 100k-face dragon (shared/data/meshes/dragon/dragon_100k.ply) with spherical uv and the
  same texture; target <= 150 ms.

    nice .venv/bin/python benchmarks/nv.py [--runs 5] [--size 512]

Prints a table (with the per-stage split of one forward) and rewrites the "diffras.nv" section of
benchmarks/RESULTS.md, with the load average (numbers from a shared machine are indicative only).
"""
from __future__ import annotations

import argparse
import math
import os
import resource
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


def bench(name, verts, tri, uv, tex, size, runs):
    glctx = dr.RasterizeCudaContext()
    mvp = torch.from_numpy(np.matmul(util.projection(x=0.4, n=1.0, f=200.0),
                                     np.matmul(util.translate(0, 0, -3.5), util.rotate_x(0.4) @ util.rotate_y(0.6))))
    topo = dr.antialias_construct_topology_hash(tri)
    v = verts.clone().requires_grad_(True)
    t = tex.clone().requires_grad_(True)
    stages = {}

    def fwd(timed=False):
        marks = [time.perf_counter()]
        pos = (torch.cat([v, torch.ones(len(v), 1)], 1) @ mvp.T)[None]
        rast, db = dr.rasterize(glctx, pos, tri, (size, size))
        marks.append(time.perf_counter())
        texc, texd = dr.interpolate(uv[None], rast, tri, rast_db=db, diff_attrs="all")
        marks.append(time.perf_counter())
        col = dr.texture(t[None], texc, texd, filter_mode="linear-mipmap-linear")
        marks.append(time.perf_counter())
        col = dr.antialias(col, rast, pos, tri, topology_hash=topo)
        marks.append(time.perf_counter())
        if timed:
            for k, a, b in zip(("rasterize", "interpolate", "texture", "antialias"), marks, marks[1:]):
                stages[k] = 1e3 * (b - a)
        return col, rast

    def fwd_bwd():
        v.grad = t.grad = None
        col, rast = fwd()
        col.mean().backward()
        return int((rast[..., 3] > 0).sum())

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    r = time_fwd_bwd(lambda: fwd(), fwd_bwd, runs, base)
    with torch.no_grad():
        fwd(timed=True)
    split = ", ".join(f"{k} {v:.0f}" for k, v in stages.items())
    return r, split


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--size", type=int, default=512)
    args = p.parse_args()
    tex = torch.from_numpy(util.earth_texture(512, 1024))
    load0 = os.getloadavg()
    rows = []
    for name, scene, target in (("earth", earth_scene, 60), ("dragon 100k", dragon_scene, 150)):
        verts, tri, uv = scene()
        r, split = bench(name, verts, tri, uv, tex, args.size, args.runs)
        rows.append((name, f"{len(tri)}", f"{r['warmup']}", f"{r['fwd_ms']:.0f}", f"{r['fwdbwd_ms']:.0f}", f"<= {target}",
                     "yes" if r["fwdbwd_ms"] <= target else "NO", split))
        print(" | ".join(rows[-1]), flush=True)
    load1 = os.getloadavg()
    table = markdown_table(("scene", "triangles", "covered px", "fwd ms", "fwd+bwd ms", "target", "met", "fwd split ms"), rows)
    print(table)
    body = (f"`nice .venv/bin/python benchmarks/nv.py --runs {args.runs} --size {args.size}` on {machine_description()}; "
            f"load average {load0[0]:.1f} before, {load1[0]:.1f} after (shared machine: indicative only). "
            f"Chain: rasterize, interpolate (+ derivatives), texture (linear-mipmap-linear, 512 x 1024 map), "
            f"antialias; loss = image mean; gradients to positions and texture.\n\n{table}\n")
    update_section("diffras.nv", body)


if __name__ == "__main__":
    main()
