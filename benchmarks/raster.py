"""Time the full mesh rasterizer (projection + visibility + differentiable fragments) and its backward.

Usage: ``python benchmarks/raster.py [--runs 5] [--sizes 256 512 1024] [--meshes ico3 ico4 ico5 ico6 dragon]
[--backends numba torch] [--quick]``

Scene (issue 3): a unit ico-sphere (levels 3-6) or the Stanford dragon (100k faces, scaled into the
unit ball) seen from distance 2.7 by a 60-degree ``FoVPerspectiveCameras``; ``rasterize_meshes`` with
K=1 hard (blur 0) or K=8 soft (``sigma = 1e-4``, ``blur_radius = log(1 / sigma - 1) * sigma``; the default
``keep_covering=True``) and, by default, K=8 soft with PyTorch3D's strict rule (``keep_covering=False``):
the column "keep/strict" is the soft row's time over the strict row's, both timed in the same run (the
covering faces come from the visibility pass itself, so the two should be within noise).
The numba backend runs with the fused fragment kernel (``fragments="fused"``), the torch backend with plain
torch fragments (``fragments="torch"``): the CPU path against the device-agnostic one.
"fwd" is ``rasterize_meshes`` with vertices requiring grad; "fwd+bwd" adds the backward of
``zbuf.sum() + bary_coords.sum() + dists.sum()``. Median wall time of ``--runs`` runs after one warm-up.
Each (mesh, size, setting, backend) runs in its own subprocess so that "peak MiB" is that
configuration's own peak RSS above the interpreter's baseline (measured after imports and mesh set-up).
The table is printed and written to the "Rasterizer" section of ``benchmarks/RESULTS.md``.
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
DRAGON = Path(os.environ.get("DIFFRAS_SHARED_DATA", HERE.parents[1] / "shared" / "data")) / "meshes" / "dragon" / "dragon_100k.ply"
SIGMA = 1e-4
SOFT_BLUR = math.log(1.0 / SIGMA - 1.0) * SIGMA
# The fragment path each visibility backend is timed with (see the module docstring).
FRAGMENTS = {"numba": "fused", "torch": "torch"}
SETTING_NAMES = {"hard": "K=1 hard", "soft": "K=8 soft", "soft-strict": "K=8 soft strict"}
# PyTorch3D on this machine's kind (issue 3): ico-sphere level 4, 256^2, K=8 soft; level 6, 256^2 forward.
P3D_L4_FWD_S, P3D_L4_FWDBWD_S, P3D_L6_FWD_S = 1.5, 8.8, 27.0


def _rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _load_mesh(name: str):
    import torch

    from diffras.ops.ico_sphere import ico_sphere

    if name.startswith("ico"):
        m = ico_sphere(int(name[3:]))
        return m.verts_packed(), m.faces_packed()
    import trimesh

    tm = trimesh.load(str(DRAGON), process=False)
    v = torch.tensor(tm.vertices, dtype=torch.float32)
    lo, hi = v.min(0).values, v.max(0).values
    v = v - (lo + hi) / 2
    v = v / v.norm(dim=1).max()
    return v, torch.tensor(tm.faces, dtype=torch.int64)


def worker(mesh: str, size: int, mode: str, backend: str, runs: int) -> dict:
    from diffras.cameras import FoVPerspectiveCameras, look_at_view_transform
    from diffras.raster import RasterSettings, rasterize_meshes
    from diffras.structures import Meshes

    from _results import time_fwd_bwd

    verts, faces = _load_mesh(mesh)
    R, T = look_at_view_transform(2.7, 0.0, 0.0)
    cam = FoVPerspectiveCameras(R=R, T=T, fov=60.0)
    K, blur = (1, 0.0) if mode == "hard" else (8, SOFT_BLUR)
    settings = RasterSettings(size, faces_per_pixel=K, blur_radius=blur, backend=backend,
                              keep_covering=mode != "soft-strict", fragments=FRAGMENTS.get(backend, "auto"))
    baseline = _rss_bytes()

    def fwd():
        v = verts.clone().requires_grad_(True)
        return v, rasterize_meshes(Meshes([v], [faces]), cam, settings)

    def fwd_bwd():
        v, fr = fwd()
        (fr.zbuf.sum() + fr.bary_coords.sum() + fr.dists.sum()).backward()
        return fr

    timing = time_fwd_bwd(fwd, fwd_bwd, runs, baseline)
    filled = int((timing.pop("warmup").pix_to_face >= 0).sum())
    return {
        **timing,
        "faces": int(faces.shape[0]),
        "fragments": filled,
    }


def _run(mesh, size, mode, backend, runs):
    cmd = [sys.executable, __file__, "--worker", mesh, str(size), mode, backend, str(runs)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        tail = (out.stderr.strip().splitlines() or ["?"])[-1]
        return {"error": tail[:80]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    ap.add_argument("--meshes", nargs="+", default=["ico3", "ico4", "ico5", "ico6", "dragon"])
    ap.add_argument("--modes", nargs="+", default=["hard", "soft", "soft-strict"], choices=sorted(SETTING_NAMES))
    ap.add_argument("--backends", nargs="+", default=["numba", "torch"])
    ap.add_argument("--quick", action="store_true", help="ico4 and ico6 at 256 and 512, 3 runs")
    ap.add_argument("--slow-max-size", type=int, default=256,
                    help="run backends other than the first only up to this image size (the torch "
                         "visibility backend takes minutes per call on large soft settings)")
    ap.add_argument("--slow-meshes", nargs="+", default=["ico3", "ico4"],
                    help="meshes on which backends other than the first run")
    ap.add_argument("--no-write", action="store_true", help="print only, leave RESULTS.md alone")
    ap.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        mesh, size, mode, backend, runs = args.worker
        print(json.dumps(worker(mesh, int(size), mode, backend, int(runs))))
        return
    if args.quick:
        args.meshes, args.sizes, args.runs = ["ico4", "ico6"], [256, 512], 3
    if "dragon" in args.meshes and not DRAGON.exists():
        print(f"skipping dragon: {DRAGON} not found")
        args.meshes = [m for m in args.meshes if m != "dragon"]

    sys.path.insert(0, str(HERE))
    from _results import machine_description, markdown_table, update_section

    header = ["mesh", "faces", "size", "setting", "fragments"]
    for b in args.backends:
        header += [f"{b} fwd ms", f"{b} fwd+bwd ms", f"{b} peak MiB"]
    if len(args.backends) > 1:
        header += [f"{args.backends[1]}/{args.backends[0]} fwd+bwd"]
    keep_vs_strict = "soft" in args.modes and "soft-strict" in args.modes
    if keep_vs_strict:
        header += [f"keep/strict {args.backends[0]} fwd", f"keep/strict {args.backends[0]} fwd+bwd"]
    rows, results = [], {}
    for mesh in args.meshes:
        for size in args.sizes:
            for mode in args.modes:
                res = {}
                for i, b in enumerate(args.backends):
                    if i and (size > args.slow_max_size or mesh not in args.slow_meshes):
                        res[b] = {"skipped": True}
                    else:
                        res[b] = _run(mesh, size, mode, b, args.runs)
                results[(mesh, size, mode)] = res
                first = next((r for r in res.values() if "fwd_ms" in r), {})
                row = [mesh, first.get("faces", "?"), f"{size}^2", SETTING_NAMES[mode], first.get("fragments", "?")]
                for b in args.backends:
                    r = res[b]
                    if "skipped" in r:
                        row += ["-", "-", "-"]
                    elif "error" in r:
                        row += ["n/a", "n/a", "n/a"]
                    else:
                        row += [f"{r['fwd_ms']:.1f}", f"{r['fwdbwd_ms']:.1f}", f"{r['peak_mib']:.0f}"]
                if len(args.backends) > 1:
                    a, b = res[args.backends[0]], res[args.backends[1]]
                    row += [f"{b['fwdbwd_ms'] / a['fwdbwd_ms']:.1f}" if "fwd_ms" in a and "fwd_ms" in b else "-"]
                if keep_vs_strict:
                    row += ["-", "-"]  # filled on the soft row once its strict row has run
                rows.append(row)
                print(" | ".join(str(c) for c in row), flush=True)
            if keep_vs_strict:
                keep = results[(mesh, size, "soft")][args.backends[0]]
                strict = results[(mesh, size, "soft-strict")][args.backends[0]]
                if "fwd_ms" in keep and "fwd_ms" in strict:
                    soft_row = rows[-len(args.modes) + args.modes.index("soft")]
                    soft_row[-2:] = [f"{keep['fwd_ms'] / strict['fwd_ms']:.2f}",
                                     f"{keep['fwdbwd_ms'] / strict['fwdbwd_ms']:.2f}"]
                    print(f"keep/strict ({mesh}, {size}^2): fwd {soft_row[-2]}, fwd+bwd {soft_row[-1]}", flush=True)
    errors = {f"{k} {b}": r["error"] for k, res in results.items() for b, r in res.items() if "error" in r}

    lines = [
        f"Machine: {machine_description()}. Load average when written: "
        f"{', '.join(f'{x:.1f}' for x in os.getloadavg())} (other jobs share the cores; medians include that).",
        "",
        f"`python benchmarks/raster.py --runs {args.runs}`: `rasterize_meshes` (projection, visibility, "
        "differentiable fragments) on a unit ico-sphere or the dragon (scaled into the unit ball) at distance 2.7, "
        "fov 60; median of the runs after a warm-up; peak MiB = peak RSS above the baseline of a fresh "
        "subprocess per row. K=8 soft: sigma = 1e-4, blur_radius = log(1/sigma - 1) * sigma.",
        "",
        markdown_table(header, rows),
        "",
        f"Backends after the first ({', '.join(args.backends[1:]) or 'none'}) ran only on "
        f"{', '.join(args.slow_meshes)} up to {args.slow_max_size}^2 ('-' elsewhere). The numba backend uses the "
        "fused numba fragment kernel (fragments='fused'); the torch backend uses torch visibility and plain torch "
        "autograd for the fragments (fragments='torch', the device-agnostic path). Soft rows keep each pixel's "
        "covering face (keep_covering=True, the default) unless marked strict; 'keep/strict' divides the soft "
        "row's times by the strict row's (same run; 1.00 = no cost for keeping the covering faces).",
    ]
    main_b = args.backends[0]
    l4 = results.get(("ico4", 256, "soft"), {}).get(main_b, {})
    l6 = results.get(("ico6", 256, "soft"), {}).get(main_b, {})
    l6h = results.get(("ico6", 256, "hard"), {}).get(main_b, {})
    lines += ["", f"Against PyTorch3D's CPU rasterizer (numbers from issue 3, same scene), {main_b} backend:"]
    if "fwd_ms" in l4:
        lines.append(f"- level 4, 256^2, K=8 soft: forward {P3D_L4_FWD_S} s vs {l4['fwd_ms']:.1f} ms "
                     f"({1e3 * P3D_L4_FWD_S / l4['fwd_ms']:.0f}x); forward+backward {P3D_L4_FWDBWD_S} s vs "
                     f"{l4['fwdbwd_ms']:.1f} ms ({1e3 * P3D_L4_FWDBWD_S / l4['fwdbwd_ms']:.0f}x).")
    for name, r in (("K=8 soft", l6), ("K=1 hard", l6h)):
        if "fwd_ms" in r:
            lines.append(f"- level 6, 256^2, {name}: forward {P3D_L6_FWD_S} s vs {r['fwd_ms']:.1f} ms "
                         f"({1e3 * P3D_L6_FWD_S / r['fwd_ms']:.0f}x).")
    t6h = results.get(("ico6", 512, "hard"), {}).get(main_b, {})
    t6s = results.get(("ico6", 512, "soft"), {}).get(main_b, {})
    if "fwd_ms" in t6h and "fwd_ms" in t6s:
        lines += ["", "Targets (level 6, 512^2): K=1 fwd <= 30 ms, fwd+bwd <= 80 ms; K=8 soft fwd <= 100 ms, "
                  f"fwd+bwd <= 300 ms. Measured: K=1 {t6h['fwd_ms']:.1f} / {t6h['fwdbwd_ms']:.1f} ms; "
                  f"K=8 soft {t6s['fwd_ms']:.1f} / {t6s['fwdbwd_ms']:.1f} ms."]
    if errors:
        lines += ["", "Rows marked n/a failed: " + "; ".join(f"{k}: {v}" for k, v in errors.items())]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        print("wrote", update_section("Rasterizer", text))


if __name__ == "__main__":
    main()
