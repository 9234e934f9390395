"""End-to-end inverse-rendering workflows behind the ``diffras`` commands: fit a mesh, recover a camera,
optimise a texture, render views. Each is a plain function over the public API, usable from Python.

The command-line runners live in :mod:`diffras.cli`. ``normalize_to_unit_sphere`` (now in ``diffras.ops``),
``sphere_cameras`` (``diffras.cameras``) and ``soft_blur_radius`` (``diffras.shading``) are re-exported here
for code written before they moved."""
from .fit import FitConfig, FitResult, evaluate_fit, fit_mesh
from .outputs import OutputDir, check_writable
from .pose import PoseConfig, PoseResult, camera_from_eye, fit_pose, rotation_error_deg
from ..cameras import sphere_cameras  # re-exported: it lived here before diffras.cameras
from .scene import (
    box_downsample,
    make_renderer,
    normalize_to_unit_sphere,
    orbit_cameras,
    render_antialiased,
    render_views,
    soft_blur_radius,
    with_default_colors,
)
from .texture import TextureConfig, TextureResult, fit_texture, load_views, save_views

__all__ = [
    "FitConfig",
    "FitResult",
    "OutputDir",
    "PoseConfig",
    "PoseResult",
    "TextureConfig",
    "TextureResult",
    "box_downsample",
    "camera_from_eye",
    "check_writable",
    "evaluate_fit",
    "fit_mesh",
    "fit_pose",
    "fit_texture",
    "load_views",
    "make_renderer",
    "normalize_to_unit_sphere",
    "orbit_cameras",
    "render_antialiased",
    "render_views",
    "rotation_error_deg",
    "save_views",
    "soft_blur_radius",
    "sphere_cameras",
    "with_default_colors",
]
