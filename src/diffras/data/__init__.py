"""Data shipped with diffras: Keenan Crane's Spot cow (public domain; see ``data/README.md``).

The cow is the default scene of the demo and the examples, the same files PyTorch3D's textured-mesh
tutorials use, so renders can be compared side by side.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Union

if TYPE_CHECKING:
    import torch

    from ..structures import Meshes

__all__ = [
    "cow_path",
    "load_cow",
]


def cow_path() -> Path:
    """Path of the bundled ``cow_mesh/cow.obj`` (its ``cow.mtl`` and ``cow_texture.png`` sit beside it).

    Resolved with :mod:`importlib.resources`, so it works for editable and regular installs (the
    package must be installed as files, not run from a zip archive).
    """
    path = Path(str(resources.files(__name__).joinpath("cow_mesh", "cow.obj")))
    if not path.is_file():
        raise FileNotFoundError(f"the bundled cow mesh is missing from the installation: '{path}'")
    return path


def load_cow(device: Optional[Union[str, "torch.device"]] = None) -> "Meshes":
    """Load the Spot cow as a one-mesh :class:`~diffras.structures.Meshes` with its UV texture.

    2,930 vertices (welded positions), 5,856 faces, ``textures`` a ``TexturesUV`` holding the
    (1024, 1024, 3) texture, 3,225 UVs. Positions as in the file (bounding box about
    [-0.47, 0.47] x [-0.74, 0.95] x [-0.67, 1.05]), as PyTorch3D's tutorials load it.

    Args:
        device: torch device for every tensor (default: CPU).
    """
    from ..io import load_mesh  # deferred: keeps ``import diffras.data`` free of trimesh

    return load_mesh(cow_path(), device=device)
