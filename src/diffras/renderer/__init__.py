"""PyTorch3D's ``pytorch3d.renderer`` names, as aliases of diffras's own packages (no second implementation).

``from diffras.renderer import MeshRenderer, RasterizationSettings, ...`` lets PyTorch3D code run with only the
import renamed. The classes are diffras's: see ``diffras.cameras``, ``diffras.raster``, ``diffras.shading`` and
``diffras.render`` for their documentation, and docs/conventions.md for the differences that remain.
"""
from ..cameras import (
    CamerasBase,
    FoVOrthographicCameras,
    FoVPerspectiveCameras,
    OpenGLOrthographicCameras,
    OpenGLPerspectiveCameras,
    OrthographicCameras,
    PerspectiveCameras,
    SfMOrthographicCameras,
    SfMPerspectiveCameras,
    camera_position_from_spherical_angles,
    join_cameras_as_batch,
    look_at_rotation,
    look_at_view_transform,
)
from ..raster import Fragments, MeshRasterizer, RasterSettings, rasterize_meshes
from ..render import MeshRenderer, MeshRendererWithFragments
from ..shading import (
    AmbientLights,
    BlendParams,
    DirectionalLights,
    HardFlatShader,
    HardGouraudShader,
    HardPhongShader,
    Materials,
    PointLights,
    SoftGouraudShader,
    SoftPhongShader,
    SoftSilhouetteShader,
    TexturesAtlas,
    TexturesUV,
    TexturesVertex,
    diffuse,
    gouraud_shading,
    hard_rgb_blend,
    interpolate_face_attributes,
    phong_shading,
    sigmoid_alpha_blend,
    softmax_rgb_blend,
    specular,
)
from . import cameras

#: PyTorch3D's name for :class:`diffras.raster.RasterSettings` (same fields, same defaults).
RasterizationSettings = RasterSettings

__all__ = [
    "AmbientLights",
    "BlendParams",
    "CamerasBase",
    "DirectionalLights",
    "FoVOrthographicCameras",
    "FoVPerspectiveCameras",
    "Fragments",
    "HardFlatShader",
    "HardGouraudShader",
    "HardPhongShader",
    "Materials",
    "MeshRasterizer",
    "MeshRenderer",
    "MeshRendererWithFragments",
    "OpenGLOrthographicCameras",
    "OpenGLPerspectiveCameras",
    "OrthographicCameras",
    "PerspectiveCameras",
    "PointLights",
    "RasterizationSettings",
    "SfMOrthographicCameras",
    "SfMPerspectiveCameras",
    "SoftGouraudShader",
    "SoftPhongShader",
    "SoftSilhouetteShader",
    "TexturesAtlas",
    "TexturesUV",
    "TexturesVertex",
    "camera_position_from_spherical_angles",
    "cameras",
    "diffuse",
    "gouraud_shading",
    "hard_rgb_blend",
    "interpolate_face_attributes",
    "join_cameras_as_batch",
    "look_at_rotation",
    "look_at_view_transform",
    "phong_shading",
    "rasterize_meshes",
    "sigmoid_alpha_blend",
    "softmax_rgb_blend",
    "specular",
]
