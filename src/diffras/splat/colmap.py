"""COLMAP sparse models (``cameras``, ``images``, ``points3D``; text ``.txt`` and binary ``.bin``): read and write.

COLMAP's conventions are gsplat's: ``images`` hold world-to-camera poses ``x_cam = R(q) X + t`` in the OpenCV
frame (+X right, +Y down, +Z forward) with ``q = (qw, qx, qy, qz)``, and intrinsics put the centre of the
top-left pixel at (0.5, 0.5), so ``K`` is used as is. Only the pinhole part of a camera model is used:
``SIMPLE_PINHOLE``/``PINHOLE`` exactly; models with distortion (``SIMPLE_RADIAL``, ``RADIAL``, ``OPENCV``) are
read with their distortion ignored (a warning says so). The file formats are COLMAP's documented ones
(https://colmap.github.io/format.html).
"""
from __future__ import annotations

import struct
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Tuple, Union

import numpy as np

__all__ = ["ColmapCamera", "ColmapImage", "ColmapModel", "model_from_views", "read_colmap", "write_colmap"]

PathLike = Union[str, Path]
# model name -> (id, number of params); params begin f (or fx, fy), cx, cy.
MODELS = {"SIMPLE_PINHOLE": (0, 3), "PINHOLE": (1, 4), "SIMPLE_RADIAL": (2, 4), "RADIAL": (3, 5), "OPENCV": (4, 8)}
_BY_ID = {v[0]: k for k, v in MODELS.items()}


@dataclass
class ColmapCamera:
    model: str
    width: int
    height: int
    params: List[float]

    def K(self) -> np.ndarray:
        """(3, 3) pinhole intrinsics (distortion, if any, dropped)."""
        p = self.params
        fx, fy, cx, cy = (p[0], p[0], p[1], p[2]) if self.model in ("SIMPLE_PINHOLE", "SIMPLE_RADIAL", "RADIAL") else p[:4]
        return np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], dtype=np.float64)


@dataclass
class ColmapImage:
    qvec: np.ndarray  # (4,) wxyz, world-to-camera
    tvec: np.ndarray  # (3,)
    camera_id: int
    name: str

    def viewmat(self) -> np.ndarray:
        """(4, 4) world-to-camera matrix (OpenCV)."""
        w, x, y, z = self.qvec / np.linalg.norm(self.qvec)
        R = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                      [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                      [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])
        V = np.eye(4)
        V[:3, :3], V[:3, 3] = R, self.tvec
        return V


@dataclass
class ColmapModel:
    cameras: Dict[int, ColmapCamera]
    images: Dict[int, ColmapImage]
    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))  # (P, 3) float64
    colors: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.uint8))  # (P, 3) uint8


