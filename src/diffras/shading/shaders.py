"""Shaders: nn.Modules turning ``Fragments`` (+ the meshes) into images, PyTorch3D's set and semantics.

Every shader's ``forward(fragments, meshes, **kwargs)`` takes the ``Fragments`` of N meshes and returns
(N, H, W, 4) RGBA (the depth shaders: (N, H, W, 1)). ``cameras``, ``lights``, ``materials`` and
``blend_params`` given to ``__init__`` can be overridden per call by keyword (``shader(f, m, lights=l)``),
as in PyTorch3D. The soft shaders also take ``znear``/``zfar`` keywords; otherwise they use the cameras'
``znear``/``zfar`` attributes when the cameras have them (FoV cameras), else ``blend_params.znear/zfar``.

Shading is in world space (see :mod:`diffras.shading.shade`); texels come from
``meshes.textures.sample_textures(fragments, meshes)`` (white when the meshes have no textures).
"""
from __future__ import annotations

from typing import Any, Optional, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from .._validation import check_choice, check_index_range
from ..raster.fragments import Fragments, as_fragments
from ..textures.interpolate import interpolate_packed
from .blending import BlendParams, blend_packed
from .lighting import PointLights
from .materials import Materials
from .shade import flat_packed, gouraud_packed, phong_packed, sample_texels_packed

__all__ = [
    "HardDepthShader",
    "HardFlatShader",
    "HardGouraudShader",
    "HardPhongShader",
    "NormalShader",
    "ShaderBase",
    "SoftDepthShader",
    "SoftGouraudShader",
    "SoftPhongShader",
    "SoftSilhouetteShader",
]


class ShaderBase(nn.Module):
    """Holds the scene parameters a shader may need.

    Args:
        device: device for the default lights and materials (None: torch's default device).
        cameras: the cameras that produced the fragments (needed by the lit shaders for the eye position);
            may instead be passed to ``forward``.
        lights: default ``PointLights()`` (PyTorch3D's default light at (0, 1, 0)).
        materials: default ``Materials()``.
        blend_params: default ``BlendParams()``.
    """

    def __init__(self, device: Any = None, cameras: Any = None, lights: Any = None, materials: Any = None,
                 blend_params: Optional[BlendParams] = None, *, texture_mipmap: Union[None, bool, str] = None) -> None:
        super().__init__()
        self.lights = lights if lights is not None else PointLights(device=device)
        self.materials = materials if materials is not None else Materials(device=device)
        self.cameras = cameras
        self.blend_params = blend_params if blend_params is not None else BlendParams()
        if not isinstance(self.blend_params, BlendParams):
            raise TypeError(f"blend_params: expected a BlendParams, got {type(self.blend_params).__name__}")
        # None: each UV texture's own ``mipmap`` setting; True / False / "auto": this shader's, for every mesh
        # it shades (False: level-0 sampling, PyTorch3D-identical).
        if texture_mipmap is not None and not isinstance(texture_mipmap, bool):
            check_choice(texture_mipmap, "texture_mipmap", [None, True, False, "auto"])
        self.texture_mipmap = texture_mipmap

    def _get_cameras(self, kwargs: dict) -> Any:
        cameras = kwargs.get("cameras", self.cameras)
        if cameras is None:
            raise ValueError(f"cameras: {type(self).__name__} needs cameras, given at construction or to forward()")
        return cameras

    def _params(self, kwargs: dict):
        return (self._get_cameras(kwargs), kwargs.get("lights", self.lights),
                kwargs.get("materials", self.materials), kwargs.get("blend_params", self.blend_params))

    def _planes(self, cameras: Any, blend_params: BlendParams, kwargs: dict):
        znear = kwargs.get("znear", getattr(cameras, "znear", None) if cameras is not None else None)
        zfar = kwargs.get("zfar", getattr(cameras, "zfar", None) if cameras is not None else None)
        return (blend_params.znear if znear is None else znear, blend_params.zfar if zfar is None else zfar)

    def to(self, *args: Any, **kwargs: Any) -> "ShaderBase":
        """Move the cameras, lights and materials too (they are not nn.Modules)."""
        device = torch._C._nn._parse_to(*args, **kwargs)[0]
        if device is not None:
            for name in ("cameras", "lights", "materials"):
                obj = getattr(self, name)
                if obj is not None and hasattr(obj, "to"):
                    setattr(self, name, obj.to(device))
        return super().to(*args, **kwargs)


def _blend(rule: str, colors: torch.Tensor, fragments: Fragments, blend_params: BlendParams, znear=None,
           zfar=None) -> torch.Tensor:
    """Blend the (P, C) colours of the filled fragments (``blending.blend_packed``: fused on the CPU)."""
    return blend_packed(rule, colors, fragments.slot_idx, fragments.zbuf_packed if rule == "softmax" else None,
                        fragments.dists_packed if rule != "hard" else None, fragments.shape,
                        blend_params, znear=znear, zfar=zfar)


