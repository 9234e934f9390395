"""The ``diffras`` command line: render, fit, pose, texture.

Every command has ``--help``, ``--seed``, ``--device``, ``--out DIR`` and a progress bar (``--quiet``
turns it off). Any failure ends in one line on stderr (``diffras CMD: error: ...``) and a non-zero exit
status, never a traceback (set ``DIFFRAS_DEBUG=1`` to see one). Outputs are staged and moved into
``--out`` only when a command succeeds (see ``diffras.workflows.outputs``).

- :mod:`diffras.cli.parser`: the argument parser (``build_parser``);
- :mod:`diffras.cli.runners`: what each command does with its parsed arguments;
- :mod:`diffras.cli.memory`: the memory estimates checked before any large allocation.

Entry points: the ``diffras`` script, ``python -m diffras`` and ``python -m diffras.cli``.
"""
from __future__ import annotations

import os
import sys
from typing import List, Optional

from .parser import build_parser

__all__ = ["build_parser", "main"]

# Errors whose message is already a sentence for the user ("name: expected ..., got ..."); anything else
# is unexpected, and its type is shown so a bug report can say what happened.
_USER_ERRORS = (ValueError, TypeError, OSError)


def _one_line(e: BaseException) -> str:
    from ..distributed import is_peer_failure

    if is_peer_failure(e):  # a collective lost its peer or timed out
        return f"another rank failed or timed out ({str(e).splitlines()[0][:200]})"
    if isinstance(e, MemoryError):
        return f"out of memory ({str(e).splitlines()[0] if str(e) else 'MemoryError'}); lower --size or the batch"
    text = str(e).splitlines()[0] if str(e).strip() else ""
    if isinstance(e, _USER_ERRORS) and not isinstance(e, (KeyError, IndexError)):
        return text or type(e).__name__
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _without_nproc(argv: List[str]) -> List[str]:
    """``argv`` less its ``--nproc N`` / ``--nproc=N``: what each launched rank runs."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            out.append(a)
    return out


def main(argv: Optional[List[str]] = None) -> int:
    """Run one command; returns the exit status (0 success, 1 failure, 2 bad arguments, 130 interrupted)."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    try:
        if getattr(args, "nproc", 1) > 1 and "WORLD_SIZE" not in os.environ:
            # --nproc N: the same command as N ranks through torch's own launcher (what torchrun does).
            from ..distributed import launch_local

            launch_local(args.nproc, _without_nproc(argv), log_dir=str(args.out) + ".logs")
            return 0
        # Imported here so that --help and argument errors answer at once, before torch loads.
        from . import runners

        run = {
            "render": runners.run_render,
            "fit": runners.run_fit,
            "pose": runners.run_pose,
            "texture": runners.run_texture,
            "splat": runners.run_splat,
        }[args.command]
        run(args)
    except KeyboardInterrupt:
        print("diffras: interrupted; nothing was written to --out", file=sys.stderr)
        return 130
    except Exception as e:  # every failure is one line (the promise in --help); DIFFRAS_DEBUG keeps the trace
        if os.environ.get("DIFFRAS_DEBUG"):
            raise
        from ..distributed import LAUNCHED_ENV, is_peer_failure

        if os.environ.get(LAUNCHED_ENV) and is_peer_failure(e):
            return 1  # under --nproc the launcher names the rank that failed, in one line
        print(f"diffras {args.command}: error: {_one_line(e)}", file=sys.stderr)
        return 1
    return 0
