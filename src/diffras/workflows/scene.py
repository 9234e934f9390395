"""Scene set-up shared by the workflows: normalising meshes, cameras around them, renderers."""
from __future__ import annotations

from typing import Optional, Sequence, Union

import torch

from ..cameras import CamerasBase, FoVPerspectiveCameras, look_at_view_transform
from ..ops import normalize_to_unit_sphere  # re-exported: it lived here before diffras.ops
from ..raster import MeshRasterizer, RasterSettings
from ..render import MeshRenderer
from ..shading import (
    AmbientLights,
    BlendParams,
    DirectionalLights,
    HardDepthShader,
    HardFlatShader,
    HardGouraudShader,
    HardPhongShader,
    NormalShader,
    PointLights,
    SoftGouraudShader,
    SoftPhongShader,
    SoftSilhouetteShader,
    SpotLights,
    soft_blur_radius,  # re-exported: it lived here before diffras.shading
)
from ..structures import Meshes

LightsLike = Union[AmbientLights, DirectionalLights, PointLights, SpotLights]

__all__ = [
    "SOFT_SHADERS",
    "box_downsample",
    "cosine_schedule",
    "default_faces_per_pixel",
    "headlight",
    "make_renderer",
    "normalize_to_unit_sphere",
    "orbit_cameras",
    "render_antialiased",
    "render_views",
    "soft_blur_radius",
    "with_default_colors",
]


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


def headlight(cameras: CamerasBase) -> PointLights:
    """A point light at each camera centre, so every view is lit from the front."""
    return PointLights(location=cameras.get_camera_center(), device=cameras.device)


#: The CLI's shader names that blend several faces per pixel (SoftRas).
SOFT_SHADERS = ("soft-phong", "soft-gouraud", "silhouette")


def default_faces_per_pixel(shader: str) -> int:
    """K that :func:`make_renderer` uses for a shader name: 50 for the silhouette, 8 for soft colour, else 1."""
    return 50 if shader == "silhouette" else (8 if shader in SOFT_SHADERS else 1)


def make_renderer(
    cameras: FoVPerspectiveCameras,
    image_size: int,
    *,
    shader: str = "hard-phong",
    sigma: float = 1e-4,
    faces_per_pixel: Optional[int] = None,
    lights: Optional[LightsLike] = None,
    background: Sequence[float] = (1.0, 1.0, 1.0),
) -> MeshRenderer:
    """A ``MeshRenderer`` for one of the CLI's shader names.

    Soft shaders get SoftRas settings (``blur_radius = soft_blur_radius(sigma)``, K = 50 for the silhouette,
    K = 8 for colour unless told otherwise); hard shaders rasterize with K = 1, no blur.
    """
    soft = shader in SOFT_SHADERS
    if faces_per_pixel is None:
        faces_per_pixel = default_faces_per_pixel(shader)
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


def box_downsample(images: torch.Tensor, factor: int) -> torch.Tensor:
    """Box-filter (N, H, W, C) images by ``factor`` in each direction: (N, ceil(H / factor), ceil(W / factor), C).

    RGBA (C = 4) is averaged with premultiplied alpha: the colour of a partly covered pixel is the mean
    colour of the covered samples, its alpha the covered fraction, so compositing the result over a
    background (straight alpha, as ``diffras.vis.composite``) equals averaging the composited samples.
    Where no sample is covered the colour is the plain mean (the shader's background). Other channel
    counts are plain means. Windows that overhang the border average the samples inside it.
    """
    if factor == 1:
        return images
    pool = lambda x: torch.nn.functional.avg_pool2d(x, factor, ceil_mode=True)  # noqa: E731
    x = images.permute(0, 3, 1, 2)
    if x.shape[1] != 4:
        return pool(x).permute(0, 2, 3, 1)
    alpha = x[:, 3:]
    covered = pool(alpha)
    rgb = torch.where(covered > 0, pool(x[:, :3] * alpha) / covered.clamp_min(1e-12), pool(x[:, :3]))
    return torch.cat([rgb, covered], dim=1).permute(0, 2, 3, 1)


def render_antialiased(renderer: MeshRenderer, meshes: Meshes, cameras: CamerasBase, factor: int,
                       lights: Optional[LightsLike] = None) -> torch.Tensor:
    """Supersampling antialiasing: ``renderer`` (built for ``factor`` times the wanted image side) renders
    ``meshes`` from ``cameras`` and the samples are box-filtered down (:func:`box_downsample`).

    Returns (N, H, W, C) with ``H = renderer image height / factor``. With a hard shader the alpha of a
    pixel is the fraction of its ``factor x factor`` samples the mesh covers.
    """
    extra = {} if lights is None else {"lights": lights}
    return box_downsample(renderer(meshes, cameras=cameras, **extra), factor)


def cosine_schedule(optimizer: torch.optim.Optimizer, iters: int, final_fraction: float):
    """Scale every parameter group's learning rate from 1x down to ``final_fraction``x along a half cosine
    over ``iters`` steps (call ``.step()`` after each ``optimizer.step()``)."""
    import math

    def factor(step: int) -> float:
        t = min(step / max(iters - 1, 1), 1.0)
        return final_fraction + (1.0 - final_fraction) * 0.5 * (1.0 + math.cos(math.pi * t))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def render_views(meshes: Meshes, cameras: CamerasBase, image_size: int, lights: Optional[LightsLike] = None) -> torch.Tensor:
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
