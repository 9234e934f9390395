"""``rasterize_meshes`` and ``MeshRasterizer``: ``Meshes`` + camera -> :class:`Fragments` (PyTorch3D's API).

Projection, as PyTorch3D's ``MeshRasterizer.transform``: every vertex goes to
``(x_ndc, y_ndc, z_view)`` with ``x_ndc, y_ndc`` from ``cameras.transform_points_ndc`` (PyTorch3D's
non-square NDC) and ``z_view`` the view-space depth from ``cameras.get_world_to_view_transform()``.
The rest is :func:`diffras.raster.rasterize` on the packed meshes.
"""
from __future__ import annotations

from dataclasses import fields, replace
from typing import TYPE_CHECKING, Any, Optional, Tuple

import torch
from torch import nn

from .fragments import Fragments
from .functional import rasterize_face_verts
from ..cameras.base import pop_call_extrinsics
from .settings import RasterSettings

if TYPE_CHECKING:
    from ..cameras import CamerasBase
    from ..structures import Meshes
    from .settings import ImageSize

__all__ = ["MeshRasterizer", "project_points_padded", "project_verts_padded", "rasterize_meshes"]

# Clamp of the perspective divisor when projecting: a vertex exactly on the camera plane gets a huge
# but finite NDC position (its faces are then clipped or dropped), never inf/NaN in values or grads.
_PROJECT_EPS = 1e-8


def _check_meshes_cameras(meshes: "Meshes", cameras: "CamerasBase") -> None:
    for attr in ("verts_padded", "faces_packed", "num_faces_per_mesh", "verts_padded_to_packed_idx"):
        if not hasattr(meshes, attr):
            raise TypeError(f"meshes: expected a diffras.structures.Meshes, got {type(meshes).__name__}")
    for attr in ("transform_points_ndc", "get_world_to_view_transform", "is_perspective"):
        if not hasattr(cameras, attr):
            raise TypeError(f"cameras: expected a diffras camera, got {type(cameras).__name__}")
    n, nc = len(meshes), len(cameras)
    if nc != 1 and nc != n:
        raise ValueError(f"cameras: expected a batch of 1 or N={n} cameras (one per mesh), got {nc}")
    if torch.device(meshes.device) != torch.device(cameras.device):
        raise ValueError(f"cameras: expected device {meshes.device} (the device of meshes), got {cameras.device}")


def project_verts_padded(
    meshes: "Meshes", cameras: "CamerasBase", image_size: Optional["ImageSize"] = None
) -> torch.Tensor:
    """(N, V, 3) padded vertices ``(x_ndc, y_ndc, z_view)`` of ``meshes`` seen by ``cameras``.

    Equal to ``cameras.transform_points_ndc(verts, eps=1e-8)[..., :2]`` beside
    ``cameras.get_world_to_view_transform().transform_points(verts)[..., 2]``, computed with one
    matrix product. ``image_size`` (H, W) is passed to screen-space cameras (``in_ndc() == False``)
    that were built without their own image size. Differentiable w.r.t. the vertices and every camera
    parameter.
    """
    _check_meshes_cameras(meshes, cameras)
    return project_points_padded(meshes.verts_padded(), cameras, image_size)  # finite: Meshes checks


def project_points_padded(verts: torch.Tensor, cameras: Any, image_size=None) -> torch.Tensor:
    """(N, V, 3) finite world points -> (N, V, 3) ``(x_ndc, y_ndc, z_view)``, as
    :func:`project_verts_padded` (which calls it; so does the points rasterizer)."""
    full = cameras.get_full_projection_transform()
    if not cameras.in_ndc():
        # The same composition as cameras.transform_points_ndc.
        own = cameras.get_image_size() is not None
        full = full.compose(cameras.get_ndc_camera_transform(None if own or image_size is None else image_size))
    m_full = full.get_matrix()
    m_view = cameras.get_world_to_view_transform().get_matrix()
    # One product gives the projected x, y, the homogeneous divisor w and the view-space z (the
    # columns of the two row-vector matrices that matter): [x, 1] @ A.
    A = torch.stack((m_full[..., 0], m_full[..., 1], m_full[..., 3], m_view[..., 2]), dim=-1).to(verts.dtype)
    h = torch.matmul(verts, A[:, :3, :]) + A[:, 3:4, :]
    w = h[..., 2:3]
    w = torch.where(w < 0, -1.0, 1.0).to(w.dtype) * w.abs().clamp(min=_PROJECT_EPS)
    return torch.cat((h[..., :2] / w, h[..., 3:4]), dim=-1)


def _resolve(settings: RasterSettings, cameras: "CamerasBase") -> RasterSettings:
    """PyTorch3D's MeshRasterizer rules for the settings left as None (see :meth:`RasterSettings.resolve`)."""
    persp = settings.perspective_correct
    if persp is None:
        persp = bool(cameras.is_perspective())
    znear = None
    if settings.z_clip_value is None and persp and hasattr(cameras, "get_znear"):
        znear = cameras.get_znear()
        if znear is not None:
            znear = float(torch.as_tensor(znear).min()) if torch.is_tensor(znear) else float(znear)
    return settings.resolve(perspective_correct=persp, znear=znear)


