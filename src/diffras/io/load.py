"""Files -> :class:`~diffras.structures.Meshes` with textures attached (PyTorch3D's ``load_objs_as_meshes``
for every format trimesh reads)."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Optional, Sequence, Union

import torch

from .._validation import _describe
from .mesh_data import MeshData, PathLike, load_mesh_data

if TYPE_CHECKING:
    from ..structures import Meshes

#: What ``device`` arguments accept.
DeviceLike = Optional[Union[str, int, torch.device]]

__all__ = ["load_mesh", "load_meshes", "meshes_from_data"]


def _as_device(device: Any) -> torch.device:
    if device is None:
        return torch.device("cpu")
    if isinstance(device, torch.device):
        return device
    if not isinstance(device, (str, int)) or isinstance(device, bool):
        raise TypeError(f"device: expected a torch.device, str or None, got {_describe(device)}")
    try:
        return torch.device(device)
    except RuntimeError as e:
        raise ValueError(f"device: expected a valid torch device, got {device!r}") from e


def _check_load_textures(load_textures: Any) -> bool:
    if not isinstance(load_textures, bool):
        raise TypeError(f"load_textures: expected a bool, got {_describe(load_textures)}")
    return load_textures


def meshes_from_data(data: MeshData, device: DeviceLike = None, *, load_textures: bool = True,
                     texture_mipmap: Union[None, bool, str] = None) -> "Meshes":
    """Wrap one :class:`MeshData` as a one-mesh ``Meshes`` on ``device``.

    ``textures`` is a ``TexturesUV(maps=[texture_image], faces_uvs=[faces_uvs], verts_uvs=[verts_uvs],
    mipmap=texture_mipmap)`` (``None``: the default "auto" mip-mapping; ``False``: level 0 only, PyTorch3D's)
    when the data has a texture image and UVs, else a ``TexturesVertex(verts_features=[verts_colors])``
    when it has vertex colours, else None (also when ``load_textures`` is False). A file with both a
    texture and vertex colours gets the texture.
    """
    from ..structures import Meshes

    if not isinstance(data, MeshData):
        raise TypeError(f"data: expected a MeshData, got {_describe(data)}")
    dev = _as_device(device)
    load_textures = _check_load_textures(load_textures)
    data = data.to(dev)
    textures = None
    if load_textures and data.texture_image is not None and data.verts_uvs is not None:
        from ..textures import TexturesUV

        textures = TexturesUV(maps=[data.texture_image], faces_uvs=[data.faces_uvs], verts_uvs=[data.verts_uvs],
                              mipmap=texture_mipmap)
    elif load_textures and data.verts_colors is not None:
        from ..textures import TexturesVertex

        textures = TexturesVertex(verts_features=[data.verts_colors])
    return Meshes(verts=[data.verts], faces=[data.faces], textures=textures)


def load_mesh(path: PathLike, device: DeviceLike = None, *, load_textures: bool = True,
              dtype: torch.dtype = torch.float32, texture_mipmap: Union[None, bool, str] = None) -> "Meshes":
    """Load one mesh file as a one-mesh :class:`~diffras.structures.Meshes`.

    Reads through :func:`~diffras.io.load_mesh_data` (formats, welding and error rules are documented
    there) and attaches textures as :func:`meshes_from_data` says: ``TexturesUV`` for UV-textured
    files, ``TexturesVertex`` for per-vertex colours, None otherwise.

    The ``TexturesUV`` keeps its defaults (PyTorch3D's: ``padding_mode="border"``,
    ``align_corners=True``). UVs outside [0, 1] are kept as the file gives them; a file that relies
    on texture repeat (e.g. Khronos' ``BoxTextured.glb``, u up to 6) renders as intended only with
    ``TexturesUV(..., padding_mode="wrap")``, which the caller can rebuild from ``mesh.textures``.

    Args:
        path: the file (str or ``os.PathLike``).
        device: torch device of every tensor (default CPU).
        load_textures: if False, ``textures`` is None whatever the file holds.
        dtype: ``torch.float32`` (default) or ``torch.float64`` vertex positions (see
            :func:`~diffras.io.load_mesh_data` on precision: a mesh far from the origin needs float64).
        texture_mipmap: the ``mipmap`` setting of a ``TexturesUV`` (None: "auto", trilinear where the map is
            minified; False: level 0 only, PyTorch3D-identical sampling).

    Returns:
        ``Meshes`` with ``len == 1``: ``verts_list()[0]`` (V, 3) of ``dtype``, ``faces_list()[0]`` (F, 3) int64.

    Example:
        >>> from diffras.data import cow_path
        >>> mesh = load_mesh(cow_path())
        >>> mesh.verts_packed().shape, mesh.faces_packed().shape
        (torch.Size([2930, 3]), torch.Size([5856, 3]))
    """
    dev = _as_device(device)
    load_textures = _check_load_textures(load_textures)
    return meshes_from_data(load_mesh_data(path, dtype=dtype), dev, load_textures=load_textures,
                            texture_mipmap=texture_mipmap)


def load_meshes(paths: Sequence[PathLike], device: DeviceLike = None, *, load_textures: bool = True,
                dtype: torch.dtype = torch.float32, texture_mipmap: Union[None, bool, str] = None) -> "Meshes":
    """Load several files as one batched :class:`~diffras.structures.Meshes` (``join_meshes_as_batch``),
    mesh ``i`` from ``paths[i]``.

    With ``load_textures=True`` every file must yield the same kind of textures (all ``TexturesUV``,
    all ``TexturesVertex`` or all none), since a batch carries one textures object; otherwise a
    ``ValueError`` names the odd file. Pass ``load_textures=False`` to batch the geometry alone.

    Args:
        paths: a non-empty list or tuple of files.
        device: torch device of every tensor (default CPU).
        load_textures: as in :func:`load_mesh`.
        dtype, texture_mipmap: as in :func:`load_mesh`.

    Returns:
        ``Meshes`` with ``len == len(paths)``.
    """
    from ..structures import join_meshes_as_batch

    if isinstance(paths, (str, os.PathLike)) or not isinstance(paths, (list, tuple)):
        raise TypeError(f"paths: expected a list or tuple of paths, got {_describe(paths)}")
    if len(paths) == 0:
        raise ValueError("paths: expected at least one path, got an empty sequence")
    dev = _as_device(device)
    load_textures = _check_load_textures(load_textures)
    meshes = [load_mesh(p, dev, load_textures=load_textures, dtype=dtype, texture_mipmap=texture_mipmap) for p in paths]
    kinds = [type(m.textures).__name__ if m.textures is not None else "None" for m in meshes]
    for p, kind in zip(paths, kinds):
        if kind != kinds[0]:
            raise ValueError(
                f"paths: expected every file to give the same kind of textures, got {kinds[0]} for "
                f"'{paths[0]}' but {kind} for '{p}' (pass load_textures=False to load geometry only)"
            )
    return join_meshes_as_batch(meshes)