def _rotmat_to_qvec(R: np.ndarray) -> np.ndarray:
    """(3, 3) rotation -> unit wxyz quaternion with w >= 0 (Shepperd's method: stable for every rotation)."""
    m = np.asarray(R, dtype=np.float64)
    t = np.trace(m)
    cands = [t, m[0, 0], m[1, 1], m[2, 2]]
    k = int(np.argmax(cands))
    if k == 0:
        s = 2 * np.sqrt(1 + t)
        q = [s / 4, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
    elif k == 1:
        s = 2 * np.sqrt(1 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [(m[2, 1] - m[1, 2]) / s, s / 4, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s]
    elif k == 2:
        s = 2 * np.sqrt(1 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, s / 4, (m[1, 2] + m[2, 1]) / s]
    else:
        s = 2 * np.sqrt(1 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, s / 4]
    q = np.array(q)
    return q if q[0] >= 0 else -q


def model_from_views(viewmats, Ks, width: int, height: int, names, points=None, colors=None) -> ColmapModel:
    """A COLMAP model (one PINHOLE camera per view) from OpenCV ``viewmats (V, 4, 4)`` and ``Ks (V, 3, 3)``
    (gsplat's pixel convention, which is COLMAP's), image file ``names``, optional ``points (P, 3)`` and
    ``colors (P, 3)`` in [0, 1]."""
    V, K = np.asarray(viewmats, np.float64), np.asarray(Ks, np.float64)
    cams = {i + 1: ColmapCamera("PINHOLE", int(width), int(height), [K[i, 0, 0], K[i, 1, 1], K[i, 0, 2], K[i, 1, 2]])
            for i in range(len(V))}
    imgs = {i + 1: ColmapImage(_rotmat_to_qvec(V[i, :3, :3]), V[i, :3, 3].copy(), i + 1, str(names[i])) for i in range(len(V))}
    pts = np.zeros((0, 3)) if points is None else np.asarray(points, np.float64).reshape(-1, 3)
    cols = np.full((len(pts), 3), 128, np.uint8) if colors is None else \
        np.clip(np.round(np.asarray(colors, np.float64) * 255), 0, 255).astype(np.uint8).reshape(-1, 3)
    return ColmapModel(cams, imgs, pts, cols)


def _find(folder: Path) -> Tuple[Path, str]:
    for d in (folder / "sparse" / "0", folder / "sparse", folder):
        for ext in ("bin", "txt"):
            if (d / f"cameras.{ext}").is_file() and (d / f"images.{ext}").is_file():
                return d, ext
    raise FileNotFoundError(f"data: no COLMAP model (cameras and images .bin or .txt) in {str(folder)!r}, "
                            f"its sparse/ or sparse/0/")


def _lines(path: Path):
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            yield line


def _check_model(name: str, n_params: int, where: str) -> None:
    if name not in MODELS:
        raise ValueError(f"{where}: unsupported COLMAP camera model {name!r}; expected one of {sorted(MODELS)}")
    if MODELS[name][1] != n_params:
        raise ValueError(f"{where}: camera model {name} expects {MODELS[name][1]} parameters, got {n_params}")
    if name not in ("SIMPLE_PINHOLE", "PINHOLE"):
        warnings.warn(f"{where}: camera model {name}: distortion is ignored (undistort the images for best results)")


def _read_text(d: Path) -> ColmapModel:
    cams, imgs = {}, {}
    for line in _lines(d / "cameras.txt"):
        p = line.split()
        _check_model(p[1], len(p) - 4, str(d / "cameras.txt"))
        cams[int(p[0])] = ColmapCamera(p[1], int(p[2]), int(p[3]), [float(v) for v in p[4:]])
    # Each image is two lines, its pose and then its 2D points (an empty line when it has none).
    lines = [ln for ln in (d / "images.txt").read_text().splitlines() if not ln.lstrip().startswith("#")]
    i = 0
    while i < len(lines):
        p = lines[i].split()
        if not p:  # stray blank line (e.g. at the end)
            i += 1
            continue
        imgs[int(p[0])] = ColmapImage(np.array([float(v) for v in p[1:5]]), np.array([float(v) for v in p[5:8]]),
                                      int(p[8]), " ".join(p[9:]))
        i += 2
    pts, cols = [], []
    if (d / "points3D.txt").is_file():
        for line in _lines(d / "points3D.txt"):
            p = line.split()
            pts.append([float(v) for v in p[1:4]])
            cols.append([int(v) for v in p[4:7]])
    return ColmapModel(cams, imgs, np.array(pts, dtype=np.float64).reshape(-1, 3), np.array(cols, np.uint8).reshape(-1, 3))


def _read_binary(d: Path) -> ColmapModel:
    cams, imgs = {}, {}
    with open(d / "cameras.bin", "rb") as f:
        for _ in range(struct.unpack("<Q", f.read(8))[0]):
            cid, mid, w, h = struct.unpack("<iiQQ", f.read(24))
            if mid not in _BY_ID:
                raise ValueError(f"{d / 'cameras.bin'}: unsupported COLMAP camera model id {mid}")
            name = _BY_ID[mid]
            _check_model(name, MODELS[name][1], str(d / "cameras.bin"))
            cams[cid] = ColmapCamera(name, w, h, list(struct.unpack(f"<{MODELS[name][1]}d", f.read(8 * MODELS[name][1]))))
    with open(d / "images.bin", "rb") as f:
        for _ in range(struct.unpack("<Q", f.read(8))[0]):
            iid, *rest = struct.unpack("<i7di", f.read(64))
            name = b""
            while (c := f.read(1)) not in (b"\x00", b""):
                name += c
            n2d = struct.unpack("<Q", f.read(8))[0]
            f.seek(24 * n2d, 1)
            imgs[iid] = ColmapImage(np.array(rest[:4]), np.array(rest[4:7]), rest[7], name.decode("utf-8"))
    pts, cols = [], []
    if (d / "points3D.bin").is_file():
        with open(d / "points3D.bin", "rb") as f:
            for _ in range(struct.unpack("<Q", f.read(8))[0]):
                _, x, y, z, r, g, b, _, track = struct.unpack("<Q3d3BdQ", f.read(51))
                f.seek(8 * track, 1)
                pts.append((x, y, z))
                cols.append((r, g, b))
    return ColmapModel(cams, imgs, np.array(pts, dtype=np.float64).reshape(-1, 3), np.array(cols, np.uint8).reshape(-1, 3))


def read_colmap(folder: PathLike) -> ColmapModel:
    """Read the COLMAP model in ``folder`` (or its ``sparse/0`` / ``sparse``), binary or text."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"data: {str(folder)!r} is not a folder")
    d, ext = _find(folder)
    try:
        return _read_binary(d) if ext == "bin" else _read_text(d)
    except (struct.error, IndexError, ValueError) as e:
        if isinstance(e, ValueError) and "COLMAP" in str(e):
            raise
        raise ValueError(f"data: cannot parse the COLMAP model in {str(d)!r}: {e}") from e


def write_colmap(folder: PathLike, model: ColmapModel, *, binary: bool = True) -> Path:
    """Write ``model`` as ``cameras``/``images``/``points3D`` (``.bin`` or ``.txt``) into ``folder``.
    Images carry no 2D points and points no tracks (what a viewer or a trainer needs)."""
    d = Path(folder)
    d.mkdir(parents=True, exist_ok=True)
    if binary:
        with open(d / "cameras.bin", "wb") as f:
            f.write(struct.pack("<Q", len(model.cameras)))
            for cid, c in model.cameras.items():
                f.write(struct.pack("<iiQQ", cid, MODELS[c.model][0], c.width, c.height))
                f.write(struct.pack(f"<{len(c.params)}d", *c.params))
        with open(d / "images.bin", "wb") as f:
            f.write(struct.pack("<Q", len(model.images)))
            for iid, im in model.images.items():
                f.write(struct.pack("<i7di", iid, *im.qvec, *im.tvec, im.camera_id))
                f.write(im.name.encode("utf-8") + b"\x00" + struct.pack("<Q", 0))
        with open(d / "points3D.bin", "wb") as f:
            f.write(struct.pack("<Q", len(model.points)))
            for i, (p, c) in enumerate(zip(model.points, model.colors)):
                f.write(struct.pack("<Q3d3BdQ", i + 1, *p, *[int(v) for v in c], 0.0, 0))
    else:
        (d / "cameras.txt").write_text("# CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]\n" + "".join(
            f"{cid} {c.model} {c.width} {c.height} {' '.join(repr(float(v)) for v in c.params)}\n" for cid, c in model.cameras.items()))
        (d / "images.txt").write_text("# IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME\n# POINTS2D[] as (X, Y, POINT3D_ID)\n" + "".join(
            f"{iid} {' '.join(repr(float(v)) for v in (*im.qvec, *im.tvec))} {im.camera_id} {im.name}\n\n" for iid, im in model.images.items()))
        (d / "points3D.txt").write_text("# POINT3D_ID, X, Y, Z, R, G, B, ERROR, TRACK[]\n" + "".join(
            f"{i + 1} {p[0]!r} {p[1]!r} {p[2]!r} {int(c[0])} {int(c[1])} {int(c[2])} 0.0\n" for i, (p, c) in enumerate(zip(model.points.tolist(), model.colors))))
    return d
