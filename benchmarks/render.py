"""Time a full render of the textured cow (rasterize + texture + Phong + blend) and its backward.

Usage: ``python benchmarks/render.py [--runs 5] [--configs SoftPhong:1:256:8 ...] [--no-write]``

Scene (issue 4): the bundled Spot cow (5,856 faces, 1024^2 UV texture), seen by 1 or 8
``FoVPerspectiveCameras`` (fov 60, distance 2.7, azimuths spread around it), one ``PointLights``.
A configuration is ``shader:views:size:K``:

- ``SoftPhong``: ``SoftPhongShader`` with K faces per pixel, ``sigma = gamma = 1e-4``,
  ``blur_radius = log(1 / sigma - 1) * sigma`` (the soft-rasterizer setting of benchmarks/raster.py);
- ``HardPhong``: ``HardPhongShader``, blur 0.

Each configuration is timed twice in the same run: with the fused CPU kernels (the default) and through the
plain-torch path (``diffras.raster.fragments.fused_kernels(False)``: the same semantics, the reference), so
the ratio is meaningful even on a busy machine. "ns/frag" divides by P, the filled fragments (image, pixel,
slot) of the render; bwd = fwd+bwd minus fwd.

"fwd" renders with a vertex offset and the texture map requiring grad; "fwd+bwd" adds the backward of
``images.sum()`` to both. Median wall time of ``--runs`` runs after one warm-up. Each configuration runs in its
own subprocess, so "peak MiB" is its own peak RSS above the baseline measured after imports and loading the
cow, and "faults/call" its minor page faults per fused fwd+bwd call (memory taken fresh from the kernel, which
costs ~1-3 us a page on a virtual machine: ~3,000 a call cost the 1-view render ~9 ms before
``diffras._malloc``). The table is printed and written to the "Rendering" section of ``benchmarks/RESULTS.md``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SIGMA = 1e-4


def _rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def worker(shader: str, views: int, size: int, K: int, runs: int, path: str) -> dict:
    from _results import time_fwd_bwd
    import torch

    from diffras.cameras import FoVPerspectiveCameras, look_at_view_transform
    from diffras.data import load_cow
    from diffras.raster import MeshRasterizer, RasterSettings
    from diffras.raster.fragments import fused_kernels
    from diffras.render import MeshRenderer
    from diffras.shading import BlendParams, HardPhongShader, PointLights, SoftPhongShader, TexturesUV

    cow = load_cow()
    tex = cow.textures
    R, T = look_at_view_transform(2.7, 10.0, torch.linspace(0.0, 360.0, views + 1)[:-1])
    cams = FoVPerspectiveCameras(R=R, T=T, fov=60.0)
    lights = PointLights(location=((0.0, 1.0, -3.0),))
    if shader == "SoftPhong":
        settings = RasterSettings(size, faces_per_pixel=K, blur_radius=math.log(1.0 / SIGMA - 1.0) * SIGMA)
        sh = SoftPhongShader(cameras=cams, lights=lights, blend_params=BlendParams(sigma=SIGMA, gamma=SIGMA))
    else:
        settings = RasterSettings(size, faces_per_pixel=K)
        sh = HardPhongShader(cameras=cams, lights=lights)
    renderer = MeshRenderer(MeshRasterizer(cams, settings), sh)
    # The optimised texture: one leaf tensor reused by every call, as in a training loop (a per-call copy of the
    # 12 MiB map is not part of the render).
    maps0 = tex.maps_padded().clone()
    baseline = _rss_bytes()

    def fwd():
        offset = torch.zeros(cow.verts_packed().shape, requires_grad=True)
        maps = maps0.detach().requires_grad_(True)
        mesh = cow.offset_verts(offset)
        mesh.textures = TexturesUV(maps, tex.faces_uvs_padded(), tex.verts_uvs_padded())
        return renderer(mesh)

    def fwd_bwd():
        images = fwd()
        images.sum().backward()
        return images

    with fused_kernels(path == "fused"):
        timing = time_fwd_bwd(fwd, fwd_bwd, runs, baseline, fwd_no_grad=True)
        filled = renderer.rasterizer(cow.extend(views) if views > 1 else cow).num_filled
    covered = float((timing.pop("warmup")[..., 3] > 0).float().mean())
    return {
        **timing,
        "covered": covered,
        "filled": filled,
    }


def _run(shader: str, views: int, size: int, K: int, runs: int, path: str) -> dict:
    cmd = [sys.executable, __file__, "--worker", shader, str(views), str(size), str(K), str(runs), path]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        tail = (out.stderr.strip().splitlines() or ["?"])[-1]
        return {"error": tail[:80]}
    return json.loads(out.stdout.strip().splitlines()[-1])


TARGETS = ["SoftPhong:1:256:8", "SoftPhong:8:512:8", "SoftPhong:1:256:50", "HardPhong:8:512:1"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--configs", nargs="+", default=TARGETS, help="shader:views:size:K (default: issue 9's targets)")
    ap.add_argument("--no-torch", action="store_true", help="skip the plain-torch path column")
    ap.add_argument("--no-write", action="store_true", help="print only, leave RESULTS.md alone")
    ap.add_argument("--worker", nargs=6, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        shader, views, size, K, runs, path = args.worker
        print(json.dumps(worker(shader, int(views), int(size), int(K), int(runs), path)))
        return

    sys.path.insert(0, str(HERE))
    from _results import machine_description, markdown_table, update_section

    header = ["shader", "views", "size", "K", "filled P", "fwd ms", "fwd+bwd ms", "torch fwd+bwd ms", "speed-up",
              "fwd ns/frag", "bwd ns/frag", "peak MiB", "torch peak MiB", "faults/call", "covered px"]
    rows = []
    load_before = os.getloadavg()
    for config in args.configs:
        shader, views, size, K = config.split(":")
        views, size, K = int(views), int(size), int(K)
        r = _run(shader, views, size, K, args.runs, "fused")
        t = {"error": "skipped"} if args.no_torch else _run(shader, views, size, K, args.runs, "torch")
        if "error" in r:
            row = [shader, views, size, K, "", "error: " + r["error"]] + [""] * 9
        else:
            P = max(r["filled"], 1)
            tt = "error" not in t
            row = [shader, views, size, K, f"{r['filled']:,}", f"{r['fwd_ms']:.0f}", f"{r['fwdbwd_ms']:.0f}",
                   f"{t['fwdbwd_ms']:.0f}" if tt else t["error"],
                   f"{t['fwdbwd_ms'] / r['fwdbwd_ms']:.1f}x" if tt else "",
                   f"{r['fwd_ms'] * 1e6 / P:.0f}", f"{(r['fwdbwd_ms'] - r['fwd_ms']) * 1e6 / P:.0f}",
                   f"{r['peak_mib']:.0f}", f"{t['peak_mib']:.0f}" if tt else "", f"{r['faults']:,.0f}",
                   f"{r['covered']:.1%}"]
        rows.append(row)
        print(" | ".join(str(c) for c in row), flush=True)
    load_after = os.getloadavg()
    table = markdown_table(header, rows)
    print(table)
    print(f"load average (1, 5, 15 min) before {load_before}, after {load_after}")
    if not args.no_write:
        body = "\n\n".join([
            "`python benchmarks/render.py` — the textured Spot cow (5,856 faces, 1024^2 texture), full "
            "`MeshRenderer` (rasterize + mip-mapped texture + Phong + blend). SoftPhong: sigma = gamma = 1e-4, "
            "blur_radius = log(1/sigma - 1) * sigma; HardPhong: blur 0. fwd+bwd: backward of `images.sum()` to a "
            "vertex offset and the texture map. Each row is timed with the fused CPU kernels and, in the same run, "
            "through the plain-torch path (`fused_kernels(False)`, same semantics): the speed-up is the honest "
            "figure on a shared machine. ns/frag: per filled fragment P. faults/call: minor page faults of one "
            "fused fwd+bwd call (fresh memory from the kernel; see diffras/_malloc.py). Median of "
            f"{args.runs} runs after a warm-up; peak MiB = the configuration's own peak RSS above its baseline "
            "(one subprocess per row and path).",
            f"Machine: {machine_description()}. Load average (1 min) {load_before[0]:.1f} before and "
            f"{load_after[0]:.1f} after the run: a load far above the core count means these times are "
            "inflated by other processes sharing the CPU.",
            table,
        ])
        print(f"wrote {update_section('Rendering', body)}")


if __name__ == "__main__":
    main()
