"""The rotation group SO(3) through its Lie algebra, as PyTorch3D's ``pytorch3d.transforms.so3``.

A rotation ``R`` (N, 3, 3) is represented by ``log_rot`` (N, 3): the axis times the angle in radians
(the axis-angle vector). ``so3_exp_map`` / ``so3_log_map`` convert between the two with the
conventions of :mod:`diffras.transforms.rotation_conversions` (column-vector matrices, as PyTorch3D).
Angles between rotations use ``acos`` with a linear extension near +-1, so gradients stay finite at
zero and 180 degrees.
"""
from __future__ import annotations

from typing import Tuple

import torch

from .._validation import check_tensor
from .rotation_conversions import axis_angle_to_matrix, matrix_to_axis_angle

__all__ = [
    "acos_linear_extrapolation",
    "hat",
    "hat_inv",
    "so3_exp_map",
    "so3_log_map",
    "so3_relative_angle",
    "so3_rotation_angle",
]

# PyTorch3D's tolerance on the skew-symmetry of hat_inv's input.
_SKEW_TOL = 1e-5


def _batch_of(x: torch.Tensor, name: str, shape: Tuple[int, ...]) -> torch.Tensor:
    check_tensor(x, name, dtype="float")
    if x.dim() != len(shape) + 1 or tuple(x.shape[1:]) != shape:
        want = ", ".join(["N"] + [str(s) for s in shape])
        raise ValueError(f"{name}: expected shape ({want}), got {tuple(x.shape)}")
    return x


def acos_linear_extrapolation(x: torch.Tensor, bounds: Tuple[float, float] = (-1 + 1e-4, 1 - 1e-4)) -> torch.Tensor:
    """``acos(x)`` inside ``bounds``, its tangent line outside (finite values and gradients everywhere).

    Args:
        x: any shape, float.
        bounds: ``(low, high)`` with ``-1 < low <= high < 1``.
    """
    low, high = float(bounds[0]), float(bounds[1])
    if not -1.0 < low <= high < 1.0:
        raise ValueError(f"bounds: expected -1 < low <= high < 1, got {bounds}")
    check_tensor(x, "x", dtype="float")

    def tangent(at: float) -> torch.Tensor:
        # acos(at) + acos'(at) * (x - at), acos'(t) = -1 / sqrt(1 - t^2)
        at_t = torch.tensor(at, dtype=x.dtype, device=x.device)
        return torch.acos(at_t) - (x - at) / torch.sqrt(1.0 - at_t * at_t)

    inside = x.clamp(low, high)
    return torch.where(x > high, tangent(high), torch.where(x < low, tangent(low), torch.acos(inside)))


def hat(v: torch.Tensor) -> torch.Tensor:
    """Skew-symmetric matrices (N, 3, 3) of vectors ``v`` (N, 3): ``hat(v) @ w == cross(v, w)``."""
    v = _batch_of(v, "v", (3,))
    x, y, z = v.unbind(1)
    zero = torch.zeros_like(x)
    return torch.stack((zero, -z, y, z, zero, -x, -y, x, zero), 1).view(-1, 3, 3)


def hat_inv(h: torch.Tensor) -> torch.Tensor:
    """Vectors (N, 3) of skew-symmetric matrices ``h`` (N, 3, 3); the inverse of :func:`hat`.

    Raises ValueError when ``h`` is not skew-symmetric within 1e-5 (PyTorch3D's tolerance)."""
    h = _batch_of(h, "h", (3, 3))
    if h.shape[0] and float((h + h.transpose(1, 2)).abs().max()) > _SKEW_TOL:
        raise ValueError("h: expected skew-symmetric matrices (h == -h^T), got a matrix that is not")
    return torch.stack((h[:, 2, 1], h[:, 0, 2], h[:, 1, 0]), 1)


def so3_exp_map(log_rot: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """Rotation matrices (N, 3, 3) from axis-angle vectors ``log_rot`` (N, 3) (Rodrigues' formula).

    ``eps`` is accepted for PyTorch3D compatibility: the conversion here is exact and smooth at zero
    (a Taylor expansion near the singularity), so no clamping is needed."""
    return axis_angle_to_matrix(_batch_of(log_rot, "log_rot", (3,)))


def so3_log_map(R: torch.Tensor, eps: float = 1e-4, cos_bound: float = 1e-4) -> torch.Tensor:
    """Axis-angle vectors (N, 3) of rotation matrices ``R`` (N, 3, 3); the inverse of :func:`so3_exp_map`
    for angles in [0, pi). ``eps`` and ``cos_bound`` are accepted for PyTorch3D compatibility (unused, as
    in PyTorch3D)."""
    return matrix_to_axis_angle(_batch_of(R, "R", (3, 3)))


def so3_rotation_angle(R: torch.Tensor, eps: float = 1e-4, cos_angle: bool = False,
                       cos_bound: float = 1e-4) -> torch.Tensor:
    """Rotation angles (N,) in radians of ``R`` (N, 3, 3): ``acos((trace(R) - 1) / 2)``.

    Args:
        eps: tolerance of the trace check: a trace outside [-1 - eps, 3 + eps] raises ValueError.
        cos_angle: return the cosine of the angle instead (no acos).
        cos_bound: > 0: the acos is linearly extended outside [-1 + cos_bound, 1 - cos_bound]
            (finite gradients at 0 and pi); 0: plain ``torch.acos``.
    """
    R = _batch_of(R, "R", (3, 3))
    trace = R[:, 0, 0] + R[:, 1, 1] + R[:, 2, 2]
    if bool(((trace < -1.0 - eps) | (trace > 3.0 + eps)).any()):
        raise ValueError(f"R: expected rotation matrices (trace in [-1, 3] within eps={eps}), got a trace outside")
    cos = (trace - 1.0) * 0.5
    if cos_angle:
        return cos
    if cos_bound > 0.0:
        return acos_linear_extrapolation(cos, (-1.0 + cos_bound, 1.0 - cos_bound))
    return torch.acos(cos)


def so3_relative_angle(R1: torch.Tensor, R2: torch.Tensor, cos_angle: bool = False, cos_bound: float = 1e-4,
                       eps: float = 1e-4) -> torch.Tensor:
    """Angles (N,) in radians between rotations ``R1`` and ``R2`` (N, 3, 3): the rotation angle of
    ``R1 @ R2^T`` (the geodesic distance on SO(3)). Arguments as :func:`so3_rotation_angle`."""
    R1 = _batch_of(R1, "R1", (3, 3))
    R2 = _batch_of(R2, "R2", (3, 3))
    if R1.shape[0] != R2.shape[0]:
        raise ValueError(f"R2: expected the batch of R1 ({R1.shape[0]}), got {R2.shape[0]}")
    return so3_rotation_angle(R1 @ R2.transpose(1, 2), eps=eps, cos_angle=cos_angle, cos_bound=cos_bound)
