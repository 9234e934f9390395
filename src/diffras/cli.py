"""The ``diffras`` command line: render, fit, pose, texture.

Every command has ``--help``, ``--seed``, ``--device``, ``--out DIR`` and a progress bar (``--quiet``
turns it off). Bad input ends in one line on stderr (``diffras: error: ...``) and a non-zero exit
status, never a traceback (set ``DIFFRAS_DEBUG=1`` to see one). Outputs are staged and moved into
``--out`` only when a command succeeds (see ``diffras.workflows.outputs``).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Callable, List, Optional

SHADERS = ("soft-phong", "hard-phong", "soft-gouraud", "hard-gouraud", "flat", "silhouette", "normals", "depth")


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (argparse's default prints the usage block first)."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _number(kind: Callable, name: str, *, low=None, low_open=False) -> Callable[[str], object]:
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, got {text!r}")
        if value != value or value in (float("inf"), float("-inf")):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        if low is not None and (value <= low if low_open else value < low):
            raise argparse.ArgumentTypeError(f"expected a value {'>' if low_open else '>='} {low}, got {text!r}")
        return value

    parse.__name__ = name
    return parse


pos_int = _number(int, "positive int", low=1)
nonneg_int = _number(int, "non-negative int", low=0)
pos_float = _number(float, "positive number", low=0.0, low_open=True)
any_float = _number(float, "number")


def _common(p: argparse.ArgumentParser, out_default: str) -> None:
    p.add_argument("--out", type=Path, default=Path(out_default), help=f"output folder (default: {out_default})")
    p.add_argument("--seed", type=nonneg_int, default=0, help="random seed (default: 0)")
    p.add_argument("--device", default=None, help="torch device, e.g. cpu, cuda, mps (default: cpu)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="diffras", description="diffras: differentiable rendering on the CPU (and any torch device).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("render", help="render N views of a mesh: PNGs and a turntable GIF")
    p.add_argument("mesh", type=Path, help="mesh file (OBJ, PLY, GLB/glTF, STL, OFF)")
    p.add_argument("--views", type=pos_int, default=12, help="number of views around the mesh (default: 12)")
    p.add_argument("--elev", type=any_float, default=20.0, help="camera elevation in degrees (default: 20)")
    p.add_argument("--azim", type=any_float, default=0.0, help="azimuth of the first view in degrees (default: 0)")
    p.add_argument("--dist", type=pos_float, default=2.7, help="camera distance; the mesh is scaled to a unit sphere (default: 2.7)")
    p.add_argument("--fov", type=pos_float, default=60.0, help="vertical field of view in degrees (default: 60)")
    p.add_argument("--size", type=pos_int, default=256, help="image side in pixels (default: 256)")
    p.add_argument("--shader", choices=SHADERS, default="soft-phong", help="shader (default: soft-phong)")
    p.add_argument("--fps", type=pos_int, default=12, help="turntable GIF frame rate (default: 12)")
    _common(p, "out/render")

    p = sub.add_parser("fit", help="deform an ico-sphere into a target mesh from its rendered views")
    p.add_argument("target", type=Path, nargs="?", default=None, help="target mesh (default: the bundled Spot cow)")
    p.add_argument("--iters", type=pos_int, default=None, help="optimisation steps (default: FitConfig.iters)")
    p.add_argument("--views", type=pos_int, default=None, help="training views (default: 20)")
    p.add_argument("--size", type=pos_int, default=None, help="image side of the training views (default: FitConfig.image_size)")
    p.add_argument("--level", type=nonneg_int, default=None, help="ico-sphere level of the initial mesh (default: 4)")
    p.add_argument("--lr", type=pos_float, default=None, help="learning rate (default: FitConfig.lr)")
    _common(p, "out/fit")

    p = sub.add_parser("pose", help="recover a camera from a reference silhouette or image")
    p.add_argument("mesh", type=Path, help="mesh file")
    p.add_argument("--image", type=Path, default=None, help="reference PNG (default: render one from a random camera)")
    p.add_argument("--iters", type=pos_int, default=None, help="optimisation steps (default: PoseConfig.iters)")
    p.add_argument("--size", type=pos_int, default=None, help="image side (default: PoseConfig.image_size)")
    p.add_argument("--fov", type=pos_float, default=None, help="field of view of the reference camera (default: 60)")
    p.add_argument("--starts", type=pos_int, default=1, help="random starts to run (default: 1)")
    _common(p, "out/pose")

    p = sub.add_parser("texture", help="optimise a UV texture map from images with known cameras")
    p.add_argument("mesh", type=Path, nargs="?", default=None, help="UV-mapped mesh (default: the bundled cow)")
    p.add_argument("--views", type=Path, default=None,
                   help="folder with cameras.json and its images (default: render the mesh's own texture)")
    p.add_argument("--iters", type=pos_int, default=None, help="optimisation steps (default: TextureConfig.iters)")
    p.add_argument("--texture-size", type=pos_int, default=None, help="side of the optimised map (default: 512)")
    p.add_argument("--size", type=pos_int, default=None, help="image side of the views (default: TextureConfig.image_size)")
    _common(p, "out/texture")
    from .splat.command import add_parser as add_splat_parser  # `diffras splat` (h12: diffras.splat.command)

    add_splat_parser(sub)
    return parser


def _options(args: argparse.Namespace, names: List[str]) -> dict:
    """The options the user gave (None means: keep the workflow's default, which lives in its config)."""
    return {n: getattr(args, n) for n in names if getattr(args, n) is not None}


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        # Imported here so that --help and argument errors answer at once, before torch loads.
        from . import workflows
        from .splat.command import run_splat

        run = {
            "render": workflows.run_render,
            "fit": workflows.run_fit,
            "pose": workflows.run_pose,
            "texture": workflows.run_texture,
            "splat": run_splat,
        }[args.command]
        run(args)
    except KeyboardInterrupt:
        print("diffras: interrupted; nothing was written to --out", file=sys.stderr)
        return 130
    except (ValueError, TypeError, OSError) as e:
        if os.environ.get("DIFFRAS_DEBUG"):
            raise
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"diffras {args.command}: error: {msg}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
