"""The standard 3DGS ``.ply`` file: what the original 3DGS code, gsplat and common splat viewers read/write.

One binary little-endian ``vertex`` element with float32 properties, in this order::

    x y z  nx ny nz  f_dc_0..2  f_rest_0..(3 (K - 1) - 1)  opacity  scale_0..2  rot_0..3

Values are stored *before* activation, as 3DGS optimises them: ``opacity`` is a logit (render with its
sigmoid), ``scale_*`` are log standard deviations (render with exp), ``rot_*`` a wxyz quaternion (any
norm). ``f_dc`` is the degree-0 SH coefficient per RGB channel; ``f_rest`` holds the other ``K - 1``
coefficients channel-major (all of R, then G, then B), the layout 3DGS writes. Normals are zeros.

In memory the Gaussians are a dict of tensors named as gsplat's ``simple_trainer`` names its parameters:
``means (N, 3)``, ``quats (N, 4)``, ``scales (N, 3)`` (log), ``opacities (N,)`` (logit), ``sh0 (N, 1, 3)``,
``shN (N, K - 1, 3)``.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, Tuple, Union

import numpy as np
import torch

__all__ = ["is_splat_ply", "load_ply", "render_args", "save_ply"]

PathLike = Union[str, Path]
_REQUIRED = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2",
             "rot_0", "rot_1", "rot_2", "rot_3"]
_PLY_TYPES = {"float": "<f4", "float32": "<f4", "double": "<f8", "float64": "<f8", "uchar": "u1", "uint8": "u1",
              "int": "<i4", "int32": "<i4", "uint": "<u4", "uint32": "<u4", "short": "<i2", "ushort": "<u2",
              "char": "i1", "int8": "i1", "int16": "<i2", "uint16": "<u2"}


def save_ply(path: PathLike, splats: Dict[str, torch.Tensor]) -> Path:
    """Write ``splats`` (see the module docstring) as a 3DGS ``.ply``; creates parent folders."""
    means = splats["means"].detach().cpu().float()
    n = means.shape[0]
    sh0 = splats["sh0"].detach().cpu().float().reshape(n, 1, 3)
    shN = splats.get("shN")
    shN = torch.zeros(n, 0, 3) if shN is None else shN.detach().cpu().float().reshape(n, -1, 3)
    cols = {
        "x": means[:, 0], "y": means[:, 1], "z": means[:, 2],
        "nx": torch.zeros(n), "ny": torch.zeros(n), "nz": torch.zeros(n),
    }
    for k in range(3):
        cols[f"f_dc_{k}"] = sh0[:, 0, k]
    rest = shN.transpose(1, 2).reshape(n, -1)  # channel-major, as 3DGS
    for k in range(rest.shape[1]):
        cols[f"f_rest_{k}"] = rest[:, k]
    cols["opacity"] = splats["opacities"].detach().cpu().float().reshape(n)
    for k in range(3):
        cols[f"scale_{k}"] = splats["scales"].detach().cpu().float()[:, k]
    for k in range(4):
        cols[f"rot_{k}"] = splats["quats"].detach().cpu().float()[:, k]
    data = np.empty(n, dtype=[(name, "<f4") for name in cols])
    for name, values in cols.items():
        data[name] = values.numpy()
    header = "ply\nformat binary_little_endian 1.0\n" + f"element vertex {n}\n"
    header += "".join(f"property float {name}\n" for name in cols) + "end_header\n"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(header.encode("ascii"))
        f.write(data.tobytes())
    return path


def is_splat_ply(path: PathLike) -> bool:
    """True if ``path`` is a PLY file whose header declares 3DGS properties (``f_dc_0`` and ``opacity``)."""
    path = Path(path)
    if path.suffix.lower() != ".ply" or not path.is_file():
        return False
    with open(path, "rb") as f:
        head = f.read(65536)
    header = head.split(b"end_header")[0]
    return head.startswith(b"ply") and b" f_dc_0" in header and b" opacity" in header


def _read_header(f, path) -> Tuple[int, list, str]:
    if f.readline().strip() != b"ply":
        raise ValueError(f"path: {str(path)!r} is not a PLY file (no 'ply' magic line)")
    fmt, n, props, in_vertex, elements = None, None, [], False, []
    while True:
        line = f.readline()
        if not line:
            raise ValueError(f"path: {str(path)!r} has no end_header line")
        parts = line.decode("ascii", "replace").split()
        if not parts or parts[0] in ("comment", "obj_info"):
            continue
        if parts[0] == "end_header":
            break
        if parts[0] == "format":
            fmt = parts[1]
        elif parts[0] == "element":
            elements.append(parts[1])
            in_vertex = parts[1] == "vertex"
            if in_vertex:
                n = int(parts[2])
        elif parts[0] == "property" and in_vertex:
            if parts[1] == "list" or parts[1] not in _PLY_TYPES:
                raise ValueError(f"path: unsupported vertex property {' '.join(parts[1:])!r} in {str(path)!r}")
            props.append((parts[2], _PLY_TYPES[parts[1]]))
    if n is None or elements[0] != "vertex":
        raise ValueError(f"path: {str(path)!r} has no leading 'vertex' element; expected a 3DGS .ply")
    if fmt != "binary_little_endian":
        raise ValueError(f"path: expected a binary_little_endian 3DGS .ply, got format {fmt!r} in {str(path)!r}")
    return n, props, fmt


def load_ply(path: PathLike, *, device=None) -> Dict[str, torch.Tensor]:
    """Read a 3DGS ``.ply`` into the dict ``save_ply`` writes (float32, on ``device``).

    Raises:
        FileNotFoundError: no such file.  ValueError: not a 3DGS ``.ply`` (naming what is missing).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path: {str(path)!r} does not exist")
    with open(path, "rb") as f:
        n, props, _ = _read_header(f, path)
        dtype = np.dtype(props)
        raw = f.read(n * dtype.itemsize)
    if len(raw) < n * dtype.itemsize:
        raise ValueError(f"path: {str(path)!r} is truncated: expected {n} vertices of {dtype.itemsize} bytes")
    data = np.frombuffer(raw, dtype=dtype, count=n)
    names = set(dtype.names)
    missing = [p for p in _REQUIRED if p not in names]
    if missing:
        raise ValueError(f"path: {str(path)!r} is not a 3DGS .ply: missing properties {missing}")
    n_rest = sum(1 for p in names if p.startswith("f_rest_"))
    if n_rest % 3 or math.isqrt(n_rest // 3 + 1) ** 2 != n_rest // 3 + 1:
        raise ValueError(f"path: expected 3 * ((d + 1)^2 - 1) f_rest properties for an SH degree d, got {n_rest}")

    def col(*names_):
        return torch.from_numpy(np.stack([data[p].astype(np.float32) for p in names_], axis=-1)).to(device)

    rest = col(*[f"f_rest_{k}" for k in range(n_rest)]) if n_rest else torch.zeros(n, 0, device=device)
    return {
        "means": col("x", "y", "z"),
        "quats": col("rot_0", "rot_1", "rot_2", "rot_3"),
        "scales": col("scale_0", "scale_1", "scale_2"),
        "opacities": col("opacity")[:, 0],
        "sh0": col("f_dc_0", "f_dc_1", "f_dc_2")[:, None, :],
        "shN": rest.reshape(n, 3, n_rest // 3).transpose(1, 2).contiguous(),
    }


def render_args(splats: Dict[str, torch.Tensor]) -> Dict[str, object]:
    """The ``rasterization`` keyword arguments of stored ``splats``: activated scales and opacities, SH
    coefficients ``(N, K, 3)`` and their degree."""
    sh = torch.cat([splats["sh0"], splats["shN"]], dim=1)
    return {
        "means": splats["means"],
        "quats": splats["quats"],
        "scales": torch.exp(splats["scales"]),
        "opacities": torch.sigmoid(splats["opacities"]),
        "colors": sh,
        "sh_degree": math.isqrt(sh.shape[1]) - 1,
    }
