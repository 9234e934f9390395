"""Peak memory of the ``diffras`` commands, measured beside the estimate ``diffras.cli.memory`` refuses on.

Each row runs one command in a fresh process (a tiny number of steps: the peak is reached in the first
step) and reads its peak resident memory. The estimate must stay above the measurement (ratio > 1) so that
a refusal errs on the side of the machine; ratios far above 1 would refuse runs that fit.

    .venv/bin/python benchmarks/cli_memory.py          # prints the table and rewrites its RESULTS.md section
"""
from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import machine_description, markdown_table, update_section  # noqa: E402

from diffras.cli import memory  # noqa: E402
from diffras.data import cow_path  # noqa: E402
from diffras.workflows import FitConfig, PoseConfig, TextureConfig  # noqa: E402


def peak_rss(args) -> int:
    """Run ``diffras ARGS`` in a child process; return its peak RSS in bytes."""
    code = ("import resource, sys; from diffras.cli import main; rc = main(sys.argv[1:]); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr)
    return int(proc.stdout.strip().splitlines()[-1]) * 1024


def main() -> None:
    load = os.getloadavg()
    cow = cow_path()
    fit, pose, tex = FitConfig(), PoseConfig(), TextureConfig()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        cases = []
        for size, s in ((256, 3), (512, 3), (1024, 2)):
            side = size * s
            cases.append((f"render --size {size} --supersample {s}",
                          ["render", cow, "--size", size, "--supersample", s, "--views", 1],
                          memory.render_view_bytes(side, side, 1, 5856)))
        for size, level in ((128, 4), (128, 6), (256, 4)):
            cases.append((f"fit --size {size} --level {level}",
                          ["fit", "--iters", 1, "--size", size, "--level", level],
                          memory.fit_bytes(size, fit.views + fit.holdout, fit.views_per_iter, fit.faces_per_pixel,
                                           20 * 4**level)))
        cases.append((f"pose --size {pose.image_size}", ["pose", cow, "--iters", 1],
                      memory.fit_bytes(pose.image_size, 1, 1, pose.faces_per_pixel, 0)))
        for tsize in (512, 2048):
            cases.append((f"texture --texture-size {tsize} --size 64",
                          ["texture", "--iters", 1, "--size", 64, "--texture-size", tsize],
                          memory.texture_bytes(tsize, 64, tex.views + tex.holdout, tex.views_per_iter)))
        for name, args, estimate in cases:
            measured = peak_rss([*args, "--quiet", "--out", out / name.split()[0]])
            rows.append((name, f"{measured / 2**20:.0f}", f"{estimate / 2**20:.0f}", f"{estimate / measured:.2f}"))
            print(rows[-1], flush=True)
    table = markdown_table(("command", "measured peak RSS (MiB)", "estimate (MiB)", "estimate / measured"), rows)
    body = (f"`benchmarks/cli_memory.py`: {machine_description()}; load average {load[0]:.1f} at start "
            "(shared machine).\n\n" + table)
    print(table)
    update_section("CLI memory estimates", body)


if __name__ == "__main__":
    main()
