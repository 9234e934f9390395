"""Hard, opaque renders with silhouette gradients: nvdiffrast's analytic antialiasing in the composed tier.

A hard (K = 1) shader gives no gradient w.r.t. where silhouettes lie: coverage is point-sampled.
:func:`antialias_fragments` applies the *same* kernel as ``diffras.nv.antialias`` (Laine et al. 2020) to
any hard-shaded image: pixels beside a silhouette edge are blended with their neighbour by the edge's
coverage, which is differentiable w.r.t. the vertices and the cameras, and nothing else is blurred.
:class:`AntialiasedShader` wraps any hard shader; :class:`AntialiasedHardPhongShader` is the common case.

Mapping: diffras pixel (row i, column j) is nvdiffrast pixel (memory row i, column j), so the projected
vertices ``(x_ndc, y_ndc)`` (PyTorch3D's NDC, +X left, +Y up, shorter side [-1, 1]) are handed to the
kernel as ``(-x_ndc S / W, -y_ndc S / H, 0, 1)`` with ``S = min(H, W)``; depth order comes from ``zbuf``.
Silhouette edges are found through shared vertex indices, as in nvdiffrast: a mesh whose faces do not
share vertices is all silhouette edges (correct gradients, more work).
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from .._validation import check_float, check_tensor
from ..raster.mesh_rasterizer import project_verts_padded
from .shaders import HardPhongShader

__all__ = ["AntialiasedHardPhongShader", "AntialiasedShader", "antialias_fragments"]


def antialias_fragments(images: torch.Tensor, fragments: Any, meshes: Any, cameras: Any,
                        pos_gradient_boost: float = 1.0) -> torch.Tensor:
    """Antialias silhouette edges of hard-rendered ``images`` (nvdiffrast's ``antialias`` kernel).

    Args:
        images: (N, H, W, C) float, e.g. a hard shader's RGBA (the alpha channel gets edge coverage too).
        fragments: the ``Fragments`` the images were shaded from (slot k = 0 is used).
        meshes: the ``Meshes`` rasterized (``pix_to_face`` indexes ``meshes.faces_packed()``).
        cameras: the cameras they were rasterized with.
        pos_gradient_boost: multiplier of the gradient sent to vertex positions (and cameras).

    Returns:
        (N, H, W, C) images; pixels away from silhouette edges are unchanged.
    """
    from ..nv.antialias import antialias

    check_tensor(images, "images", ndim=4, dtype="float")
    N, H, W, _ = images.shape
    p2f = fragments.pix_to_face
    if p2f.shape[:3] != (N, H, W):
        raise ValueError(f"fragments: expected pix_to_face of shape ({N}, {H}, {W}, K) (the images'), "
                         f"got {tuple(p2f.shape)}")
    boost = check_float(pos_gradient_boost, "pos_gradient_boost")
    verts = project_verts_padded(meshes, cameras, (H, W))
    packed = verts.reshape(-1, 3)
    if packed.shape[0] != meshes.verts_packed().shape[0]:
        packed = packed[meshes.verts_padded_to_packed_idx()]
    S = float(min(H, W))
    zero, one = torch.zeros_like(packed[:, 0]), torch.ones_like(packed[:, 0])
    pos = torch.stack([-packed[:, 0] * (S / W), -packed[:, 1] * (S / H), zero, one], 1).to(images.dtype)
    ids = (p2f[..., 0] + 1).to(images.dtype)
    zb = fragments.zbuf[..., 0].detach().to(images.dtype)
    rast = torch.stack([torch.zeros_like(zb), torch.zeros_like(zb), zb, ids], -1)
    return antialias(images, rast, pos, meshes.faces_packed(), pos_gradient_boost=boost)


class AntialiasedShader(nn.Module):
    """Wrap a hard shader so that its output gets analytic silhouette antialiasing (and gradients).

    Args:
        shader: a hard (nearest-fragment) shader, e.g. ``HardPhongShader(...)``, ``HardFlatShader(...)``.
        pos_gradient_boost: as :func:`antialias_fragments`.

    ``forward(fragments, meshes, **kwargs)`` passes everything to ``shader`` and antialiases its output;
    the cameras are ``kwargs['cameras']`` or the wrapped shader's.
    """

    def __init__(self, shader: nn.Module, pos_gradient_boost: float = 1.0) -> None:
        super().__init__()
        if not callable(shader):
            raise TypeError(f"shader: expected a callable shader module, got {type(shader).__name__}")
        self.shader = shader
        self.pos_gradient_boost = check_float(pos_gradient_boost, "pos_gradient_boost")

    @property
    def cameras(self) -> Any:
        return getattr(self.shader, "cameras", None)

    def forward(self, fragments: Any, meshes: Any, **kwargs: Any) -> torch.Tensor:
        images = self.shader(fragments, meshes, **kwargs)
        cameras = kwargs.get("cameras", self.cameras)
        if cameras is None:
            raise ValueError("cameras: AntialiasedShader needs cameras, given to the wrapped shader or to forward()")
        return antialias_fragments(images, fragments, meshes, cameras, self.pos_gradient_boost)

    def to(self, *args: Any, **kwargs: Any) -> "AntialiasedShader":
        if hasattr(self.shader, "to"):
            self.shader.to(*args, **kwargs)
        return super().to(*args, **kwargs)


class AntialiasedHardPhongShader(HardPhongShader):
    """``HardPhongShader`` followed by analytic silhouette antialiasing: an opaque, unblurred (N, H, W, 4)
    RGBA image whose colour and alpha have gradients w.r.t. silhouette positions. Arguments as
    ``HardPhongShader``, plus ``pos_gradient_boost``."""

    def __init__(self, *args: Any, pos_gradient_boost: float = 1.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pos_gradient_boost = check_float(pos_gradient_boost, "pos_gradient_boost")

    def forward(self, fragments: Any, meshes: Any, **kwargs: Any) -> torch.Tensor:
        images = super().forward(fragments, meshes, **kwargs)
        return antialias_fragments(images, fragments, meshes, self._get_cameras(kwargs), self.pos_gradient_boost)
