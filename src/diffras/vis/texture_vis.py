"""Texture-map plots for debugging UV layouts (PyTorch3D's ``pytorch3d.vis.texture_vis``)."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np
import torch

__all__ = ["texture_uv_centers", "texturesuv_image_PIL", "texturesuv_image_matplotlib"]


def texture_uv_centers(texture: Any, index: int = 0) -> torch.Tensor:
    """(T, 2) pixel positions (x right, y down, in the map of mesh ``index``) of its ``verts_uvs``.

    UV (0, 0) is the bottom-left of the image; with ``align_corners=True`` u = 0 and 1 are the centres of the
    first and last columns (``x = u * (W - 1)``), otherwise their outer edges (``x = u * W - 0.5``); likewise
    for v and rows, counted from the bottom. (PyTorch3D's ``TexturesUV.centers_for_image``.)
    """
    maps = texture.maps_list()[index]
    H, W = maps.shape[:2]
    uv = texture.verts_uvs_list()[index].detach().cpu().double()
    if getattr(texture, "align_corners", True):
        x, y = uv[:, 0] * (W - 1), (1.0 - uv[:, 1]) * (H - 1)
    else:
        x, y = uv[:, 0] * W - 0.5, (1.0 - uv[:, 1]) * H - 0.5
    return torch.stack((x, y), 1)


def _indices(n: int, subsample: Optional[int]):
    if subsample is None or n <= subsample:
        return range(n)
    return np.random.default_rng(0).choice(n, subsample, replace=False)


def texturesuv_image_matplotlib(texture: Any, *, texture_index: int = 0, radius: float = 1,
                                color: Any = (1.0, 0.0, 0.0), subsample: Optional[int] = 10000,
                                origin: str = "upper") -> None:
    """Draw mesh ``texture_index``'s texture map on the current matplotlib axes with a circle at every UV.

    Args:
        texture: a ``TexturesUV``. radius: circle radius in pixels. color: a matplotlib colour.
        subsample: plot at most this many UVs (a fixed random subset); None: all.
        origin: "upper" or "lower", as ``matplotlib.pyplot.imshow``.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle

    ax = plt.gca()
    ax.imshow(texture.maps_list()[texture_index].detach().cpu().numpy(), origin=origin)
    centers = texture_uv_centers(texture, texture_index).numpy()
    for i in _indices(centers.shape[0], subsample):
        # clip_on=False shows UVs outside [0, 1] instead of hiding them.
        ax.add_patch(Circle(tuple(centers[i]), radius, color=color, clip_on=False))


def texturesuv_image_PIL(texture: Any, *, texture_index: int = 0, radius: float = 1, color: Any = "red",
                         subsample: Optional[int] = 10000):
    """A ``PIL.Image`` of mesh ``texture_index``'s texture map with a dot at every UV (see the matplotlib one)."""
    from PIL import Image, ImageDraw

    rgb = texture.maps_list()[texture_index].detach().cpu().clamp(0, 1).numpy()
    image = Image.fromarray((rgb[..., :3] * 255 + 0.5).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    centers = texture_uv_centers(texture, texture_index).numpy()
    for i in _indices(centers.shape[0], subsample):
        x, y = centers[i]
        draw.ellipse([(x - radius, y - radius), (x + radius, y + radius)], fill=color)
    return image
