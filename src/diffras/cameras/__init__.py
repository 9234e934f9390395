"""Cameras (PyTorch3D's conventions and semantics), look-at helpers and convention conversions."""
from .base import CamerasBase, get_ndc_to_screen_transform, get_screen_to_ndc_transform
from .fov import FoVOrthographicCameras, FoVPerspectiveCameras
from .look_at import camera_position_from_spherical_angles, look_at_rotation, look_at_view_transform

__all__ = [
    "CamerasBase",
    "FoVOrthographicCameras",
    "FoVPerspectiveCameras",
    "camera_position_from_spherical_angles",
    "get_ndc_to_screen_transform",
    "get_screen_to_ndc_transform",
    "look_at_rotation",
    "look_at_view_transform",
]
