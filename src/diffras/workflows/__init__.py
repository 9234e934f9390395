"""End-to-end inverse-rendering workflows behind the ``diffras`` commands: fit a mesh, recover a camera,
optimise a texture, render views. Each is a plain function over the public API, usable from Python."""
from .commands import run_fit, run_pose, run_render, run_texture
from .fit import FitConfig, FitResult, evaluate_fit, fit_mesh
from .outputs import OutputDir, check_writable
from .pose import PoseConfig, PoseResult, camera_from_eye, fit_pose, rotation_error_deg
from .scene import (
    make_renderer,
    normalize_to_unit_sphere,
    orbit_cameras,
    render_views,
    soft_blur_radius,
    with_default_colors,
)
from .texture import TextureConfig, TextureResult, fit_texture, load_views, save_views
from .views import sphere_cameras

__all__ = [
    "FitConfig",
    "FitResult",
    "OutputDir",
    "PoseConfig",
    "PoseResult",
    "TextureConfig",
    "TextureResult",
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
    "render_views",
    "rotation_error_deg",
    "run_fit",
    "run_pose",
    "run_render",
    "run_texture",
    "save_views",
    "soft_blur_radius",
    "sphere_cameras",
    "with_default_colors",
]
