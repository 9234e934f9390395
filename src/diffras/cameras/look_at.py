"""Look-at helpers, as PyTorch3D's: place a camera on a sphere around a point, facing it.

The camera's view frame has +Z along the viewing direction (from the camera to ``at``), +Y as close
to ``up`` as possible and +X = Y x Z, which points to the camera's left (PyTorch3D's view space).
With ``elev = azim = 0`` the camera sits on the world +Z axis at distance ``dist`` looking at the origin.
"""
from __future__ import annotations

import math
from typing import Tuple

import torch

from .base import batch_params

__all__ = ["camera_position_from_spherical_angles", "look_at_rotation", "look_at_view_transform"]

# Below this (relative) length a cross product counts as zero: the frame is undefined.
_DEGENERATE = 1e-5


def camera_position_from_spherical_angles(distance, elevation, azimuth, degrees: bool = True, device=None) -> torch.Tensor:
    """(N, 3) positions ``dist * (cos(elev) sin(azim), sin(elev), cos(elev) cos(azim))``.

    Elevation is the angle above the XZ plane, azimuth the angle about +Y from +Z towards +X.
    Each argument is a number, an (N,) sequence or tensor; batch sizes 1 broadcast.
    """
    _, p = batch_params(device, {"distance": (distance, ()), "elevation": (elevation, ()), "azimuth": (azimuth, ())})
    elev, azim = p["elevation"], p["azimuth"]
    if degrees:
        elev, azim = elev * (math.pi / 180.0), azim * (math.pi / 180.0)
    d = p["distance"]
    return torch.stack((d * torch.cos(elev) * torch.sin(azim), d * torch.sin(elev), d * torch.cos(elev) * torch.cos(azim)), 1)


def _unit(v: torch.Tensor, name: str, why: str) -> torch.Tensor:
    n = v.norm(dim=1, keepdim=True)
    if bool((n < _DEGENERATE).any()):
        raise ValueError(f"{name}: expected {why}, got a degenerate configuration at batch index {int((n[:, 0] < _DEGENERATE).nonzero()[0, 0])}")
    return v / n


def look_at_rotation(camera_position, at=((0.0, 0.0, 0.0),), up=((0.0, 1.0, 0.0),), device=None) -> torch.Tensor:
    """World-to-view rotations (N, 3, 3) for cameras at ``camera_position`` looking at ``at``.

    Args:
        camera_position, at, up: (N, 3) or (3,) each (numbers, sequences or tensors), broadcast.

    Returns:
        R whose columns are the camera's X (left), Y (up) and Z (forward) axes in world coordinates,
        so that ``X_view = (X_world - C) @ R``. Raises ``ValueError`` if the camera is at ``at`` or
        ``up`` is parallel to the viewing direction (the frame is then undefined).
    """
    _, p = batch_params(device, {"camera_position": (camera_position, (3,)), "at": (at, (3,)), "up": (up, (3,))})
    c, a, u = p["camera_position"], p["at"], p["up"]
    z = _unit(a - c, "camera_position", "a camera position different from `at`")
    u = _unit(u, "up", "a non-zero up vector")
    # Looking along `up` (e.g. elev = +-90 with the default up) leaves the frame undefined: say so
    # rather than return a degenerate matrix; pass another `up` for such views.
    x = _unit(torch.cross(u, z, dim=1), "up", "an up vector not parallel to the viewing direction")
    y = torch.cross(z, x, dim=1)  # unit already: z and x are orthonormal
    return torch.stack((x, y, z), 2)


def look_at_view_transform(
    dist=1.0,
    elev=0.0,
    azim=0.0,
    degrees: bool = True,
    eye=None,
    at=((0.0, 0.0, 0.0),),
    up=((0.0, 1.0, 0.0),),
    device=None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """(R, T) of cameras looking at ``at``, as PyTorch3D's ``look_at_view_transform``.

    The camera sits at ``eye`` if given, else at ``at + camera_position_from_spherical_angles(dist,
    elev, azim)``. Returns ``R`` (N, 3, 3) from :func:`look_at_rotation` and ``T = -C @ R`` (N, 3),
    so that the camera centre C maps to the view-space origin.
    """
    if eye is not None:
        _, p = batch_params(device, {"eye": (eye, (3,)), "at": (at, (3,)), "up": (up, (3,))})
        C, at_t, up_t = p["eye"], p["at"], p["up"]
    else:
        _, p = batch_params(
            device, {"dist": (dist, ()), "elev": (elev, ()), "azim": (azim, ()), "at": (at, (3,)), "up": (up, (3,))}
        )
        at_t, up_t = p["at"], p["up"]
        C = camera_position_from_spherical_angles(p["dist"], p["elev"], p["azim"], degrees=degrees) + at_t
    R = look_at_rotation(C, at_t, up_t)
    T = -(C[:, None, :] @ R)[:, 0, :]
    return R, T