class HardPhongShader(ShaderBase):
    """Per-pixel (Phong) lighting, nearest fragment's colour (hard blend). Output (N, H, W, 4).

    A hard blend reads only each pixel's nearest fragment, so only those are shaded."""

    def forward(self, fragments: Any, meshes: Any, **kwargs: Any) -> torch.Tensor:
        cameras, lights, materials, blend_params = self._params(kwargs)
        fragments = as_fragments(fragments).nearest()
        texels = sample_texels_packed(meshes, fragments, self.texture_mipmap)
        colors = phong_packed(meshes, fragments, lights, cameras, materials, texels)
        return _blend("hard", colors, fragments, blend_params)


class SoftPhongShader(ShaderBase):
    """Per-pixel (Phong) lighting, SoftRas blending of the K fragments (``softmax_rgb_blend``).
    Differentiable w.r.t. geometry through ``dists`` and ``zbuf``. Output (N, H, W, 4)."""

    def forward(self, fragments: Any, meshes: Any, **kwargs: Any) -> torch.Tensor:
        cameras, lights, materials, blend_params = self._params(kwargs)
        fragments = as_fragments(fragments)
        texels = sample_texels_packed(meshes, fragments, self.texture_mipmap)
        colors = phong_packed(meshes, fragments, lights, cameras, materials, texels)
        znear, zfar = self._planes(cameras, blend_params, kwargs)
        return _blend("softmax", colors, fragments, blend_params, znear, zfar)


class HardGouraudShader(ShaderBase):
    """Per-vertex (Gouraud) lighting of the vertex colours, hard blend. Output (N, H, W, 4)."""

    def forward(self, fragments: Any, meshes: Any, **kwargs: Any) -> torch.Tensor:
        cameras, lights, materials, blend_params = self._params(kwargs)
        fragments = as_fragments(fragments).nearest()
        colors = gouraud_packed(meshes, fragments, lights, cameras, materials)
        return _blend("hard", colors, fragments, blend_params)


class SoftGouraudShader(ShaderBase):
    """Per-vertex (Gouraud) lighting, SoftRas blending. Output (N, H, W, 4)."""

    def forward(self, fragments: Any, meshes: Any, **kwargs: Any) -> torch.Tensor:
        cameras, lights, materials, blend_params = self._params(kwargs)
        fragments = as_fragments(fragments)
        colors = gouraud_packed(meshes, fragments, lights, cameras, materials)
        znear, zfar = self._planes(cameras, blend_params, kwargs)
        return _blend("softmax", colors, fragments, blend_params, znear, zfar)


class HardFlatShader(ShaderBase):
    """Per-face lighting (face centroid and face normal) of the texels, hard blend. Output (N, H, W, 4)."""

    def forward(self, fragments: Any, meshes: Any, **kwargs: Any) -> torch.Tensor:
        cameras, lights, materials, blend_params = self._params(kwargs)
        fragments = as_fragments(fragments).nearest()
        texels = sample_texels_packed(meshes, fragments, self.texture_mipmap)
        colors = flat_packed(meshes, fragments, lights, cameras, materials, texels)
        return _blend("hard", colors, fragments, blend_params)


class SoftSilhouetteShader(nn.Module):
    """Silhouette: RGB 1, alpha ``= 1 - prod_k (1 - sigmoid(-dists_k / sigma))`` (SoftRas). No lighting,
    no cameras needed. Output (N, H, W, 4); use channel 3.

    For SoftRas-consistent results rasterize with ``blur_radius = log(1 / 1e-4 - 1) * sigma`` and K > 1.
    """

    def __init__(self, blend_params: Optional[BlendParams] = None) -> None:
        super().__init__()
        self.blend_params = blend_params if blend_params is not None else BlendParams()

    def forward(self, fragments: Any, meshes: Any = None, **kwargs: Any) -> torch.Tensor:
        fragments = as_fragments(fragments)
        dists = fragments.dists_packed
        colors = torch.ones((dists.shape[0], 1), dtype=dists.dtype, device=dists.device)
        alpha = _blend("sigmoid", colors, fragments, kwargs.get("blend_params", self.blend_params))[..., 1:]
        # RGB is 1 everywhere, empty pixels included (as PyTorch3D, which blends all-ones colours).
        return torch.cat([torch.ones_like(alpha).expand(alpha.shape[:-1] + (3,)), alpha], dim=-1)


