"""Time one render alone and next to N CPU-bound processes, under each thread setting, in one run.

Usage: ``python benchmarks/contention.py [--runs 15] [--busy 1 2 3] [--settings ...] [--no-write]``

Scene (issue 9): a level-6 ico-sphere (81,920 faces) at 512^2, K=1 hard, ``rasterize_meshes`` forward with
vertices requiring grad, as the "fwd" column of ``benchmarks/raster.py``. Each cell runs in a fresh
subprocess (the OpenMP runtimes read their settings when they load) next to N busy Python processes
(each a pure spin loop, started just before, bounded in time and killed right after the cell).
Median of ``--runs`` calls after three warm-up calls.

Settings (rows):

- ``libgomp-default``: ``GOMP_SPINCOUNT=300000``, libgomp's own default, i.e. diffras before its policy
  (diffras keeps a user's setting, so this reproduces the old behaviour);
- ``diffras-first``: diffras's policy (``diffras._threads``) with ``import diffras`` before ``import torch``
  (as the ``diffras`` command does): it governs both pools;
- ``torch-first``: the policy with ``import torch`` first: it governs only Numba's pool;
- ``passive``: ``OMP_WAIT_POLICY=PASSIVE`` set in the shell, for reference.

The slowdown columns are each cell's time over the same setting's time alone. The table is printed and
written to the "Speed under contention" section of ``benchmarks/RESULTS.md``, with the load average
before the run: on a machine already shared with other work, "alone" is not idle, and only the ratios
measured side by side in one run are meaningful.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

SETTINGS = {
    "libgomp-default": ({"GOMP_SPINCOUNT": "300000"}, "torch"),
    "diffras-first": ({}, "diffras"),
    "torch-first": ({}, "torch"),
    "passive": ({"OMP_WAIT_POLICY": "PASSIVE"}, "torch"),
}
_POLICY_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")

WORKER = r"""
import json, sys, time
if sys.argv[2] == "diffras":
    import diffras  # noqa: F401  (before torch: the thread policy then governs torch's pool too)
import torch
from diffras.cameras import FoVPerspectiveCameras, look_at_view_transform
from diffras.ops.ico_sphere import ico_sphere
from diffras.raster import RasterSettings, rasterize_meshes
from diffras.structures import Meshes

mesh = ico_sphere(6)
verts, faces = mesh.verts_packed(), mesh.faces_packed()
R, T = look_at_view_transform(2.7, 0.0, 0.0)
cam = FoVPerspectiveCameras(R=R, T=T, fov=60.0)
settings = RasterSettings(512, faces_per_pixel=1, blur_radius=0.0)

def fwd():
    v = verts.clone().requires_grad_(True)
    return rasterize_meshes(Meshes([v], [faces]), cam, settings)

for _ in range(3):
    fwd()
times = []
for _ in range(int(sys.argv[1])):
    t0 = time.perf_counter()
    fwd()
    times.append(time.perf_counter() - t0)
print(json.dumps(times))
"""

BUSY = "import time\nend = time.time() + {seconds}\nwhile time.time() < end:\n    pass\n"


def _cell(setting: str, busy: int, runs: int, timeout: float) -> float:
    """Median seconds of one render with ``busy`` spinning processes beside it."""
    extra, first = SETTINGS[setting]
    env = {k: v for k, v in os.environ.items() if k not in _POLICY_VARS}
    env.update(extra)
    hogs = [subprocess.Popen([sys.executable, "-c", BUSY.format(seconds=timeout)]) for _ in range(busy)]
    try:
        time.sleep(0.3)  # let the busy processes get going
        out = subprocess.run([sys.executable, "-c", WORKER, str(runs), first], env=env, capture_output=True,
                             text=True, timeout=timeout)
    finally:
        for h in hogs:
            h.kill()
        for h in hogs:
            h.wait()
    if out.returncode != 0:
        raise RuntimeError(f"{setting}, {busy} busy: {out.stderr.strip().splitlines()[-1:]}")
    return statistics.median(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--busy", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds; bounds each cell and its busy processes")
    ap.add_argument("--no-write", action="store_true", help="print only, leave RESULTS.md alone")
    args = ap.parse_args()
    sys.path.insert(0, str(HERE))
    from _results import machine_description, markdown_table, update_section

    load_before = os.getloadavg()
    counts = [0] + sorted(set(args.busy))
    # Interleave the settings within each count so that drifting background load hits them alike.
    ms = {s: {} for s in args.settings}
    for n in counts:
        for s in args.settings:
            ms[s][n] = 1e3 * _cell(s, n, args.runs, args.timeout)
            print(f"{s:16s} busy={n}: {ms[s][n]:8.1f} ms", flush=True)
    load_after = os.getloadavg()
    header = ["setting", "alone ms"] + [f"{n} busy: ms (x alone)" for n in counts[1:]]
    rows = [[s, f"{ms[s][0]:.1f}"] + [f"{ms[s][n]:.1f} ({ms[s][n] / ms[s][0]:.1f}x)" for n in counts[1:]]
            for s in args.settings]
    table = markdown_table(header, rows)
    note = (f"Level-6 ico-sphere, 512^2, K=1, `rasterize_meshes` forward; median of {args.runs} calls. "
            f"Load average (1, 5, 15 min) before: {', '.join(f'{x:.1f}' for x in load_before)}; after: "
            f"{', '.join(f'{x:.1f}' for x in load_after)} on {os.cpu_count()} cores. "
            "Settings: see `benchmarks/contention.py`. Command: `python benchmarks/contention.py`.")
    print(table)
    print(note)
    if not args.no_write:
        path = update_section("Speed under contention", f"{machine_description()}\n\n{note}\n\n{table}")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
