"""The composed renderer: a rasterizer followed by a shader (PyTorch3D's ``MeshRenderer``)."""
from __future__ import annotations

from typing import Any, Tuple

import torch
import torch.nn as nn

from .cameras.base import pop_call_extrinsics

__all__ = ["MeshRenderer", "MeshRendererWithFragments"]


class MeshRendererWithFragments(nn.Module):
    """``rasterizer`` then ``shader``; returns ``(images, fragments)``.

    Args:
        rasterizer: a module ``rasterizer(meshes, **kwargs) -> Fragments`` (e.g. ``diffras.raster.MeshRasterizer``)
            with a ``cameras`` attribute (or cameras passed per call).
        shader: a module ``shader(fragments, meshes, **kwargs) -> images`` (e.g. ``SoftPhongShader``).

    ``forward(meshes_world, **kwargs)``: ``R=`` / ``T=`` replace the cameras' extrinsics for this call
    (PyTorch3D's camera-optimisation pattern: ``renderer(meshes_world=mesh, R=R, T=T)``; see
    ``CamerasBase.with_extrinsics``) for the rasterizer and the shader alike; ``eps`` is accepted for
    PyTorch3D compatibility (the projection's divisor guard is fixed). Other keyword arguments go to the shader (``cameras``, ``lights``, ``materials``,
    ``blend_params``, ``znear``, ``zfar``) and, except the shader-only ones (lights, materials,
    blend_params, znear, zfar), to the rasterizer (``cameras``, ``raster_settings``, any ``RasterSettings``
    field such as ``image_size=``), where an unknown keyword raises ``TypeError``. Two conveniences:

    - **N views of one mesh in one call**: when ``meshes`` holds one mesh and the cameras hold N > 1, the
      mesh is extended to N copies (``meshes.extend(N)``) before rasterizing, so image n is the mesh seen by
      camera n. Other batch sizes must match (1 camera broadcasts over N meshes).
    - the rasterizer's cameras are passed on to a shader that has none of its own.

    Returns:
        images ((N, H, W, 4) RGBA for the colour shaders, (N, H, W, 1) for the depth shaders) and the
        ``Fragments``.
    """

    def __init__(self, rasterizer: nn.Module, shader: nn.Module) -> None:
        super().__init__()
        if not callable(rasterizer):
            raise TypeError(f"rasterizer: expected a callable module, got {type(rasterizer).__name__}")
        if not callable(shader):
            raise TypeError(f"shader: expected a callable module, got {type(shader).__name__}")
        self.rasterizer = rasterizer
        self.shader = shader

    def to(self, *args: Any, **kwargs: Any) -> "MeshRendererWithFragments":
        """Move the rasterizer's and the shader's cameras/lights/materials too."""
        for m in (self.rasterizer, self.shader):
            if hasattr(m, "to"):
                m.to(*args, **kwargs)
        return super().to(*args, **kwargs)

    def _prepare(self, meshes: Any, kwargs: dict) -> Tuple[Any, dict]:
        cameras = kwargs.get("cameras", getattr(self.rasterizer, "cameras", None))
        kwargs = dict(kwargs)
        if any(k in kwargs for k in ("R", "T")):
            # PyTorch3D's renderer(mesh, R=R, T=T): the same replaced cameras for the rasterizer and the shader.
            kwargs["cameras"] = cameras = pop_call_extrinsics(cameras, kwargs)
        kwargs.pop("eps", None)
        if cameras is not None:
            n_cam, n_mesh = len(cameras), len(meshes)
            if n_mesh == 1 and n_cam > 1:
                meshes = meshes.extend(n_cam)
            elif n_cam not in (1, n_mesh):
                raise ValueError(
                    f"cameras: expected a batch of 1 or {n_mesh} (the number of meshes), or one mesh for any "
                    f"number of cameras, got {n_cam} cameras"
                )
            if "cameras" not in kwargs and getattr(self.shader, "cameras", True) is None:
                kwargs = dict(kwargs, cameras=cameras)
        return meshes, kwargs

    # Keywords only the shaders read; everything else also goes to the rasterizer.
    _SHADER_ONLY = frozenset({"lights", "materials", "blend_params", "znear", "zfar"})

    def _raster_kwargs(self, kwargs: dict) -> dict:
        # diffras's MeshRasterizer rejects unknown keywords (a typo such as R=... must not pass silently), so
        # it gets all but the shader-only ones; any other rasterizer gets everything, as in PyTorch3D.
        from .raster import MeshRasterizer

        if not isinstance(self.rasterizer, MeshRasterizer):
            return kwargs
        return {k: v for k, v in kwargs.items() if k not in self._SHADER_ONLY}

    def forward(self, meshes_world: Any, **kwargs: Any):
        meshes, kwargs = self._prepare(meshes_world, kwargs)
        fragments = self.rasterizer(meshes, **self._raster_kwargs(kwargs))
        images = self.shader(fragments, meshes, **kwargs)
        return images, fragments


class MeshRenderer(MeshRendererWithFragments):
    """``rasterizer`` then ``shader``; returns only the images ((N, H, W, 4) RGBA for the colour shaders).

    See :class:`MeshRendererWithFragments` for the arguments and the one-mesh / N-cameras convenience::

        renderer = MeshRenderer(MeshRasterizer(cameras, RasterSettings(512)), SoftPhongShader(cameras=cameras))
        images = renderer(mesh)               # (len(cameras), 512, 512, 4)
    """

    def forward(self, meshes_world: Any, **kwargs: Any) -> torch.Tensor:
        images, _ = super().forward(meshes_world, **kwargs)
        return images