class HardDepthShader(ShaderBase):
    """View-space depth (``zbuf``) of the nearest fragment; ``zfar`` where no face covers the pixel.

    ``zfar``: the ``zfar`` keyword, else the cameras' ``zfar`` (if any), else ``blend_params.zfar``. Unlike
    PyTorch3D, cameras are optional. Output (N, H, W, 1).
    """

    def forward(self, fragments: Any, meshes: Any = None, **kwargs: Any) -> torch.Tensor:
        blend_params = kwargs.get("blend_params", self.blend_params)
        _, zfar = self._planes(kwargs.get("cameras", self.cameras), blend_params, kwargs)
        z = fragments.zbuf[..., :1]
        zfar = _per_image(zfar, z)
        return torch.where(fragments.pix_to_face[..., :1] >= 0, z, zfar.expand_as(z))


class SoftDepthShader(ShaderBase):
    """Soft depth as PyTorch3D's ``SoftDepthShader``: fragments nearest first get weight
    ``min(1, sum_{j<=k} p_j) - min(1, sum_{j<k} p_j)`` with ``p = sigmoid(-dists / sigma) * mask``, and a
    final ``zfar`` "face" with probability 1 takes the rest. Output (N, H, W, 1); differentiable w.r.t.
    ``zbuf`` and ``dists``.
    """

    def forward(self, fragments: Any, meshes: Any = None, **kwargs: Any) -> torch.Tensor:
        blend_params = kwargs.get("blend_params", self.blend_params)
        _, zfar = self._planes(kwargs.get("cameras", self.cameras), blend_params, kwargs)
        z = fragments.zbuf
        mask = fragments.pix_to_face >= 0
        prob = torch.sigmoid(-fragments.dists / blend_params.sigma) * mask
        zfar = _per_image(zfar, z[..., :1]).expand_as(z[..., :1])
        depths = torch.cat([z, zfar], dim=-1)
        probs = torch.cat([prob, torch.ones_like(prob[..., :1])], dim=-1)
        cum = probs.cumsum(dim=-1).clamp(max=1.0)
        weights = torch.diff(cum, dim=-1, prepend=torch.zeros_like(cum[..., :1]))
        return (weights * depths).sum(dim=-1, keepdim=True)


class NormalShader(ShaderBase):
    """Interpolated, renormalised vertex normals of the nearest fragment as colours: ``rgb = (n + 1) / 2``,
    so each channel maps [-1, 1] to [0, 1] (x -> red, y -> green, z -> blue); background
    ``blend_params.background_color`` with alpha 0.

    Args:
        space: ``"world"`` (default) or ``"view"`` (``n_view = n_world @ R`` with the cameras' R, so in view
            space a surface facing the camera has n_z = -1, i.e. blue 0).
        Other arguments as :class:`ShaderBase` (only cameras and blend_params are used).

    Output (N, H, W, 4). Differentiable w.r.t. vertex positions through the normals and bary_coords.
    """

    def __init__(self, device: Any = None, cameras: Any = None, lights: Any = None, materials: Any = None,
                 blend_params: Optional[BlendParams] = None, space: str = "world") -> None:
        super().__init__(device, cameras, lights, materials, blend_params)
        self.space = check_choice(space, "space", ("world", "view"))

    def forward(self, fragments: Any, meshes: Any, **kwargs: Any) -> torch.Tensor:
        blend_params = kwargs.get("blend_params", self.blend_params)
        fragments = as_fragments(fragments).nearest()
        faces = meshes.faces_packed()
        check_index_range(fragments.face_idx, "fragments.pix_to_face", faces.shape[0])
        normals = interpolate_packed(fragments.face_idx, fragments.bary_packed, meshes.verts_normals_packed()[faces])
        if self.space == "view":
            R = self._get_cameras(kwargs).R.to(normals)
            N = fragments.shape[0]
            if R.shape[0] not in (1, N):
                raise ValueError(f"cameras: expected a batch of 1 or {N}, got {R.shape[0]}")
            R = R[fragments.image_idx] if R.shape[0] > 1 else R.expand(normals.shape[0], 3, 3)
            normals = torch.einsum("pi,pij->pj", normals, R)
        normals = F.normalize(normals, p=2, dim=-1, eps=1e-6)
        return _blend("hard", (normals + 1.0) * 0.5, fragments, blend_params)


def _per_image(value: Any, like: torch.Tensor) -> torch.Tensor:
    """A number or (N,) / (1,) tensor as an (N|1, 1, 1, 1) tensor on ``like``'s device and dtype."""
    t = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    if t.numel() == 1:
        return t.reshape(1, 1, 1, 1)
    if t.dim() != 1 or t.shape[0] != like.shape[0]:
        raise ValueError(f"zfar: expected a number or shape ({like.shape[0]},), got shape {tuple(t.shape)}")
    return t.reshape(-1, 1, 1, 1)
