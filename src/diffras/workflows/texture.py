"""Optimise a UV texture map from images taken by known cameras.

The geometry and its UV layout are known; only the texels are unknown. Every view is rasterized once
(K = 1: the geometry does not move, so visibility is fixed) and the texture map is fitted by Adam to the
images through differentiable bilinear (mip-mapped) sampling and Phong shading.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import torch

from .. import distributed
from ..cameras import FoVPerspectiveCameras
from ..losses import psnr
from ..raster import MeshRasterizer, RasterSettings
from ..shading import HardPhongShader, TexturesUV
from ..structures import Meshes
from .scene import headlight, render_views

__all__ = ["TextureConfig", "TextureResult", "fit_texture", "load_views", "save_views"]


@dataclass
class TextureConfig:
    image_size: int = 256
    texture_size: int = 512
    iters: int = 300
    lr: float = 0.05
    views: int = 24  # synthetic default: training views
    holdout: int = 10  # synthetic default: evaluation views
    views_per_iter: int = 6
    snapshot_every: int = 10
    dist: float = 2.7
    fov: float = 60.0


@dataclass
class TextureResult:
    texture: torch.Tensor  # (Ht, Wt, 3) the optimised map in [0, 1]
    mesh: Meshes  # the mesh with the optimised TexturesUV
    history: Dict[str, List[float]] = field(default_factory=dict)
    snapshots: List[torch.Tensor] = field(default_factory=list)
    metrics: Dict[str, float] = field(default_factory=dict)


def _with_map(mesh: Meshes, texture_map: torch.Tensor) -> Meshes:
    tex = mesh.textures
    uv = TexturesUV(maps=texture_map[None], faces_uvs=tex.faces_uvs_padded(), verts_uvs=tex.verts_uvs_padded())
    return Meshes(mesh.verts_list(), mesh.faces_list(), textures=uv)


def foreground_psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """PSNR (dB) over the pixels that either image covers (alpha > 0.5): (N, H, W, 4) -> (N,).

    The white background is identical in both renders and would inflate a whole-image PSNR."""
    mask = ((pred[..., 3] > 0.5) | (target[..., 3] > 0.5)).float()
    se = ((pred[..., :3] - target[..., :3]) ** 2).sum(-1) * mask
    mse = se.sum((1, 2)) / (3 * mask.sum((1, 2)).clamp_min(1))
    return 10 * torch.log10(1.0 / mse.clamp_min(1e-12))


def fit_texture(
    mesh: Meshes,
    images: torch.Tensor,
    cameras: FoVPerspectiveCameras,
    cfg: Optional[TextureConfig] = None,
    *,
    holdout: Optional[Tuple[torch.Tensor, FoVPerspectiveCameras]] = None,
    progress: Optional[Callable[[int, Dict[str, float]], None]] = None,
    seed: int = 0,
) -> TextureResult:
    """Fit a (texture_size, texture_size, 3) map on ``mesh``'s UV layout to ``images``.

    Args:
        mesh: one mesh with ``TexturesUV`` (its map is replaced; its UVs are kept).
        images: (V, H, W, 4) RGBA or (V, H, W, 3) RGB in [0, 1], one per camera.
        cameras: V cameras.
        holdout: optional (images, cameras) never used for fitting; metrics report PSNR on them.
    """
    cfg = cfg or TextureConfig()
    if not isinstance(mesh.textures, TexturesUV):
        raise ValueError("mesh: expected a mesh with a UV texture layout (TexturesUV), got "
                         f"{type(mesh.textures).__name__ if mesh.textures is not None else 'no texture'}")
    device = mesh.device
    start = time.perf_counter()
    texels = torch.full((cfg.texture_size, cfg.texture_size, 3), 0.5, device=device, requires_grad=True)
    opt = torch.optim.Adam([texels], lr=cfg.lr)
    n_views = len(cameras)
    rast = MeshRasterizer(cameras=cameras, raster_settings=RasterSettings(image_size=images.shape[1:3]))
    # Visibility does not change while only the texture moves: rasterize each view once, when first used
    # (under torchrun a rank rasterizes only the views it renders).
    fragments: Dict[int, object] = {}

    def fragments_of(i: int):
        if i not in fragments:
            with torch.no_grad():
                fragments[i] = rast(mesh, cameras=cameras[i : i + 1])
        return fragments[i]

    ctx = distributed.context()
    gen = torch.Generator().manual_seed(seed)
    history: Dict[str, List[float]] = {}
    snapshots: List[torch.Tensor] = []
    for step in range(cfg.iters):
        distributed.fault_injection(step, ctx)
        idx = torch.randperm(n_views, generator=gen)[: cfg.views_per_iter].tolist()
        textured = _with_map(mesh, texels.clamp(0, 1))
        # Every rank draws the same views and renders its share; dividing by the step's view count makes the
        # ranks' losses (and all-reduced gradients) add up to the single-process ones.
        loss = texels.sum() * 0.0
        img = None
        for i in distributed.shard(idx, ctx):
            cam = cameras[i : i + 1]
            img = HardPhongShader(cameras=cam, lights=headlight(cam))(fragments_of(i), textured)[0, ..., :3]
            loss = loss + ((img - images[i, ..., :3]) ** 2).mean() / len(idx)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        logged, _ = distributed.all_reduce_grads([texels], extra=loss.detach().reshape(1), ctx=ctx)
        opt.step()
        history.setdefault("rgb", []).append(float(logged))
        if img is not None and ctx.is_main and (step % cfg.snapshot_every == 0 or step == cfg.iters - 1):
            snapshots.append(torch.cat([img.detach(), images[distributed.shard(idx, ctx)[-1], ..., :3]], dim=1).cpu())
        if progress is not None:
            progress(step, {"rgb": history["rgb"][-1]})
    final_map = texels.detach().clamp(0, 1)
    final = _with_map(mesh, final_map)
    metrics: Dict[str, float] = {"iterations": cfg.iters, "wall_time_s": round(time.perf_counter() - start, 2)}
    if holdout is not None and ctx.is_main:
        ho_images, ho_cams = holdout
        with torch.no_grad():
            pred = render_views(final, ho_cams, ho_images.shape[1])
        metrics["heldout_psnr_foreground_db"] = float(foreground_psnr(pred, ho_images).mean())
        metrics["heldout_psnr_db"] = float(psnr(pred[..., :3], ho_images[..., :3]).mean())
    metrics["config"] = asdict(cfg)
    return TextureResult(texture=final_map, mesh=final, history=history, snapshots=snapshots, metrics=metrics)


def save_views(folder: Path, images: torch.Tensor, cameras: FoVPerspectiveCameras, fov: float) -> None:
    """Write ``view_XXX.png`` and ``cameras.json`` (the format ``--views`` reads)."""
    from ..vis import save_image

    folder.mkdir(parents=True, exist_ok=True)
    views = []
    for i in range(len(cameras)):
        name = f"view_{i:03d}.png"
        save_image(folder / name, images[i])
        views.append({"image": name, "R": cameras.R[i].tolist(), "T": cameras.T[i].tolist()})
    doc = {"convention": "pytorch3d", "fov_degrees": fov, "views": views}
    (folder / "cameras.json").write_text(json.dumps(doc, indent=2) + "\n")


def load_views(folder: Path, device=None) -> Tuple[torch.Tensor, FoVPerspectiveCameras]:
    """Read a ``--views`` folder: ``cameras.json`` (R (3, 3), T (3,) in PyTorch3D's convention per image,
    ``fov_degrees``) and the images it names (all the same size). Returns ((V, H, W, 4), cameras)."""
    import numpy as np

    from ..io.images import read_image

    folder = Path(folder)
    spec_path = folder / "cameras.json"
    if not spec_path.is_file():
        raise FileNotFoundError(f"--views: {str(spec_path)!r} not found (expected cameras.json beside the images)")
    try:
        spec = json.loads(spec_path.read_text())
        views = spec["views"]
        fov = float(spec.get("fov_degrees", 60.0))
        R = torch.tensor([v["R"] for v in views], dtype=torch.float32)
        T = torch.tensor([v["T"] for v in views], dtype=torch.float32)
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"--views: {str(spec_path)!r} is not a valid cameras file: {e}") from e
    if R.shape[1:] != (3, 3) or T.shape[1:] != (3,) or len(views) == 0:
        raise ValueError(f"--views: {str(spec_path)!r}: expected R (3, 3) and T (3,) for each view")
    imgs = []
    for i, v in enumerate(views):
        if not isinstance(v, dict) or not isinstance(v.get("image"), str):
            raise ValueError(f"--views: {str(spec_path)!r}: view {i} has no \"image\" file name")
        p = folder / v["image"]
        arr = read_image(p, f"--views: image {i}")
        if imgs and arr.shape != imgs[0].shape:
            raise ValueError(f"--views: image {str(p)!r} is {arr.shape[1]}x{arr.shape[0]}, expected "
                             f"{imgs[0].shape[1]}x{imgs[0].shape[0]} like the others")
        imgs.append(arr)
    images = torch.from_numpy(np.stack(imgs)).to(device)
    return images, FoVPerspectiveCameras(R=R, T=T, fov=fov, device=device)
