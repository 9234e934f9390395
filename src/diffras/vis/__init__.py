"""Output helpers: save images and batches as PNG, tile a batch into a grid, write turntables, composite.

Images are ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` (RGB) or ``(H, W, 4)`` (RGBA) floats in [0, 1] — torch
tensors (any device; detached here) or numpy arrays — with row 0 the top of the image (docs/conventions.md).
Values are clamped to [0, 1] and rounded to 8 bits when written. Pillow (a core dependency) writes PNG and
GIF; MP4 needs the optional ``imageio`` and ``imageio-ffmpeg`` packages, imported only when asked for.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, List, Optional, Sequence, Union

import numpy as np
import torch

__all__ = [
    "composite",
    "depth_image",
    "image_grid",
    "save_image",
    "save_images",
    "save_turntable",
    "texture_vis",
    "texturesuv_image_PIL",
    "texturesuv_image_matplotlib",
]

PathLike = Union[str, Path]


def _to_numpy(image: Any, name: str, *, batch: bool = False) -> np.ndarray:
    if isinstance(image, torch.Tensor):
        if not image.is_floating_point():
            raise TypeError(f"{name}: expected a floating-point image in [0, 1], got dtype {image.dtype}")
        arr = image.detach().to("cpu", torch.float32).numpy()
    elif isinstance(image, np.ndarray):
        if not np.issubdtype(image.dtype, np.floating):
            raise TypeError(f"{name}: expected a floating-point image in [0, 1], got dtype {image.dtype}")
        arr = image.astype(np.float32, copy=False)
    else:
        raise TypeError(f"{name}: expected a torch.Tensor or numpy array, got {type(image).__name__}")
    lead = 1 if batch else 0
    if arr.ndim == 2 + lead:
        arr = arr[..., None]
    if arr.ndim != 3 + lead or arr.shape[-1] not in (1, 3, 4):
        want = "(N, H, W, C)" if batch else "(H, W) or (H, W, C)"
        raise ValueError(f"{name}: expected shape {want} with C in (1, 3, 4), got {tuple(arr.shape)}")
    if arr.size and not np.isfinite(arr).all():
        raise ValueError(f"{name}: expected finite values, got {int((~np.isfinite(arr)).sum())} NaN/inf entries")
    if arr.shape[-2] == 0 or arr.shape[-3] == 0:
        raise ValueError(f"{name}: expected a non-empty image, got shape {tuple(arr.shape)}")
    return arr


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    return np.round(np.clip(arr, 0.0, 1.0) * 255.0).astype(np.uint8)


def _pil(arr: np.ndarray):
    from PIL import Image

    u8 = _to_uint8(arr)
    return Image.fromarray(u8[..., 0] if u8.shape[-1] == 1 else u8)


def save_image(path: PathLike, image: Any) -> Path:
    """Write one image as PNG (grey, RGB or RGBA by its channel count); creates parent folders.

    Args:
        path: file name (``.png``).
        image: (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) float in [0, 1].

    Returns:
        the path written.
    """
    arr = _to_numpy(image, "image")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _pil(arr).save(path, format="PNG")
    return path


def save_images(pattern: PathLike, images: Any) -> List[Path]:
    """Write each image of a batch as a PNG.

    Args:
        pattern: a format string with ``{i}`` (e.g. ``"out/view_{i:03d}.png"``), or a folder (files
            ``image_000.png``, ``image_001.png``, ... inside it).
        images: (N, H, W) or (N, H, W, C) float in [0, 1].

    Returns:
        the N paths written, in batch order.
    """
    arr = _to_numpy(images, "images", batch=True)
    pattern = str(pattern)
    if "{" not in pattern:
        pattern = str(Path(pattern) / "image_{i:03d}.png")
    return [save_image(pattern.format(i=i), a) for i, a in enumerate(arr)]


def image_grid(images: Any, rows: Optional[int] = None, cols: Optional[int] = None, *,
               fill: float = 0.0) -> torch.Tensor:
    """Tile a batch into one image, row-major (image i at row ``i // cols``, column ``i % cols``).

    Args:
        images: (N, H, W, C) tensor or array.
        rows, cols: grid size; with one given the other is ``ceil(N / given)``; with neither,
            ``cols = ceil(sqrt(N))`` and ``rows = ceil(N / cols)``. ``rows * cols`` must be >= N.
        fill: value of empty cells (0: black, and transparent for RGBA).

    Returns:
        (rows * H, cols * W, C) tensor (on the input's device for tensors; differentiable).
    """
    t = images if isinstance(images, torch.Tensor) else torch.as_tensor(np.asarray(images))
    if t.dim() != 4:
        raise ValueError(f"images: expected shape (N, H, W, C), got {tuple(t.shape)}")
    N, H, W, C = t.shape
    if N == 0:
        raise ValueError("images: expected at least one image, got N = 0")
    for name, v in (("rows", rows), ("cols", cols)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ValueError(f"{name}: expected an int >= 1, got {v!r}")
    if rows is None and cols is None:
        cols = math.ceil(math.sqrt(N))
    if rows is None:
        rows = math.ceil(N / cols)
    if cols is None:
        cols = math.ceil(N / rows)
    if rows * cols < N:
        raise ValueError(f"rows, cols: expected rows * cols >= {N} (the number of images), got {rows} x {cols}")
    pad = t.new_full((rows * cols - N, H, W, C), fill)
    cells = torch.cat([t, pad], 0).reshape(rows, cols, H, W, C)
    return cells.permute(0, 2, 1, 3, 4).reshape(rows * H, cols * W, C)


def composite(rgba: Any, background: Any = (1.0, 1.0, 1.0)) -> torch.Tensor:
    """Alpha-composite RGBA over a background: ``rgb * a + background * (1 - a)`` (straight alpha).

    Args:
        rgba: (*, H, W, 4) tensor (e.g. a renderer's output).
        background: a colour (3 numbers or a (3,) tensor) or an image broadcastable to (*, H, W, 3).

    Returns:
        (*, H, W, 3), differentiable w.r.t. both inputs.
    """
    if not isinstance(rgba, torch.Tensor):
        rgba = torch.as_tensor(np.asarray(rgba))
    if not rgba.is_floating_point() or rgba.dim() < 3 or rgba.shape[-1] != 4:
        raise ValueError(f"rgba: expected a float tensor of shape (*, H, W, 4), got {tuple(rgba.shape)} {rgba.dtype}")
    bg = background if isinstance(background, torch.Tensor) else torch.tensor(background, dtype=rgba.dtype)
    bg = bg.to(device=rgba.device, dtype=rgba.dtype)
    if bg.shape[-1] != 3:
        raise ValueError(f"background: expected 3 channels (an RGB colour or image), got shape {tuple(bg.shape)}")
    if not bool(torch.isfinite(bg).all()):
        raise ValueError("background: expected finite values")
    alpha = rgba[..., 3:]
    return rgba[..., :3] * alpha + bg * (1.0 - alpha)


def depth_image(depth: torch.Tensor, near: float, far: float, *, nearest: float = 1.0,
                farthest: float = 0.2) -> torch.Tensor:
    """A depth map made viewable: RGBA, grey from ``nearest`` at depth ``near`` to ``farthest`` at ``far``.

    Args:
        depth: (*, H, W, 1) or (*, H, W) view-space depth, as from ``HardDepthShader`` (whose background is
            ``zfar``, far beyond any surface).
        near, far: the depth range to map, ``0 < near < far`` (e.g. ``dist -/+ 1`` for a unit-sphere mesh seen
            from ``dist``, so every view of a turntable uses the same scale).

    Returns:
        (*, H, W, 4): alpha 1 where ``0 < depth <= far``, 0 elsewhere (the background, transparent). Box-filter
        it as RGBA (premultiplied, e.g. ``box_downsample``) to antialias, never the raw depth: averaging a
        surface's depth with ``zfar`` gives depths no surface has.
    """
    if not isinstance(depth, torch.Tensor) or not depth.is_floating_point():
        raise TypeError(f"depth: expected a floating-point tensor, got {type(depth).__name__}")
    if not (0.0 < near < far):
        raise ValueError(f"near, far: expected 0 < near < far, got near={near}, far={far}")
    if depth.dim() >= 3 and depth.shape[-1] == 1:
        depth = depth[..., 0]
    covered = (depth > 0) & (depth <= far)
    t = ((depth - near) / (far - near)).clamp(0.0, 1.0)
    grey = nearest + (farthest - nearest) * t
    rgb = torch.where(covered, grey, torch.zeros_like(grey)).unsqueeze(-1).expand(*grey.shape, 3)
    return torch.cat([rgb, covered.to(depth.dtype).unsqueeze(-1)], dim=-1)


def save_turntable(path: PathLike, images: Any, fps: float = 24.0, *,
                   background: Sequence[float] = (1.0, 1.0, 1.0), loop: int = 0) -> Path:
    """Write a batch of frames as an animation: ``.gif`` (Pillow) or ``.mp4`` (imageio + imageio-ffmpeg).

    Args:
        path: output file; the suffix picks the format.
        images: (N, H, W, C) frames in [0, 1]; RGBA frames are composited over ``background`` first
            (neither GIF nor MP4 keeps a useful alpha channel).
        fps: frames per second (> 0).
        loop: GIF loop count (0: forever).

    Returns:
        the path written.

    Raises:
        ImportError: for ``.mp4`` when imageio or its ffmpeg plugin is missing, saying what to install.
    """
    arr = _to_numpy(images, "images", batch=True)
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps: expected a positive number, got {fps!r}")
    if arr.shape[-1] == 4:
        arr = composite(torch.from_numpy(arr), background).numpy()
    elif arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".gif", ".mp4"):
        raise ValueError(f"path: expected a .gif or .mp4 file name, got {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = _to_uint8(arr)
    if suffix == ".gif":
        from PIL import Image

        pil = [Image.fromarray(f) for f in frames]
        pil[0].save(path, format="GIF", save_all=True, append_images=pil[1:],
                    duration=max(1, round(1000.0 / fps)), loop=loop)
        return path
    try:
        import imageio.v2 as imageio
        import imageio_ffmpeg  # noqa: F401  (the plugin imageio uses for mp4)
    except ImportError as e:
        raise ImportError(
            "save_turntable: writing .mp4 needs the optional packages imageio and imageio-ffmpeg "
            "(pip install imageio imageio-ffmpeg); write a .gif instead to use Pillow only"
        ) from e
    with imageio.get_writer(str(path), fps=fps, codec="libx264", macro_block_size=1) as writer:
        for f in frames:
            writer.append_data(f)
    return path


# PyTorch3D's texture plots (``pytorch3d.vis.texture_vis``); imported last, they use nothing above.
from . import texture_vis  # noqa: E402
from .texture_vis import texturesuv_image_PIL, texturesuv_image_matplotlib  # noqa: E402
