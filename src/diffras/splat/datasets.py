"""Posed images for training splats: COLMAP folders, NeRF ``transforms.json`` folders, or the bundled cow.

Every loader returns a :class:`SplatData`: images ``(V, H, W, 3)`` in [0, 1] composited over ``background``,
OpenCV world-to-camera ``viewmats (V, 4, 4)`` and pixel intrinsics ``Ks (V, 3, 3)`` in gsplat's convention
(pixel centres at +0.5), sparse points for initialisation (possibly empty), and the held-out view indices.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
import torch

from .colmap import read_colmap

__all__ = ["SplatData", "cow_views", "load_colmap_views", "load_nerf_views", "load_views"]


@dataclass
class SplatData:
    """images (V, H, W, 3), viewmats (V, 4, 4), Ks (V, 3, 3), points (P, 3), point_colors (P, 3) in [0, 1],
    test (list of held-out view indices), background (3,)."""

    images: torch.Tensor
    viewmats: torch.Tensor
    Ks: torch.Tensor
    points: torch.Tensor
    point_colors: torch.Tensor
    test: List[int]
    background: Tuple[float, float, float] = (1.0, 1.0, 1.0)
    names: Optional[List[str]] = None

    @property
    def train(self) -> List[int]:
        held = set(self.test)
        return [i for i in range(len(self.images)) if i not in held]

    def scene_scale(self) -> float:
        """1.1x the largest camera distance from the cameras' mean centre (gsplat's ``scene_scale``)."""
        centres = torch.linalg.inv(self.viewmats)[:, :3, 3]
        return 1.1 * float((centres - centres.mean(0)).norm(dim=-1).max().clamp(min=1e-6))


def _read_image(path: Path, size: Optional[int], background) -> Tuple[torch.Tensor, float]:
    """An image file as (H, W, 3) in [0, 1] (RGBA composited over ``background``), its longer side resized
    to ``size`` if given; returns the image and the scale factor applied."""
    from PIL import Image

    if not path.is_file():
        raise FileNotFoundError(f"data: image {str(path)!r} listed by the model does not exist")
    with Image.open(path) as im:
        im = im.convert("RGBA")
        scale = 1.0
        if size is not None and max(im.size) != size:
            scale = size / max(im.size)
            im = im.resize((max(1, round(im.size[0] * scale)), max(1, round(im.size[1] * scale))), Image.LANCZOS)
        a = np.asarray(im, dtype=np.float32) / 255.0
    rgb = a[..., :3] * a[..., 3:] + np.asarray(background, np.float32) * (1 - a[..., 3:])
    return torch.from_numpy(rgb.copy()), scale


def _every(n: int, k: int = 8) -> List[int]:
    """gsplat's split: every k-th view is held out."""
    return list(range(0, n, k)) if n > 1 else []


def load_colmap_views(folder, *, images: str = "images", size: Optional[int] = None, background=(1.0, 1.0, 1.0),
                      test_every: int = 8) -> SplatData:
    """A COLMAP folder: the model (in ``folder``, ``sparse/`` or ``sparse/0``) and ``folder/images``."""
    folder = Path(folder)
    model = read_colmap(folder)
    if not model.images:
        raise ValueError(f"data: the COLMAP model in {str(folder)!r} has no images")
    imgs, Vs, Ks, names = [], [], [], []
    for iid in sorted(model.images, key=lambda i: model.images[i].name):
        im = model.images[iid]
        if im.camera_id not in model.cameras:
            raise ValueError(f"data: image {im.name!r} refers to camera {im.camera_id}, absent from cameras")
        img, s = _read_image(folder / images / im.name, size, background)
        K = model.cameras[im.camera_id].K().copy()
        cam = model.cameras[im.camera_id]
        sx, sy = img.shape[1] / cam.width, img.shape[0] / cam.height  # the image file may be downscaled
        K[0] *= sx
        K[1] *= sy
        imgs.append(img)
        Vs.append(torch.from_numpy(im.viewmat()))
        Ks.append(torch.from_numpy(K))
        names.append(im.name)
    if len({tuple(i.shape) for i in imgs}) > 1:
        raise ValueError("data: expected all images to have one size (resize them or pass --size)")
    return SplatData(torch.stack(imgs), torch.stack(Vs).float(), torch.stack(Ks).float(),
                     torch.from_numpy(model.points).float(), torch.from_numpy(model.colors.astype(np.float32) / 255.0),
                     _every(len(imgs), test_every), tuple(background), names)


