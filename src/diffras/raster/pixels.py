"""Where pixel centres are in NDC: the one implementation of the convention in docs/conventions.md."""
from __future__ import annotations

from typing import Optional, Tuple

import torch

from ._rule import pixel_center

__all__ = ["pixel_centers_ndc"]


def pixel_centers_ndc(
    image_size: Tuple[int, int],
    *,
    device: Optional[torch.device] = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """NDC (x, y) of every pixel centre, as PyTorch3D places them.

    Args:
        image_size: (H, W).

    Returns:
        (H, W, 2) tensor: ``out[i, j] = (x_ndc, y_ndc)`` with ``x_ndc = (W - 2j - 1) / S`` and
        ``y_ndc = (H - 2i - 1) / S``, ``S = min(H, W)``. Column 0 has the largest x (+X points left),
        row 0 the largest y (+Y points up); the shorter side spans [-1, 1].
    """
    H, W = image_size
    S = float(min(H, W))
    x = pixel_center(torch.arange(W, device=device, dtype=dtype), W, S)
    y = pixel_center(torch.arange(H, device=device, dtype=dtype), H, S)
    return torch.stack(torch.broadcast_tensors(x[None, :], y[:, None]), dim=-1)
