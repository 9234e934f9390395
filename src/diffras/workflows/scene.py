"""Scene set-up shared by the workflows: normalising meshes, cameras around them, renderers."""
from __future__ import annotations

from typing import Optional, Sequence, Union

import torch

from ..cameras import FoVPerspectiveCameras, look_at_view_transform
from ..raster import MeshRasterizer, RasterSettings
from ..render import MeshRenderer
from ..shading import (
    BlendParams,
    HardDepthShader,
    HardFlatShader,
    HardGouraudShader,
    HardPhongShader,
    NormalShader,
    PointLights,
    SoftGouraudShader,
    SoftPhongShader,
    SoftSilhouetteShader,
)
from ..structures import Meshes

__all__ = [
    "normalize_to_unit_sphere",
    "orbit_cameras",
    "make_renderer",
    "soft_blur_radius",
    "headlight",
    "cosine_schedule",
    "render_views",
    "with_default_colors",
]


def normalize_to_unit_sphere(meshes: Meshes) -> Meshes:
    """Centre each mesh on its bounding-box centre and scale it so its farthest vertex is at distance 1.

    Meshes from the wild differ in scale by orders of magnitude (the dolphins are ~800 units, the
    bunny ~0.15); after this one camera distance fits all of them. Keeps textures.
    """
    verts = meshes.verts_packed()
    idx = meshes.verts_packed_to_mesh_idx()
    bbox = meshes.get_bounding_boxes()  # (N, 3, 2)
    centre = bbox.mean(dim=-1)  # (N, 3)
    centred = verts - centre[idx]
    radius = torch.zeros(len(meshes), dtype=verts.dtype, device=verts.device)
    radius = radius.scatter_reduce(0, idx, centred.norm(dim=-1), reduce="amax", include_self=True)
    scaled = centred / radius.clamp_min(1e-12)[idx, None]
    return meshes.offset_verts(scaled - verts)


def orbit_cameras(
    n: int,
    *,
    dist: float = 2.7,
    elev: Union[float, Sequence[float]] = 20.0,
    azim_start: float = 0.0,
    fov: float = 60.0,
    device: Optional[torch.device] = None,
) -> FoVPerspectiveCameras:
    """``n`` cameras evenly spaced in azimuth around the origin, all looking at it.

    ``elev`` is one elevation for all, or one per camera (degrees).
    """
    azim = azim_start + torch.arange(n, dtype=torch.float32) * (360.0 / n)
    elev_t = torch.as_tensor(elev, dtype=torch.float32).expand(n) if not isinstance(elev, (list, tuple)) else torch.tensor(elev, dtype=torch.float32)
    R, T = look_at_view_transform(dist=dist, elev=elev_t, azim=azim, device=device)
    return FoVPerspectiveCameras(R=R, T=T, fov=fov, device=device)


def soft_blur_radius(sigma: float) -> float:
    """The blur radius (squared NDC units) beyond which a face's soft-silhouette weight is below sigma-level
    noise: ``log(1/sigma - 1) * sigma``, as SoftRas and PyTorch3D's tutorials use."""
    import math

    return math.log(1.0 / sigma - 1.0) * sigma


def headlight(cameras: FoVPerspectiveCameras) -> PointLights:
    """A point light at each camera centre, so every view is lit from the front."""
    return PointLights(location=cameras.get_camera_center(), device=cameras.device)


def make_renderer(
    cameras: FoVPerspectiveCameras,
    image_size: int,
    *,
    shader: str = "soft-phong",
    sigma: float = 1e-4,
    faces_per_pixel: Optional[int] = None,
    lights=None,
    background=(1.0, 1.0, 1.0),
) -> MeshRenderer:
    """A ``MeshRenderer`` for one of the CLI's shader names.

    Soft shaders get SoftRas settings (``blur_radius = soft_blur_radius(sigma)``, K = 50 for the silhouette,
    K = 8 for colour unless told otherwise); hard shaders rasterize with K = 1, no blur.
    """
    soft = shader in ("soft-phong", "soft-gouraud", "silhouette")
    if faces_per_pixel is None:
        faces_per_pixel = 50 if shader == "silhouette" else (8 if soft else 1)
    settings = RasterSettings(
        image_size=image_size,
        blur_radius=soft_blur_radius(sigma) if soft else 0.0,
        faces_per_pixel=faces_per_pixel,
    )
    blend = BlendParams(sigma=sigma, gamma=1e-4, background_color=background)
    lights = lights if lights is not None else headlight(cameras)
    kinds = {
        "soft-phong": lambda: SoftPhongShader(cameras=cameras, lights=lights, blend_params=blend),
        "hard-phong": lambda: HardPhongShader(cameras=cameras, lights=lights, blend_params=blend),
        "soft-gouraud": lambda: SoftGouraudShader(cameras=cameras, lights=lights, blend_params=blend),
        "hard-gouraud": lambda: HardGouraudShader(cameras=cameras, lights=lights, blend_params=blend),
        "flat": lambda: HardFlatShader(cameras=cameras, lights=lights, blend_params=blend),
        "silhouette": lambda: SoftSilhouetteShader(blend_params=blend),
        "normals": lambda: NormalShader(blend_params=blend),
        "depth": lambda: HardDepthShader(),
    }
    if shader not in kinds:
        raise ValueError(f"shader: expected one of {sorted(kinds)}, got {shader!r}")
    return MeshRenderer(MeshRasterizer(cameras=cameras, raster_settings=settings), kinds[shader]())


def cosine_schedule(optimizer: torch.optim.Optimizer, iters: int, final_fraction: float):
    """Scale every parameter group's learning rate from 1x down to ``final_fraction``x along a half cosine
    over ``iters`` steps (call ``.step()`` after each ``optimizer.step()``)."""
    import math

    def factor(step: int) -> float:
        t = min(step / max(iters - 1, 1), 1.0)
        return final_fraction + (1.0 - final_fraction) * 0.5 * (1.0 + math.cos(math.pi * t))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def render_views(meshes: Meshes, cameras, image_size: int, lights=None) -> torch.Tensor:
    """Hard (K=1) Phong renders under a headlight (or ``lights``): (N, H, W, 4) RGBA with alpha exactly 0 or 1.

    A one-mesh ``meshes`` is seen by every camera; otherwise mesh n by camera n. These are the workflows'
    "photographs": targets, references and held-out evaluations.
    """
    mesh = meshes.extend(len(cameras)) if len(meshes) == 1 else meshes
    rasterizer = MeshRasterizer(cameras=cameras, raster_settings=RasterSettings(image_size=image_size))
    shader = HardPhongShader(cameras=cameras, lights=lights if lights is not None else headlight(cameras))
    return shader(rasterizer(mesh), mesh)


def with_default_colors(meshes: Meshes, grey: float = 0.7) -> Meshes:
    """``meshes`` itself if it has textures, else a copy with flat grey vertex colours, so that colour losses
    still see its shading."""
    if meshes.textures is not None:
        return meshes
    from ..shading import TexturesVertex

    feats = [torch.full_like(v, grey) for v in meshes.verts_list()]
    return Meshes(meshes.verts_list(), meshes.faces_list(), textures=TexturesVertex(feats))