def load_nerf_views(folder, *, size: Optional[int] = None, background=(1.0, 1.0, 1.0)) -> SplatData:
    """A NeRF-synthetic-style folder: ``transforms.json`` (all views, every 8th held out) or
    ``transforms_train.json`` + ``transforms_test.json``. Poses are camera-to-world in OpenGL axes
    (+X right, +Y up, looking down -Z); intrinsics from ``fl_x``/``fl_y``/``cx``/``cy`` or ``camera_angle_x``."""
    folder = Path(folder)
    splits = [folder / "transforms.json"] if (folder / "transforms.json").is_file() else \
        [folder / "transforms_train.json", folder / "transforms_test.json"]
    if not all(p.is_file() for p in splits):
        raise FileNotFoundError(f"data: no transforms.json (or transforms_train/test.json) in {str(folder)!r}")
    imgs, Vs, Ks, names, test = [], [], [], [], []
    for k, path in enumerate(splits):
        meta = json.loads(path.read_text())
        for fr in meta["frames"]:
            fp = folder / fr["file_path"]
            if not fp.suffix:
                fp = fp.with_suffix(".png")
            img, s = _read_image(fp, size, background)
            h, w = img.shape[:2]
            get = lambda key, default: float(fr.get(key, meta.get(key, default)))  # noqa: E731
            if "fl_x" in fr or "fl_x" in meta:
                fx = get("fl_x", 0.0) * s
            elif "camera_angle_x" in fr or "camera_angle_x" in meta:
                fx = 0.5 * w / math.tan(0.5 * get("camera_angle_x", 0.0))
            else:
                raise ValueError(f"data: {str(path)!r} gives neither fl_x nor camera_angle_x")
            fy = get("fl_y", 0.0) * s or fx
            cx, cy = get("cx", w / s / 2) * s, get("cy", h / s / 2) * s
            c2w = np.asarray(fr["transform_matrix"], dtype=np.float64) @ np.diag([1.0, -1.0, -1.0, 1.0])  # GL -> CV
            if len(splits) == 2 and k == 1:
                test.append(len(imgs))
            imgs.append(img)
            Vs.append(torch.from_numpy(np.linalg.inv(c2w)))
            Ks.append(torch.tensor([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], dtype=torch.float64))
            names.append(fp.name)
    if len(splits) == 1:
        test = _every(len(imgs))
    return SplatData(torch.stack(imgs), torch.stack(Vs).float(), torch.stack(Ks).float(), torch.zeros(0, 3),
                     torch.zeros(0, 3), test, tuple(background), names)


def cow_views(n_train: int = 50, n_test: int = 10, size: int = 256, *, supersample: int = 2, n_points: int = 3000,
              seed: int = 0) -> SplatData:
    """The bundled textured cow, rendered by diffras's mesh renderer (hard Phong under a headlight,
    ``supersample``x supersampled then box-filtered) from ``n_train`` + ``n_test`` cameras on two disjoint
    Fibonacci spirals, on white. Its sparse points stand in for SfM: ``n_points`` samples of the surface,
    grey (the colours are left to training)."""
    from ..cameras import opencv_from_cameras
    from ..data import load_cow
    from ..ops import sample_points_from_meshes
    from ..workflows.scene import normalize_to_unit_sphere, render_views
    from ..cameras import sphere_cameras

    mesh = normalize_to_unit_sphere(load_cow())
    cams = [sphere_cameras(n_train, dist=2.7, fov=45.0), sphere_cameras(n_test, dist=2.7, fov=45.0, phase=1.0)]
    images, Vs, Ks = [], [], []
    with torch.no_grad():
        for c in cams:
            for i in range(len(c)):  # one view at a time keeps memory flat
                rgba = render_views(mesh, c[i:i + 1], size * supersample)[0]
                rgba = torch.nn.functional.avg_pool2d(rgba.permute(2, 0, 1)[None], supersample)[0].permute(1, 2, 0)
                images.append(rgba[..., :3] * rgba[..., 3:] + (1 - rgba[..., 3:]))
            R, t, K = opencv_from_cameras(c, image_size=(size, size))
            V = torch.eye(4).repeat(len(c), 1, 1)
            V[:, :3, :3], V[:, :3, 3] = R, t
            K = K.clone()
            K[:, :2, 2] += 0.5  # OpenCV centres pixels at integers, gsplat at +0.5
            Vs.append(V)
            Ks.append(K)
        torch.manual_seed(seed)
        pts = sample_points_from_meshes(mesh, n_points)[0]
    return SplatData(torch.stack(images).clamp(0, 1), torch.cat(Vs), torch.cat(Ks), pts, torch.full_like(pts, 0.5),
                     list(range(n_train, n_train + n_test)), (1.0, 1.0, 1.0))


def load_views(path, *, size: Optional[int] = None) -> SplatData:
    """A COLMAP folder or a NeRF ``transforms.json`` folder, by what it contains."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"data: {str(path)!r} does not exist")
    if path.is_file() and path.name.startswith("transforms"):
        path = path.parent
    if (path / "transforms.json").is_file() or (path / "transforms_train.json").is_file():
        return load_nerf_views(path, size=size)
    return load_colmap_views(path, size=size)
