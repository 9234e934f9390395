"""The SoftRas blur radius that matches a softmax/sigmoid blending ``sigma``."""
from __future__ import annotations

import math

from .._validation import check_float

__all__ = ["soft_blur_radius"]


def soft_blur_radius(sigma: float) -> float:
    """The blur radius (squared NDC units) beyond which a face's soft-silhouette weight ``sigmoid(-d / sigma)``
    is below ``sigma``-level noise: ``log(1 / sigma - 1) * sigma``, as SoftRas and PyTorch3D's tutorials use.

    Pass it as ``RasterSettings(blur_radius=soft_blur_radius(sigma))`` with ``BlendParams(sigma=sigma)``.

    Args:
        sigma: the blending sharpness, in (0, 0.5] (above 0.5 the radius would be negative).

    Example:
        >>> round(soft_blur_radius(1e-4), 6)
        0.000921
    """
    sigma = check_float(sigma, "sigma", min=0.0, max=0.5, min_exclusive=True)
    return math.log(1.0 / sigma - 1.0) * sigma
