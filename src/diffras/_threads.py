"""Thread settings: how diffras's two thread pools (torch's OpenMP intra-op pool and Numba's) wait.

Why: both pools are OpenMP teams (on Linux, GNU libgomp: torch ships its own copy, Numba's ``omp`` layer
loads the system's). After each parallel region libgomp's workers spin for up to 300,000 iterations
(milliseconds) before they sleep. On a machine shared with other busy processes those spinning threads
take the cores from the threads doing the work (the other pool's, the main thread's, other programs'):
a level-6 ico-sphere at 512^2 rasterized 17x slower next to three busy processes than alone, where a fair
share would be ~2x. A short spin keeps the fast hand-over between back-to-back torch ops (they follow
each other within microseconds) and then lets idle workers sleep, which is what a shared machine needs.

:func:`apply_wait_policy` runs when ``diffras`` is imported, before it imports torch or Numba. OpenMP
runtimes read these variables once, when they load, so:

- it sets nothing the user set: any of ``OMP_WAIT_POLICY``, ``GOMP_SPINCOUNT``, ``KMP_BLOCKTIME`` in the
  environment is kept as is (set ``GOMP_SPINCOUNT=300000`` to get libgomp's default spinning back);
- it governs torch's pool only if ``diffras`` is imported before ``torch`` (the ``diffras`` command
  always is); otherwise only Numba's pool (loaded at the first parallel kernel). The README's
  "Performance notes" say how to get the same settings from the shell.

:func:`serial_below` runs a Numba kernel on the calling thread when its work is too small to pay for
waking the pool (and, on a busy machine, for waiting a scheduler slice for each worker).
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator, MutableMapping

# libgomp: spin this many iterations (tens of microseconds) before sleeping; its default is 300,000.
SPIN_COUNT = "1000"
# LLVM / Intel OpenMP (torch on macOS, Intel builds): milliseconds a worker stays awake; default 200.
BLOCK_TIME_MS = "1"
_USER_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")


def apply_wait_policy(environ: MutableMapping[str, str] = os.environ) -> dict:
    """Set the short-spin OpenMP wait policy in ``environ`` unless the user chose one; return what was set."""
    if any(name in environ for name in _USER_VARS):
        return {}
    chosen = {"GOMP_SPINCOUNT": SPIN_COUNT, "KMP_BLOCKTIME": BLOCK_TIME_MS}
    environ.update(chosen)
    return chosen


@contextmanager
def serial_below(work: int, threshold: int) -> Iterator[None]:
    """Within the block, Numba's parallel kernels run on the calling thread if ``work < threshold``."""
    import numba

    threads = numba.get_num_threads()
    if work >= threshold or threads == 1:
        yield
        return
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(threads)
