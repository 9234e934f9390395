"""PyTorch3D's deprecated camera names, kept so that older PyTorch3D code runs unchanged.

Each is a function returning the current class, with PyTorch3D's argument names (including the
OpenGL orthographic camera's ``top/bottom/left/right``), and a ``PendingDeprecationWarning`` as PyTorch3D.
"""
from __future__ import annotations

import warnings

from .fov import FoVOrthographicCameras, FoVPerspectiveCameras
from .sfm import OrthographicCameras, PerspectiveCameras

__all__ = ["OpenGLOrthographicCameras", "OpenGLPerspectiveCameras", "SfMOrthographicCameras", "SfMPerspectiveCameras"]


def _deprecated(old: str, new: str) -> None:
    warnings.warn(f"{old} is deprecated (as in PyTorch3D); use {new} instead", PendingDeprecationWarning, stacklevel=3)


def OpenGLPerspectiveCameras(znear=1.0, zfar=100.0, aspect_ratio=1.0, fov=60.0, degrees: bool = True, R=None, T=None,
                             device=None) -> FoVPerspectiveCameras:
    """Deprecated alias: ``FoVPerspectiveCameras`` with the same arguments."""
    _deprecated("OpenGLPerspectiveCameras", "FoVPerspectiveCameras")
    return FoVPerspectiveCameras(znear=znear, zfar=zfar, aspect_ratio=aspect_ratio, fov=fov, degrees=degrees, R=R,
                                 T=T, device=device)


def OpenGLOrthographicCameras(znear=1.0, zfar=100.0, top=1.0, bottom=-1.0, left=-1.0, right=1.0,
                              scale_xyz=((1.0, 1.0, 1.0),), R=None, T=None, device=None) -> FoVOrthographicCameras:
    """Deprecated alias: ``FoVOrthographicCameras(max_y=top, min_y=bottom, max_x=right, min_x=left, ...)``."""
    _deprecated("OpenGLOrthographicCameras", "FoVOrthographicCameras")
    return FoVOrthographicCameras(znear=znear, zfar=zfar, max_y=top, min_y=bottom, max_x=right, min_x=left,
                                  scale_xyz=scale_xyz, R=R, T=T, device=device)


def SfMPerspectiveCameras(focal_length=1.0, principal_point=((0.0, 0.0),), R=None, T=None,
                          device=None) -> PerspectiveCameras:
    """Deprecated alias: ``PerspectiveCameras`` with the same arguments (NDC intrinsics)."""
    _deprecated("SfMPerspectiveCameras", "PerspectiveCameras")
    return PerspectiveCameras(focal_length=focal_length, principal_point=principal_point, R=R, T=T, device=device)


def SfMOrthographicCameras(focal_length=1.0, principal_point=((0.0, 0.0),), R=None, T=None,
                           device=None) -> OrthographicCameras:
    """Deprecated alias: ``OrthographicCameras`` with the same arguments (NDC intrinsics)."""
    _deprecated("SfMOrthographicCameras", "OrthographicCameras")
    return OrthographicCameras(focal_length=focal_length, principal_point=principal_point, R=R, T=T, device=device)
