"""Camera sets spread over a sphere: evenly spread views for training, a disjoint set for evaluation."""
from __future__ import annotations

import math
from typing import Optional

import torch

from .fov import FoVPerspectiveCameras
from .look_at import look_at_view_transform

__all__ = ["sphere_cameras"]

_GOLDEN_ANGLE = math.pi * (3.0 - math.sqrt(5.0))


def sphere_cameras(
    n: int,
    *,
    dist: float = 2.7,
    fov: float = 60.0,
    phase: float = 0.0,
    max_abs_elev: float = 75.0,
    device: Optional[torch.device] = None,
    dtype: torch.dtype = torch.float32,
) -> FoVPerspectiveCameras:
    """``n`` cameras on a Fibonacci spiral around the origin, all looking at it.

    The spiral spreads views evenly over the sphere (unlike an azimuth ring, it sees the top and the
    bottom of an object), limited to ``|elevation| <= max_abs_elev`` degrees so that the look-at up vector
    (+Y) never becomes parallel to the viewing direction. ``phase`` (radians) rotates the spiral in
    azimuth: a training set with ``phase=0`` and an evaluation set with another phase share no view.

    Returns:
        ``FoVPerspectiveCameras`` with batch size n.
    """
    i = torch.arange(n, dtype=torch.float64) + 0.5
    sin_max = math.sin(math.radians(max_abs_elev))
    y = (1.0 - 2.0 * i / n) * sin_max  # sine of the elevation, evenly spaced: equal-area bands
    elev = torch.rad2deg(torch.asin(y))
    azim = torch.rad2deg(torch.remainder(i * _GOLDEN_ANGLE + phase, 2 * math.pi)) - 180.0
    R, T = look_at_view_transform(dist=dist, elev=elev.to(dtype), azim=azim.to(dtype), device=device)
    return FoVPerspectiveCameras(R=R, T=T, fov=fov, device=device)
