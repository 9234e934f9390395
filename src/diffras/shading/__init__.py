"""Shading: textures, lights, materials, per-fragment lighting, blending and shaders.

Two tiers over the same code: functions on plain tensors and :class:`~diffras.raster.Fragments`
(``interpolate_face_attributes``, ``phong_shading``, ``softmax_rgb_blend``, ...) and nn.Module shaders that
compose them (``SoftPhongShader``, ...). See docs/conventions.md for shape symbols and coordinate frames;
lights and shading live in world space.
"""
from .antialias_shader import AntialiasedHardPhongShader, AntialiasedShader, antialias_fragments
from .blending import BlendParams, hard_rgb_blend, sigmoid_alpha_blend, softmax_rgb_blend
from ..textures.interpolate import interpolate_face_attributes
from .lighting import AmbientLights, DirectionalLights, PointLights, SpotLights, diffuse, specular
from .materials import Materials
from .shade import flat_shading, gouraud_shading, phong_shading
from .shaders import (
    HardDepthShader,
    HardFlatShader,
    HardGouraudShader,
    HardPhongShader,
    NormalShader,
    ShaderBase,
    SoftDepthShader,
    SoftGouraudShader,
    SoftPhongShader,
    SoftSilhouetteShader,
)
from .soft_blur import soft_blur_radius
from ..textures import TexturesAtlas, TexturesUV, TexturesVertex

__all__ = [
    "AmbientLights",
    "AntialiasedHardPhongShader",
    "AntialiasedShader",
    "BlendParams",
    "DirectionalLights",
    "HardDepthShader",
    "HardFlatShader",
    "HardGouraudShader",
    "HardPhongShader",
    "Materials",
    "NormalShader",
    "PointLights",
    "ShaderBase",
    "SoftDepthShader",
    "SoftGouraudShader",
    "SoftPhongShader",
    "SoftSilhouetteShader",
    "SpotLights",
    "TexturesAtlas",
    "TexturesUV",
    "TexturesVertex",
    "antialias_fragments",
    "diffuse",
    "flat_shading",
    "gouraud_shading",
    "hard_rgb_blend",
    "interpolate_face_attributes",
    "phong_shading",
    "sigmoid_alpha_blend",
    "soft_blur_radius",
    "softmax_rgb_blend",
    "specular",
]
