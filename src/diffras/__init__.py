"""diffras: a differentiable mesh renderer for PyTorch.

Pipeline: ``Meshes`` + camera -> project -> visibility (``pix_to_face``) -> differentiable ``Fragments``
-> shade -> blend -> image. Conventions (shapes, coordinate frames) are in ``docs/conventions.md``.

Two tiers over the same code:

- verbs on plain tensors: ``rasterize``, ``interpolate_face_attributes``, texture sampling
  (``TexturesUV.sample_textures``), the blending functions;
- modules that compose them: ``MeshRasterizer``, the shaders, ``MeshRenderer``.

Subpackages: ``structures``, ``io``, ``data``, ``cameras``, ``transforms``, ``raster``, ``shading``,
``losses``, ``ops``, ``vis``, ``workflows``, ``implicit`` (volumes and NeRF-style ray marching); ``points`` renders point clouds.
"""
from __future__ import annotations

from . import _malloc, _threads

_threads.apply_wait_policy()  # first: OpenMP runtimes read it when they load (torch's, Numba's); see _threads
_malloc.apply_malloc_policy()  # freed render buffers stay mapped for the next call; see _malloc

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from . import (
    cameras,
    data,
    implicit,
    io,
    losses,
    ops,
    points,
    raster,
    shading,
    splat,
    structures,
    textures,
    transforms,
    vis,
    workflows,
)
from .cameras import (
    FoVOrthographicCameras,
    FoVPerspectiveCameras,
    OrthographicCameras,
    PerspectiveCameras,
    look_at_rotation,
    look_at_view_transform,
)
from .io import load_mesh, load_meshes, save_mesh
from .raster import Fragments, MeshRasterizer, RasterSettings, rasterize, rasterize_meshes
from .render import MeshRenderer, MeshRendererWithFragments
from .shading import (
    AmbientLights,
    BlendParams,
    DirectionalLights,
    HardDepthShader,
    HardFlatShader,
    HardGouraudShader,
    HardPhongShader,
    Materials,
    NormalShader,
    PointLights,
    SoftDepthShader,
    SoftGouraudShader,
    SoftPhongShader,
    SoftSilhouetteShader,
    SpotLights,
    TexturesAtlas,
    TexturesUV,
    TexturesVertex,
    hard_rgb_blend,
    interpolate_face_attributes,
    sigmoid_alpha_blend,
    softmax_rgb_blend,
)
from .structures import Meshes, Pointclouds, join_meshes_as_batch, join_meshes_as_scene

try:  # declared once, in pyproject.toml; read from the installed package's metadata
    __version__ = _version("diffras")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "AmbientLights",
    "BlendParams",
    "DirectionalLights",
    "FoVOrthographicCameras",
    "FoVPerspectiveCameras",
    "Fragments",
    "HardDepthShader",
    "HardFlatShader",
    "HardGouraudShader",
    "HardPhongShader",
    "Materials",
    "MeshRasterizer",
    "MeshRenderer",
    "MeshRendererWithFragments",
    "Meshes",
    "NormalShader",
    "OrthographicCameras",
    "PerspectiveCameras",
    "PointLights",
    "Pointclouds",
    "RasterSettings",
    "SoftDepthShader",
    "SoftGouraudShader",
    "SoftPhongShader",
    "SoftSilhouetteShader",
    "SpotLights",
    "TexturesAtlas",
    "TexturesUV",
    "TexturesVertex",
    "__version__",
    "cameras",
    "data",
    "hard_rgb_blend",
    "implicit",
    "interpolate_face_attributes",
    "io",
    "join_meshes_as_batch",
    "join_meshes_as_scene",
    "load_mesh",
    "load_meshes",
    "look_at_rotation",
    "look_at_view_transform",
    "losses",
    "ops",
    "points",
    "raster",
    "rasterize",
    "rasterize_meshes",
    "save_mesh",
    "shading",
    "sigmoid_alpha_blend",
    "softmax_rgb_blend",
    "splat",
    "structures",
    "textures",
    "transforms",
    "vis",
    "workflows",
]
