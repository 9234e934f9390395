"""EWA projection of 3D Gaussians into pinhole cameras, with gsplat's CUDA-kernel rules (plain torch).

The projection is per (camera, Gaussian) and cheap next to compositing, so it is written once in plain
torch: autograd gives its exact gradients on every device, to means, quats, scales, opacities and
viewmats. What gsplat's ``fully_fused_projection`` kernel does, step by step:

1. ``quats`` (wxyz, any norm) are normalised; ``Sigma = R S S^T R^T`` with ``S = diag(scales)``.
2. ``viewmats`` map world to camera (OpenCV: +X right, +Y down, +Z forward). A Gaussian whose camera-space
   ``z`` is outside ``[near_plane, far_plane]`` is culled.
3. EWA: ``Sigma2d = J W Sigma W^T J^T`` with the perspective Jacobian ``J`` evaluated at ``(tx, ty, z)``,
   where ``x/z`` and ``y/z`` are clamped to 1.3x the half field of view on each side of the principal
   point (``lim_x+ = (width - cx) / fx + 0.3 * width / (2 fx)``, ``lim_x- = cx / fx + 0.3 * width / (2 fx)``).
   The projected mean ``(fx x / z + cx, fy y / z + cy)`` is not clamped.
4. Blur: ``eps2d`` is added to the diagonal of ``Sigma2d``; the antialiased mode multiplies opacity by
   ``sqrt(max(0, det(Sigma2d) / det(Sigma2d + eps2d I)))``. ``det <= 0`` culls.
5. Footprint: with ``o`` the (compensated) opacity, ``o < 1/255`` culls; otherwise the radius per axis is
   ``ceil(min(3.33, sqrt(2 ln(255 o))) * sqrt(Sigma2d_axis))``, and a Gaussian whose box lies outside the
   image (or whose radii are both ``<= radius_clip``) is culled. Culled entries have ``radii = 0`` and
   zeros elsewhere.
"""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np
import torch

__all__ = ["ALPHA_THRESHOLD", "project_gaussians", "quat_scale_to_covar"]


class _ProjectNumba(torch.autograd.Function):
    """The same projection by the Numba kernels with their hand-written backward (CPU float32/float64).
    Returns (means2d, conics, depths, opacities, radii, compensations); radii and compensations carry no
    gradient."""

    @staticmethod
    def forward(ctx, means, quats, scales, opacities, viewmats, Ks, width, height, near, far, radius_clip, eps2d, aa):
        from . import _projection_numba as K

        C, N = viewmats.shape[0], means.shape[0]
        dt = means.dtype
        arrays = [t.detach().contiguous().numpy() for t in (means, quats, scales, opacities, viewmats, Ks)]
        m2d, con = torch.empty(C, N, 2, dtype=dt), torch.empty(C, N, 3, dtype=dt)
        dep, op, comp = torch.empty(C, N, dtype=dt), torch.empty(C, N, dtype=dt), torch.empty(C, N, dtype=dt)
        radii = torch.empty(C, N, 2, dtype=torch.int32)
        K.project_forward(*arrays, width, height, near, far, radius_clip, eps2d, aa,
                          m2d.numpy(), con.numpy(), dep.numpy(), radii.numpy(), op.numpy(), comp.numpy())
        ctx.arrays, ctx.radii, ctx.args = arrays, radii, (width, height, eps2d, aa)
        ctx.mark_non_differentiable(radii, comp)
        return m2d, con, dep, op, radii, comp

    @staticmethod
    def backward(ctx, v_m2d, v_con, v_dep, v_op, _v_radii, _v_comp):
        from . import _projection_numba as K

        means, quats, scales, opacities, viewmats, Ks = ctx.arrays
        width, height, eps2d, aa = ctx.args
        C, N = viewmats.shape[0], means.shape[0]
        g = [np.zeros(s) for s in ((N, 3), (N, 4), (N, 3), (N,))]
        gW, gt = np.empty((C, N, 3, 3)), np.empty((C, N, 3))
        grads = [np.ascontiguousarray(t.detach().to(torch.float64).numpy()) if t is not None else np.zeros(s)
                 for t, s in ((v_m2d, (C, N, 2)), (v_con, (C, N, 3)), (v_dep, (C, N)), (v_op, (C, N)))]
        K.project_backward(means, quats, scales, opacities, viewmats, Ks, width, height, eps2d, aa,
                           ctx.radii.numpy(), *grads, *g, gW, gt)
        dt = v_m2d.dtype if v_m2d is not None else torch.float64
        v_view = torch.zeros(C, 4, 4, dtype=torch.float64)
        v_view[:, :3, :3] = torch.from_numpy(gW).sum(1)
        v_view[:, :3, 3] = torch.from_numpy(gt).sum(1)
        out = [torch.from_numpy(a).to(dt) for a in g]
        return (*out, v_view.to(dt), None, None, None, None, None, None, None, None)

