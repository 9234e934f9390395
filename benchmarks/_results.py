"""Shared by the benchmark scripts: the machine description and section-wise updates of RESULTS.md.

Each script owns one ``## Title`` section of RESULTS.md and rewrites only that section, so scripts can be
re-run independently without clobbering each other's numbers.
"""
from __future__ import annotations

import os
import platform
import re
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def machine_description() -> str:
    import numba
    import torch

    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{cpu}; {os.cpu_count()} logical cores; torch {torch.__version__} "
            f"({torch.get_num_threads()} threads); numba {numba.__version__}; Python {platform.python_version()}")


def update_section(title: str, body: str) -> Path:
    """Replace (or append) the ``## title`` section of RESULTS.md with ``body``."""
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n\nWritten by the scripts in `benchmarks/`; each owns one section.\n"
    section = f"## {title}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1).rstrip() + "\n"
    else:
        text = text.rstrip() + "\n\n" + section
    RESULTS.write_text(text)
    return RESULTS


def markdown_table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def time_fwd_bwd(fwd, fwd_bwd, runs: int, baseline_bytes: int, *, fwd_no_grad: bool = False) -> dict:
    """Median wall time of ``fwd()`` and ``fwd_bwd()`` over ``runs`` after one warm-up call (numba cache
    load, allocator growth), and this process's peak RSS above ``baseline_bytes``.

    Returns ``{"fwd_ms", "fwdbwd_ms", "peak_mib", "faults", "warmup"}``: ``faults`` the minor page faults per
    ``fwd_bwd()`` call (memory a call takes fresh from the kernel, ~1-3 us a page on a virtual machine),
    ``warmup`` the warm-up's result (for counting fragments or covered pixels)."""
    import resource
    import statistics
    import time
    from contextlib import nullcontext

    import torch

    warmup = fwd_bwd()
    t_fwd, t_all, faults = [], [], 0
    for _ in range(runs):
        t0 = time.perf_counter()
        with torch.no_grad() if fwd_no_grad else nullcontext():
            fwd()
        t_fwd.append(time.perf_counter() - t0)
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t0 = time.perf_counter()
        fwd_bwd()
        t_all.append(time.perf_counter() - t0)
        faults += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "fwd_ms": 1e3 * statistics.median(t_fwd),
        "fwdbwd_ms": 1e3 * statistics.median(t_all),
        "peak_mib": (peak - baseline_bytes) / 2**20,
        "faults": faults / max(runs, 1),
        "warmup": warmup,
    }
