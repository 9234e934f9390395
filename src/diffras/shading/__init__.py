"""Shading: lights, materials, blending (and, as they land, textures and shaders).

Everything here works on plain tensors and :class:`~diffras.raster.Fragments`; see docs/conventions.md for
shape symbols and coordinate frames (lights live in world space).
"""
from .blending import BlendParams, hard_rgb_blend, sigmoid_alpha_blend, softmax_rgb_blend
from .lighting import AmbientLights, DirectionalLights, PointLights, SpotLights, diffuse, specular
from .materials import Materials

__all__ = [
    "AmbientLights",
    "BlendParams",
    "DirectionalLights",
    "Materials",
    "PointLights",
    "SpotLights",
    "diffuse",
    "hard_rgb_blend",
    "sigmoid_alpha_blend",
    "softmax_rgb_blend",
    "specular",
]