# gsplat's constants (cuda/include/Common.h).
ALPHA_THRESHOLD = 1.0 / 255.0
GAUSSIAN_EXTEND = 3.33


def quat_to_rotmat(quats: torch.Tensor) -> torch.Tensor:
    """``quats: (*, 4)`` wxyz, any non-zero norm -> rotation matrices ``(*, 3, 3)``."""
    w, x, y, z = (quats / quats.norm(dim=-1, keepdim=True)).unbind(-1)
    rows = [
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ]
    return torch.stack(rows, dim=-1).reshape(quats.shape[:-1] + (3, 3))


def quat_scale_to_covar(quats: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """``quats: (*, 4)`` wxyz, ``scales: (*, 3)`` -> world covariances ``R diag(s)^2 R^T: (*, 3, 3)``."""
    m = quat_to_rotmat(quats) * scales[..., None, :]
    return m @ m.transpose(-1, -2)


def project_gaussians(
    means: torch.Tensor,
    quats: torch.Tensor,
    scales: torch.Tensor,
    opacities: torch.Tensor,
    viewmats: torch.Tensor,
    Ks: torch.Tensor,
    width: int,
    height: int,
    *,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    radius_clip: float = 0.0,
    eps2d: float = 0.3,
    antialiased: bool = False,
    backend: str = "torch",
) -> Dict[str, Optional[torch.Tensor]]:
    """Project ``N`` Gaussians into ``C`` cameras (inputs already validated by ``rasterization``).

    Args:
        means: (N, 3), quats: (N, 4) wxyz, scales: (N, 3), opacities: (N,) in [0, 1].
        viewmats: (C, 4, 4) world-to-camera (OpenCV), Ks: (C, 3, 3) pixel intrinsics.

    Returns a dict of ``(C, N, ...)`` tensors: ``means2d (C, N, 2)`` pixels, ``conics (C, N, 3)`` (the upper
    triangle a, b, c of the inverse blurred 2D covariance), ``depths (C, N)`` camera z, ``radii (C, N, 2)``
    int32 (0 = culled), ``opacities (C, N)`` (compensated in antialiased mode) and ``compensations (C, N)``
    (None unless antialiased). Entries with ``radii == 0`` are zero. ``backend="numba"`` (CPU float32/float64)
    runs the same rules in Numba kernels with a hand-written backward.
    """
    if backend == "numba":
        m2d, con, dep, op, radii, comp = _ProjectNumba.apply(
            means, quats, scales, opacities, viewmats, Ks, width, height, near_plane, far_plane, radius_clip, eps2d,
            antialiased)
        return {"means2d": m2d, "conics": con, "depths": dep, "radii": radii, "opacities": op,
                "compensations": comp if antialiased else None}
    R = viewmats[:, :3, :3]  # (C, 3, 3)
    t = viewmats[:, :3, 3]  # (C, 3)
    mean_c = torch.einsum("cij,nj->cni", R, means) + t[:, None, :]  # (C, N, 3)
    cov_c = R[:, None] @ quat_scale_to_covar(quats, scales)[None] @ R.transpose(-1, -2)[:, None]  # (C, N, 3, 3)
    x, y, z = mean_c.unbind(-1)
    valid = (z >= near_plane) & (z <= far_plane)
    z = torch.where(valid, z, torch.ones_like(z))  # culled: keep the arithmetic finite (and its gradient)

    fx, fy = Ks[:, 0, 0, None], Ks[:, 1, 1, None]  # (C, 1)
    cx, cy = Ks[:, 0, 2, None], Ks[:, 1, 2, None]
    tan_fovx, tan_fovy = 0.5 * width / fx, 0.5 * height / fy
    lim_x_pos, lim_x_neg = (width - cx) / fx + 0.3 * tan_fovx, cx / fx + 0.3 * tan_fovx
    lim_y_pos, lim_y_neg = (height - cy) / fy + 0.3 * tan_fovy, cy / fy + 0.3 * tan_fovy
    rz = 1.0 / z
    tx = z * torch.minimum(lim_x_pos, torch.maximum(-lim_x_neg, x * rz))
    ty = z * torch.minimum(lim_y_pos, torch.maximum(-lim_y_neg, y * rz))
    zero = torch.zeros_like(z)
    J = torch.stack([fx * rz, zero, -fx * tx * rz * rz, zero, fy * rz, -fy * ty * rz * rz], dim=-1)
    J = J.reshape(z.shape + (2, 3))
    cov2d = J @ cov_c @ J.transpose(-1, -2)  # (C, N, 2, 2)
    means2d = torch.stack([fx * x * rz + cx, fy * y * rz + cy], dim=-1)

    a0, b, c0 = cov2d[..., 0, 0], cov2d[..., 0, 1], cov2d[..., 1, 1]
    a, c = a0 + eps2d, c0 + eps2d
    det = a * c - b * b
    valid = valid & (det > 0)
    det = torch.where(valid, det, torch.ones_like(det))
    compensations = None
    opac = opacities[None, :].expand(z.shape)
    if antialiased:
        ratio = (a0 * c0 - b * b) / det
        # sqrt has an infinite slope at 0: keep the clamped entries (no gradient there anyway) away from it.
        pos = valid & (ratio > 0)
        compensations = torch.where(pos, torch.sqrt(torch.where(pos, ratio, torch.ones_like(ratio))), zero)
        opac = opac * compensations
    conics = torch.stack([c / det, -b / det, a / det], dim=-1)

    with torch.no_grad():  # the footprint is integer bookkeeping: no gradient
        o = opac.detach()
        valid = valid & (o >= ALPHA_THRESHOLD)
        extend = torch.sqrt(2.0 * torch.log(torch.where(valid, o, torch.ones_like(o)) / ALPHA_THRESHOLD))
        extend = extend.clamp(max=GAUSSIAN_EXTEND)
        rx = torch.ceil(extend * torch.sqrt(a.detach().clamp(min=0)))
        ry = torch.ceil(extend * torch.sqrt(c.detach().clamp(min=0)))
        valid = valid & (~((rx <= radius_clip) & (ry <= radius_clip)))
        mx, my = means2d[..., 0].detach(), means2d[..., 1].detach()
        valid = valid & (~((mx + rx <= 0) | (mx - rx >= width) | (my + ry <= 0) | (my - ry >= height)))
        radii = torch.stack([rx, ry], dim=-1).where(valid[..., None], torch.zeros_like(means2d)).to(torch.int32)

    keep = valid.to(means.dtype)
    return {
        "means2d": means2d * keep[..., None],
        "conics": conics * keep[..., None],
        "depths": mean_c[..., 2] * keep,
        "radii": radii,
        "opacities": opac * keep,
        "compensations": None if compensations is None else compensations * keep,
    }
