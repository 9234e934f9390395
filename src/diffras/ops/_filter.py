"""Separable Gaussian filtering of image batches (SSIM's window, the pose workflow's image blur)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def gaussian_filter(x: torch.Tensor, sigma: float, radius: int, *, replicate: bool = False) -> torch.Tensor:
    """Filter ``x`` (B, C, H, W) by a normalised Gaussian of ``sigma`` pixels truncated at ``radius``, as two
    1D passes (one grouped conv each).

    ``replicate=False``: valid convolution, (B, C, H - 2 radius, W - 2 radius); ``True``: edges replicated
    first, same size as ``x``. Differentiable w.r.t. ``x``.
    """
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    g = torch.exp(-(t ** 2) / (2 * sigma ** 2))
    g = g / g.sum()
    n, w = x.shape[1], 2 * radius + 1
    if replicate:
        x = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    x = F.conv2d(x, g.view(1, 1, 1, w).expand(n, 1, 1, w), groups=n)
    return F.conv2d(x, g.view(1, 1, w, 1).expand(n, 1, w, 1), groups=n)
