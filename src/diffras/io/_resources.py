"""The files a mesh file names (an OBJ's MTL and ``map_Kd`` image, glTF buffer and image URIs): served to
trimesh only from inside the mesh's own folder, and every miss reported.

trimesh before 5.0 opened ``map_Kd ../../x.png``, absolute paths and glTF URIs anywhere on the disk; a mesh
from the internet could then pull any image the user can read into a render. diffras does not rely on the
dependency for this: :class:`ContainedResolver` resolves every name itself (symlinks included) and refuses
what lands outside the folder. Missing, refused or undecodable textures end in a ``UserWarning`` naming the
file; the mesh then renders without that texture (white), as before.
"""
from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import List, Optional, Tuple

__all__ = ["ContainedResolver", "warn_resource_problems"]

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tga", ".tif", ".tiff", ".gif", ".webp")


def _resolver_base():
    from trimesh.resolvers import FilePathResolver

    return FilePathResolver


class ContainedResolver(_resolver_base()):
    """A trimesh ``FilePathResolver`` that serves files only from inside ``root`` (the mesh's folder).

    Every request is recorded in ``log`` as ``(status, name, path)`` with status ``"read"``, ``"missing"``
    or ``"outside"``; the loader turns misses into warnings (:func:`warn_resource_problems`).
    """

    def __init__(self, source: str, root: Optional[Path] = None, log: Optional[List[Tuple[str, str, Path]]] = None):
        super().__init__(source)
        self.root = Path(root) if root is not None else Path(self.parent).resolve()
        self.log: List[Tuple[str, str, Path]] = log if log is not None else []

    def namespaced(self, namespace: str) -> "ContainedResolver":
        return ContainedResolver(os.path.join(self.parent, namespace), root=self.root, log=self.log)

    def get(self, name: str) -> bytes:
        # The same candidates as trimesh: the name, without a leading slash, and its bare file name, all
        # relative to this resolver's folder; each must resolve inside the root.
        name = str(name).strip()
        outside = None
        for candidate in (name, name.lstrip("/\\"), os.path.basename(name)):
            if not candidate:
                continue
            path = (Path(self.parent) / candidate).resolve()
            if not path.is_relative_to(self.root):
                outside = outside or path
                continue
            if path.is_file():
                self.log.append(("read", name, path))
                return path.read_bytes()
        if outside is not None:
            self.log.append(("outside", name, outside))
            raise PermissionError(f"'{name}' resolves outside the mesh's folder '{self.root}'")
        self.log.append(("missing", name, Path(self.parent) / name))
        raise FileNotFoundError(name)

    def write(self, name: str, data) -> None:  # loading never writes; refuse rather than write anywhere
        raise PermissionError(f"'{name}': diffras's resolver is read-only")


def _unreadable_image(path: Path) -> Optional[str]:
    """None if Pillow can decode ``path``'s header and pixels, else why not."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(path.read_bytes())) as im:
                im.verify()
    except Exception as e:  # any decoder failure: the texture is unusable
        return f"{type(e).__name__}: {e}"
    return None


def warn_resource_problems(mesh_path: Path, log: List[Tuple[str, str, Path]]) -> None:
    """One ``UserWarning`` per resource the mesh named but could not get: missing, outside its folder, or
    an image Pillow cannot decode."""
    seen = set()
    for status, name, path in log:
        if (status, name) in seen:
            continue
        seen.add((status, name))
        if status == "missing" and not any(s == "read" and n == name for s, n, _ in log):
            warnings.warn(f"'{mesh_path}': the file it names, '{name}', was not found; loading without it "
                          "(a missing texture renders white)", UserWarning, stacklevel=4)
        elif status == "outside":
            warnings.warn(f"'{mesh_path}': refused '{name}', which resolves outside the mesh's folder "
                          f"('{path}'); loading without it (a texture renders white)", UserWarning, stacklevel=4)
        elif status == "read" and path.suffix.lower() in _IMAGE_SUFFIXES:
            why = _unreadable_image(path)
            if why is not None:
                warnings.warn(f"'{mesh_path}': cannot decode the texture image '{path}' ({why}); loading "
                              "without it (renders white)", UserWarning, stacklevel=4)
