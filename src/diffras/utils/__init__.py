"""PyTorch3D's ``pytorch3d.utils`` names, as aliases of diffras's own functions.

``cameras_from_opencv_projection`` / ``opencv_from_cameras_projection`` are
:func:`diffras.cameras.cameras_from_opencv` / :func:`~diffras.cameras.opencv_from_cameras` (same arguments;
diffras puts OpenCV pixel centres at integers, half a pixel from PyTorch3D: docs/conventions.md).
"""
from ..cameras import cameras_from_opencv as cameras_from_opencv_projection
from ..cameras import opencv_from_cameras as opencv_from_cameras_projection
from ..ops import ico_sphere

__all__ = ["cameras_from_opencv_projection", "ico_sphere", "opencv_from_cameras_projection"]
