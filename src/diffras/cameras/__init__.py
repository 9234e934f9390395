"""Cameras (PyTorch3D's conventions and semantics), look-at helpers and convention conversions."""
from .base import CamerasBase, get_ndc_to_screen_transform, get_screen_to_ndc_transform, join_cameras_as_batch
from .conversions import cameras_from_opencv, cameras_from_opengl, opencv_from_cameras, opengl_from_cameras
from .deprecated import OpenGLOrthographicCameras, OpenGLPerspectiveCameras, SfMOrthographicCameras, SfMPerspectiveCameras
from .fov import FoVOrthographicCameras, FoVPerspectiveCameras
from .look_at import camera_position_from_spherical_angles, look_at_rotation, look_at_view_transform
from .sfm import OrthographicCameras, PerspectiveCameras
from .sphere_cameras import sphere_cameras

__all__ = [
    "CamerasBase",
    "FoVOrthographicCameras",
    "FoVPerspectiveCameras",
    "OpenGLOrthographicCameras",
    "OpenGLPerspectiveCameras",
    "OrthographicCameras",
    "PerspectiveCameras",
    "SfMOrthographicCameras",
    "SfMPerspectiveCameras",
    "camera_position_from_spherical_angles",
    "cameras_from_opencv",
    "cameras_from_opengl",
    "get_ndc_to_screen_transform",
    "get_screen_to_ndc_transform",
    "join_cameras_as_batch",
    "look_at_rotation",
    "look_at_view_transform",
    "opencv_from_cameras",
    "opengl_from_cameras",
    "sphere_cameras",
]
