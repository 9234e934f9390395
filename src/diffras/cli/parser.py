"""The ``diffras`` argument parser: commands, options, and number checks that answer before torch loads.

Options a workflow also has default to ``None`` ("keep the workflow's default"): the numbers live once, in
the workflow's config dataclass, and ``--help`` looks them up there when it is printed (``{FitConfig.iters}``
in a help string becomes the number).
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Callable, Optional

__all__ = ["DEFAULT_SUPERSAMPLE", "SHADERS", "build_parser"]

SHADERS = ("hard-phong", "soft-phong", "hard-gouraud", "soft-gouraud", "flat", "silhouette", "normals", "depth")

#: ``diffras render`` samples each pixel on an S x S grid and box-filters down. 3 x 3 gives 10 coverage
#: levels on an edge (2 x 2 gives 5, and staircases still show on the near-horizontal edges of a turntable)
#: for 9x the pixels of a plain render: about 0.2 s a view for the cow at 256 px on one core.
DEFAULT_SUPERSAMPLE = 3

# "{FitConfig.iters}" in a help string: a config class of diffras.workflows (or diffras.splat) and a field.
_CONFIG_REF = re.compile(r"\{(\w+Config)\.(\w+)\}")


class _Formatter(argparse.HelpFormatter):
    """Fills ``{SomeConfig.field}`` in help strings with the default from ``diffras.workflows``.

    The workflows (and torch) are imported only when help is actually printed, so that argument errors
    stay instant."""

    def _get_help_string(self, action: argparse.Action) -> Optional[str]:
        text = super()._get_help_string(action)
        if text and _CONFIG_REF.search(text):
            import dataclasses

            from .. import workflows
            from ..splat import trainer as splat_trainer

            def default(m: "re.Match[str]") -> str:
                config = getattr(workflows, m.group(1), None) or getattr(splat_trainer, m.group(1))
                fields = {f.name: f for f in dataclasses.fields(config)}
                return str(fields[m.group(2)].default)

            text = _CONFIG_REF.sub(default, text)
        return text


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (argparse's default prints the usage block first)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

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


def _parallel(p: argparse.ArgumentParser) -> None:
    p.add_argument("--nproc", type=pos_int, default=1,
                   help="run as N processes on this machine through torch.distributed (default: 1; "
                        "for several machines use torchrun, see the README)")


def _installed_version() -> str:
    # From the package metadata, like diffras.__version__, without importing diffras (and torch).
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("diffras")
    except PackageNotFoundError:
        return "0+unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="diffras", description="diffras: differentiable rendering on the CPU (and any torch device).")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_installed_version()}")
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
    p.add_argument("--shader", choices=SHADERS, default="hard-phong",
                   help="shader (default: hard-phong, opaque; the soft shaders are SoftRas blends for optimisation)")
    p.add_argument("--supersample", type=pos_int, default=DEFAULT_SUPERSAMPLE,
                   help=f"antialiasing: render S x S samples per pixel and box-filter down (default: {DEFAULT_SUPERSAMPLE}; "
                        "1 turns it off)")
    p.add_argument("--fps", type=pos_int, default=12, help="turntable GIF frame rate (default: 12)")
    _common(p, "out/render")
    _parallel(p)

    p = sub.add_parser("fit", help="deform an ico-sphere into a target mesh from its rendered views")
    p.add_argument("target", type=Path, nargs="?", default=None, help="target mesh (default: the bundled Spot cow)")
    p.add_argument("--iters", type=pos_int, default=None, help="optimisation steps (default: {FitConfig.iters})")
    p.add_argument("--views", type=pos_int, default=None, help="training views (default: {FitConfig.views})")
    p.add_argument("--size", type=pos_int, default=None, help="image side of the training views (default: {FitConfig.image_size})")
    p.add_argument("--level", type=nonneg_int, default=None, help="ico-sphere level of the initial mesh (default: {FitConfig.level})")
    p.add_argument("--lr", type=pos_float, default=None, help="learning rate (default: {FitConfig.lr})")
    p.add_argument("--gradients", choices=("soft", "antialias"), default=None,
                   help="silhouette gradients: soft (SoftRas blur) or antialias (hard render + analytic AA) (default: {FitConfig.gradients})")
    _common(p, "out/fit")
    _parallel(p)

    p = sub.add_parser("pose", help="recover a camera from a reference silhouette or image")
    p.add_argument("mesh", type=Path, help="mesh file")
    p.add_argument("--image", type=Path, default=None, help="reference PNG (default: render one from a random camera)")
    p.add_argument("--iters", type=pos_int, default=None, help="optimisation steps (default: {PoseConfig.iters})")
    p.add_argument("--size", type=pos_int, default=None, help="image side (default: {PoseConfig.image_size})")
    p.add_argument("--fov", type=pos_float, default=None, help="field of view of the reference camera (default: {PoseConfig.fov})")
    p.add_argument("--starts", type=pos_int, default=1, help="random starts to run (default: 1)")
    p.add_argument("--gradients", choices=("soft", "antialias"), default=None,
                   help="silhouette gradients: soft (SoftRas blur) or antialias (hard render + analytic AA) (default: {PoseConfig.gradients})")
    _common(p, "out/pose")

    p = sub.add_parser("texture", help="optimise a UV texture map from images with known cameras")
    p.add_argument("mesh", type=Path, nargs="?", default=None, help="UV-mapped mesh (default: the bundled cow)")
    p.add_argument("--views", type=Path, default=None,
                   help="folder with cameras.json and its images (default: render the mesh's own texture)")
    p.add_argument("--iters", type=pos_int, default=None, help="optimisation steps (default: {TextureConfig.iters})")
    p.add_argument("--texture-size", type=pos_int, default=None, help="side of the optimised map (default: {TextureConfig.texture_size})")
    p.add_argument("--size", type=pos_int, default=None, help="image side of the views (default: {TextureConfig.image_size})")
    _common(p, "out/texture")
    _parallel(p)

    p = sub.add_parser("splat", help="train 3D Gaussian splats from posed images (COLMAP, transforms.json, or the cow)")
    p.add_argument("data", type=Path, nargs="?", default=None,
                   help="COLMAP folder (sparse/0 + images/) or NeRF transforms.json folder (default: render the bundled cow)")
    p.add_argument("--iters", type=pos_int, default=None, help="training steps (default: {SplatConfig.iters})")
    p.add_argument("--size", type=pos_int, default=None,
                   help="image side: the cow's render size (default 256), or the longer side data images are resized to")
    p.add_argument("--views", type=pos_int, default=50, help="cow training views (default: 50; 10 more are held out)")
    p.add_argument("--sh-degree", type=int, choices=(0, 1, 2, 3), default=None,
                   help="final SH degree (default: {SplatConfig.sh_degree})")
    p.add_argument("--init", choices=("points", "random"), default=None,
                   help="initial Gaussians (default: {SplatConfig.init})")
    p.add_argument("--antialiased", action="store_true", help="gsplat's antialiased rasterize mode")
    p.add_argument("--frames", type=pos_int, default=36, help="turntable GIF frames (default: 36)")
    p.add_argument("--views-per-step", type=pos_int, default=None,
                   help="training views per step, shared among --nproc ranks (default: {SplatConfig.views_per_step})")
    _common(p, "out/splat")
    _parallel(p)
    return parser