def rasterize_meshes(meshes: "Meshes", cameras: "CamerasBase", settings: RasterSettings) -> Fragments:
    """Rasterize a batch of meshes seen by cameras (PyTorch3D's ``MeshRasterizer`` semantics).

    Args:
        meshes: :class:`diffras.structures.Meshes` of N meshes in world space.
        cameras: a diffras camera of batch 1 (shared) or N, on the meshes' device.
        settings: :class:`RasterSettings`. ``perspective_correct=None`` means the camera's
            ``is_perspective()``; ``z_clip_value=None`` means ``min(znear) / 2`` when perspective-correct
            and the camera has a ``znear`` (PyTorch3D's rule), otherwise no clipping (faces with a
            corner at ``z_view < 1e-8`` are then dropped).

    Returns:
        :class:`Fragments` (N, H, W, K) with ``pix_to_face`` indexing ``meshes.faces_packed()``;
        ``zbuf``, ``bary_coords`` and ``dists`` differentiable w.r.t. vertices and camera parameters.
    """
    if not isinstance(settings, RasterSettings):
        raise TypeError(f"settings: expected a RasterSettings, got {type(settings).__name__}")
    verts_proj = project_verts_padded(meshes, cameras, settings.image_size)
    packed = verts_proj.reshape(-1, 3)
    if packed.shape[0] != meshes.verts_packed().shape[0]:
        packed = packed[meshes.verts_padded_to_packed_idx()]
    # Meshes holds finite vertices; a camera with NaN/inf parameters is what could break that here.
    if packed.numel() and not bool(torch.isfinite(packed).all()):
        bad = int((~torch.isfinite(packed)).any(-1).sum())
        raise ValueError(f"cameras: expected parameters that project the vertices to finite positions, got {bad} "
                         "vertices with NaN/inf coordinates")
    faces = meshes.faces_packed()
    num = meshes.num_faces_per_mesh().to(torch.int64)
    return rasterize_face_verts(packed[faces], num, _resolve(settings, cameras), verts_faces=(packed, faces))


_SETTING_NAMES = tuple(f.name for f in fields(RasterSettings))


class MeshRasterizer(nn.Module):
    """The rasterization module of a renderer (PyTorch3D's ``MeshRasterizer``); no logic of its own.

    Args:
        cameras: default camera (may be given per call instead).
        raster_settings: default :class:`RasterSettings` (may be given per call instead).

    ``forward(meshes, **kwargs)`` returns :class:`Fragments`. ``kwargs`` may hold ``cameras=``,
    ``raster_settings=``, ``R=`` / ``T=`` (the cameras' extrinsics replaced, as PyTorch3D's per-call
    keywords; see ``CamerasBase.with_extrinsics``), and any :class:`RasterSettings` field (e.g.
    ``faces_per_pixel=8``) to override for this call only.
    """

    def __init__(self, cameras: Optional["CamerasBase"] = None, raster_settings: Optional[RasterSettings] = None) -> None:
        super().__init__()
        if raster_settings is not None and not isinstance(raster_settings, RasterSettings):
            raise TypeError(f"raster_settings: expected a RasterSettings, got {type(raster_settings).__name__}")
        self.cameras = cameras
        self.raster_settings = raster_settings

    def _call_args(self, kwargs: dict) -> Tuple["CamerasBase", RasterSettings]:
        cameras = kwargs.pop("cameras", None)
        cameras = self.cameras if cameras is None else cameras
        settings = kwargs.pop("raster_settings", None)
        settings = self.raster_settings if settings is None else settings
        if cameras is None:
            raise ValueError("cameras: expected a camera at construction or as forward(..., cameras=...), got None")
        if settings is None:
            raise ValueError(
                "raster_settings: expected a RasterSettings at construction or in forward(...), got None"
            )
        cameras = pop_call_extrinsics(cameras, kwargs)  # PyTorch3D's rasterizer(mesh, R=R, T=T)
        unknown = sorted(set(kwargs) - set(_SETTING_NAMES))
        if unknown:
            raise TypeError(f"forward: unexpected keyword arguments {unknown}")
        if kwargs:
            settings = replace(settings, **kwargs)
        return cameras, settings

    def transform(self, meshes_world: "Meshes", **kwargs: Any) -> torch.Tensor:
        """(N, V, 3) padded projected vertices ``(x_ndc, y_ndc, z_view)`` (see module docstring)."""
        cameras, settings = self._call_args(dict(kwargs))
        return project_verts_padded(meshes_world, cameras, settings.image_size)

    def forward(self, meshes_world: "Meshes", **kwargs: Any) -> Fragments:
        cameras, settings = self._call_args(dict(kwargs))
        return rasterize_meshes(meshes_world, cameras, settings)

    def to(self, *args: Any, **kwargs: Any) -> "MeshRasterizer":
        # Cameras are not nn.Modules; move them as PyTorch3D does.
        device = torch._C._nn._parse_to(*args, **kwargs)[0]
        if device is not None and self.cameras is not None:
            self.cameras = self.cameras.to(device)
        return super().to(*args, **kwargs)
