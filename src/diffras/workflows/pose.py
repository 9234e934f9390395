"""Recover a camera from a reference image: the "camera position optimisation" task.

The camera looks at the origin from an unknown position; the position is optimised (Adam) so that the
rendered silhouette (and, for an RGB reference, the shaded image) matches the reference. A coarse-to-fine
blur schedule widens the basin of attraction: early steps use a large SoftRas sigma, so the silhouette
gradients reach across the image; late steps use a small one for precision.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional

import torch

from .._validation import check_choice
from ..cameras import FoVPerspectiveCameras, look_at_rotation
from ..ops._filter import gaussian_filter
from ..raster import MeshRasterizer, RasterSettings
from ..shading import AntialiasedHardPhongShader, BlendParams, SoftPhongShader, SoftSilhouetteShader
from ..structures import Meshes
from .scene import headlight, soft_blur_radius

__all__ = ["PoseConfig", "PoseResult", "fit_pose", "camera_from_eye", "rotation_error_deg", "random_eye", "start_eye"]


GRADIENTS = ("soft", "antialias")


@dataclass
class PoseConfig:
    image_size: int = 128
    iters: int = 250
    lr: float = 0.05
    fov: float = 60.0
    dist: float = 2.7  # distance of the synthetic reference camera
    sigma_start: float = 1e-2  # coarse-to-fine SoftRas blur: geometric decay from start to end
    sigma_end: float = 1e-5
    faces_per_pixel: int = 20
    w_silhouette: float = 1.0
    w_rgb: float = 1.0
    start_angle_min: float = 30.0  # random starts are this many degrees or more from the truth...
    start_angle_max: float = 60.0  # ...and at most this many
    snapshot_every: int = 5
    # "soft": SoftRas blur with the coarse-to-fine sigma schedule; "antialias": hard (K = 1) renders with
    # nvdiffrast's analytic silhouette antialiasing (no geometric blur). Rendered and reference images are
    # then compared after a Gaussian image blur (sigma as a fraction of the image side) decayed geometrically
    # from blur_start to blur_end, so that early on the edge gradients see residuals from across the image.
    # Measured on the 20 starts of benchmarks/gradients.py at 128 px: a 6-level image pyramid converged 15/20;
    # a 16 px (1/8) start blur fixed 4 of its 5 failures, an 8 px one none.
    gradients: str = "soft"
    blur_start: float = 0.125
    blur_end: float = 0.002


@dataclass
class PoseResult:
    eye: torch.Tensor  # (3,) the recovered camera position
    cameras: FoVPerspectiveCameras
    history: Dict[str, List[float]] = field(default_factory=dict)
    snapshots: List[torch.Tensor] = field(default_factory=list)  # (H, 2W, 3) current view beside reference
    metrics: Dict[str, float] = field(default_factory=dict)


def camera_from_eye(eye: torch.Tensor, fov: float) -> FoVPerspectiveCameras:
    """A camera at ``eye`` (B, 3) looking at the origin with +Y up; differentiable in ``eye``."""
    R = look_at_rotation(eye, device=eye.device)  # (B, 3, 3)
    T = -torch.bmm(R.transpose(1, 2), eye[:, :, None])[:, :, 0]
    return FoVPerspectiveCameras(R=R, T=T, fov=fov, device=eye.device)


def rotation_error_deg(R1: torch.Tensor, R2: torch.Tensor) -> torch.Tensor:
    """Geodesic angle (degrees) between rotation matrices (*, 3, 3)."""
    cos = ((R1.transpose(-1, -2) @ R2).diagonal(dim1=-2, dim2=-1).sum(-1) - 1.0) / 2.0
    return torch.rad2deg(torch.acos(cos.clamp(-1.0, 1.0)))


def random_eye(generator: torch.Generator, dist: float, max_abs_elev: float = 60.0) -> torch.Tensor:
    """A camera position at distance ``dist``, uniform azimuth, elevation uniform in +-max_abs_elev degrees."""
    azim = torch.rand((), generator=generator, dtype=torch.float64) * 2 * math.pi
    elev = torch.deg2rad((torch.rand((), generator=generator, dtype=torch.float64) * 2 - 1) * max_abs_elev)
    return dist * torch.stack([torch.cos(elev) * torch.sin(azim), torch.sin(elev), torch.cos(elev) * torch.cos(azim)]).float()


def start_eye(truth: torch.Tensor, generator: torch.Generator, cfg: PoseConfig) -> torch.Tensor:
    """A start position whose camera rotation is ``start_angle_min..start_angle_max`` degrees from the truth's.

    The eye is turned about a random axis perpendicular to it, which rotates the look-at camera by that
    angle (up to the roll the +Y-up constraint removes); drawn again until the measured rotation error is
    in range, so the start is honestly at least ``start_angle_min`` away.
    """
    R_true = look_at_rotation(truth[None])
    for _ in range(100):
        angle = math.radians(cfg.start_angle_min + float(torch.rand((), generator=generator)) * (cfg.start_angle_max - cfg.start_angle_min))
        axis = torch.cross(truth, torch.randn(3, generator=generator), dim=0)
        axis = axis / axis.norm()
        # Rodrigues' rotation of the eye about ``axis`` (perpendicular to it).
        eye = truth * math.cos(angle) + torch.cross(axis, truth, dim=0) * math.sin(angle)
        err = float(rotation_error_deg(look_at_rotation(eye[None]), R_true)[0])
        if cfg.start_angle_min <= err <= cfg.start_angle_max + 5.0 and abs(eye[1]) < 0.95 * truth.norm():
            return eye
    raise RuntimeError("could not draw a start pose in the requested angle range")


def _gaussian_blur(x: torch.Tensor, sigma_px: float) -> torch.Tensor:
    """(B, C, H, W) images blurred by a Gaussian of ``sigma_px`` pixels (edges replicated); ``x`` itself
    below 0.3 px, where the kernel is nearly a delta."""
    if sigma_px < 0.3:
        return x
    return gaussian_filter(x, sigma_px, int(math.ceil(3.0 * sigma_px)), replicate=True)


def _blurred_mse(a: torch.Tensor, b: torch.Tensor, sigma_px: float) -> torch.Tensor:
    """MSE of (*, H, W, C) images a and b after :func:`_gaussian_blur` by ``sigma_px``."""
    H, W, C = a.shape[-3:]
    a, b = a.reshape(-1, H, W, C).permute(0, 3, 1, 2), b.reshape(-1, H, W, C).permute(0, 3, 1, 2)
    return ((_gaussian_blur(a, sigma_px) - _gaussian_blur(b, sigma_px)) ** 2).mean()


def _pyramid_mse(a: torch.Tensor, b: torch.Tensor, levels: int) -> torch.Tensor:
    """Mean of the MSEs of (*, H, W, C) images a and b at ``levels`` scales (2 x 2 average pooling)."""
    H, W, C = a.shape[-3:]
    a, b = a.reshape(-1, H, W, C).permute(0, 3, 1, 2), b.reshape(-1, H, W, C).permute(0, 3, 1, 2)
    total = ((a - b) ** 2).mean()
    for _ in range(levels - 1):
        if min(a.shape[-2:]) < 2:
            break
        a, b = torch.nn.functional.avg_pool2d(a, 2), torch.nn.functional.avg_pool2d(b, 2)
        total = total + ((a - b) ** 2).mean()
    return total / levels


def fit_pose(
    mesh: Meshes,
    reference: torch.Tensor,
    init_eye: torch.Tensor,
    cfg: Optional[PoseConfig] = None,
    *,
    true_eye: Optional[torch.Tensor] = None,
    progress: Optional[Callable[[int, Dict[str, float]], None]] = None,
) -> PoseResult:
    """Optimise the camera position so that ``mesh`` rendered from it matches ``reference``.

    Args:
        mesh: one mesh, already normalised to the unit sphere (see ``normalize_to_unit_sphere``).
        reference: (H, W, 4) RGBA or (H, W) silhouette in [0, 1], H = W = ``cfg.image_size``. With RGBA,
            colour and silhouette are matched; with a silhouette, the silhouette only.
        init_eye: (3,) starting camera position.
        true_eye: if known (synthetic reference), the metrics include the rotation and translation errors.
    """
    cfg = cfg or PoseConfig()
    check_choice(cfg.gradients, "gradients", GRADIENTS)
    device = mesh.device
    rgb_ref = reference.dim() == 3
    alpha_ref = reference[..., 3] if rgb_ref else reference
    eye = init_eye.detach().clone().to(device).requires_grad_(True)
    opt = torch.optim.Adam([eye], lr=cfg.lr)
    start = time.perf_counter()
    history: Dict[str, List[float]] = {}
    snapshots: List[torch.Tensor] = []
    for step in range(cfg.iters):
        t = step / max(cfg.iters - 1, 1)
        sigma = cfg.sigma_start * (cfg.sigma_end / cfg.sigma_start) ** t
        cams = camera_from_eye(eye[None], cfg.fov)
        if cfg.gradients == "antialias":
            fragments = MeshRasterizer(cameras=cams, raster_settings=RasterSettings(cfg.image_size))(mesh)
            img = AntialiasedHardPhongShader(cameras=cams, lights=headlight(cams))(fragments, mesh)[0]
            alpha, rgb = img[..., 3], img[..., :3]
            blur = cfg.image_size * cfg.blur_start * (cfg.blur_end / cfg.blur_start) ** t
            terms = {"silhouette": _blurred_mse(alpha[..., None], alpha_ref[..., None], blur)}
            if rgb_ref:
                terms["rgb"] = _blurred_mse(rgb, reference[..., :3], blur)
        else:
            settings = RasterSettings(
                image_size=cfg.image_size, blur_radius=soft_blur_radius(sigma), faces_per_pixel=cfg.faces_per_pixel
            )
            fragments = MeshRasterizer(cameras=cams, raster_settings=settings)(mesh)
            blend = BlendParams(sigma=sigma, gamma=1e-4)
            alpha = SoftSilhouetteShader(blend_params=blend)(fragments, mesh)[0, ..., 3]
            terms = {"silhouette": ((alpha - alpha_ref) ** 2).mean()}
            if rgb_ref:
                rgb = SoftPhongShader(cameras=cams, lights=headlight(cams), blend_params=blend)(fragments, mesh)[0, ..., :3]
                terms["rgb"] = ((rgb - reference[..., :3]) ** 2).mean()
        loss = sum(getattr(cfg, f"w_{k}") * v for k, v in terms.items())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():  # keep the camera outside the unit sphere that holds the mesh
            n = eye.norm().clamp_min(1e-6)
            eye.mul_(torch.clamp(n, min=1.2) / n)
        values = {k: float(v.detach()) for k, v in terms.items()}
        values["total"] = float(loss.detach())
        for k, v in values.items():
            history.setdefault(k, []).append(v)
        if step % cfg.snapshot_every == 0 or step == cfg.iters - 1:
            shown = rgb.detach() if rgb_ref else alpha.detach()[..., None].expand(-1, -1, 3)
            ref = reference[..., :3] if rgb_ref else alpha_ref[..., None].expand(-1, -1, 3)
            snapshots.append(torch.cat([shown, ref], dim=1).cpu())
        if progress is not None:
            progress(step, values)
    final = camera_from_eye(eye.detach()[None], cfg.fov)
    metrics: Dict[str, float] = {"iterations": cfg.iters, "wall_time_s": round(time.perf_counter() - start, 2)}
    if true_eye is not None:
        truth = camera_from_eye(true_eye.to(device)[None], cfg.fov)
        metrics["rotation_error_deg"] = float(rotation_error_deg(final.R, truth.R)[0])
        metrics["translation_error"] = float((final.T - truth.T).norm())
        metrics["camera_position_error"] = float((eye.detach() - true_eye.to(device)).norm())
    metrics["config"] = asdict(cfg)
    return PoseResult(eye=eye.detach(), cameras=final, history=history, snapshots=snapshots, metrics=metrics)
