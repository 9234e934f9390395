"""Conversions between rotation representations, with PyTorch3D's names and conventions.

Every rotation matrix here acts on **column** vectors: ``v_rotated = R @ v`` (PyTorch3D's
``rotation_conversions`` convention). ``Rotate(R)`` in a row-vector ``Transform3d`` therefore rotates
points by ``R.T``; cameras take ``R`` as given (``X_view = X_world @ R + T``).

Shapes use ``*`` for any leading dimensions:
- quaternion ``(*, 4)``, real part first ``(w, x, y, z)``;
- axis-angle ``(*, 3)``: unit axis times angle in radians (right-hand rule);
- Euler angles ``(*, 3)`` in radians with a ``convention`` such as ``"XYZ"``:
  ``R = R_X(a0) @ R_Y(a1) @ R_Z(a2)`` (intrinsic rotations, first letter outermost);
- 6D ``(*, 6)``: the first two **rows** of the matrix (Zhou et al., CVPR 2019).

Gradients are finite everywhere: axis-angle at zero angle uses series expansions, and the matrix to
quaternion conversion picks the best-conditioned of four candidates, so it is stable near 180 degrees.
"""
from __future__ import annotations

from typing import Optional

import torch

from .._validation import check_int, check_tensor

__all__ = [
    "axis_angle_to_matrix",
    "axis_angle_to_quaternion",
    "euler_angles_to_matrix",
    "matrix_to_axis_angle",
    "matrix_to_euler_angles",
    "matrix_to_quaternion",
    "matrix_to_rotation_6d",
    "quaternion_apply",
    "quaternion_invert",
    "quaternion_multiply",
    "quaternion_raw_multiply",
    "quaternion_to_axis_angle",
    "quaternion_to_matrix",
    "random_quaternions",
    "random_rotations",
    "rotation_6d_to_matrix",
    "standardize_quaternion",
]

# Below this squared angle the series expansions are exact to float64 rounding (theta^6 ~ 1e-18).
_SMALL_SQ = 1e-6


def _check_last(x, name: str, size: int, rows: Optional[int] = None) -> torch.Tensor:
    check_tensor(x, name, dtype="float")
    if rows is None:
        if x.dim() < 1 or x.shape[-1] != size:
            raise ValueError(f"{name}: expected shape (*, {size}), got {tuple(x.shape)}")
    elif x.dim() < 2 or x.shape[-2:] != (rows, size):
        raise ValueError(f"{name}: expected shape (*, {rows}, {size}), got {tuple(x.shape)}")
    return x


def _check_convention(convention) -> str:
    if not isinstance(convention, str) or len(convention) != 3 or any(c not in "XYZ" for c in convention):
        raise ValueError(f"convention: expected 3 letters from 'XYZ' such as 'XYZ' or 'ZYZ', got {convention!r}")
    if convention[0] == convention[1] or convention[1] == convention[2]:
        raise ValueError(f"convention: expected no two equal consecutive axes, got {convention!r}")
    return convention


def quaternion_to_matrix(quaternions: torch.Tensor) -> torch.Tensor:
    """Quaternions ``(*, 4)`` (real part first, any non-zero norm) to rotation matrices ``(*, 3, 3)``."""
    _check_last(quaternions, "quaternions", 4)
    r, i, j, k = quaternions.unbind(-1)
    # Dividing by the squared norm makes non-unit quaternions valid input and keeps the gradient
    # tangent to the unit sphere.
    s = 2.0 / (quaternions * quaternions).sum(-1)
    m = torch.stack(
        (
            1 - s * (j * j + k * k), s * (i * j - k * r), s * (i * k + j * r),
            s * (i * j + k * r), 1 - s * (i * i + k * k), s * (j * k - i * r),
            s * (i * k - j * r), s * (j * k + i * r), 1 - s * (i * i + j * j),
        ),
        -1,
    )
    return m.reshape(quaternions.shape[:-1] + (3, 3))


def standardize_quaternion(quaternions: torch.Tensor) -> torch.Tensor:
    """Flip each quaternion ``(*, 4)`` so that its real part is non-negative (same rotation)."""
    _check_last(quaternions, "quaternions", 4)
    return torch.where(quaternions[..., :1] < 0, -quaternions, quaternions)


def matrix_to_quaternion(matrix: torch.Tensor) -> torch.Tensor:
    """Rotation matrices ``(*, 3, 3)`` to unit quaternions ``(*, 4)``, real part first and >= 0."""
    _check_last(matrix, "matrix", 3, rows=3)
    m = matrix
    m00, m01, m02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    m10, m11, m12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    m20, m21, m22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    # 4 w^2, 4 x^2, 4 y^2, 4 z^2 from the diagonal; they sum to 4, so the largest is >= 1 and the
    # candidate built from it is well conditioned. The clamp only touches candidates never selected
    # and keeps their (discarded) gradients finite.
    sq = torch.stack(
        (1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22), -1
    )
    two_q = torch.sqrt(sq.clamp(min=0.1))  # 2|q_c| for candidate c
    a, b, c, d = two_q.unbind(-1)
    cands = torch.stack(
        (
            torch.stack((a * a, m21 - m12, m02 - m20, m10 - m01), -1) / (2 * a)[..., None],
            torch.stack((m21 - m12, b * b, m10 + m01, m02 + m20), -1) / (2 * b)[..., None],
            torch.stack((m02 - m20, m10 + m01, c * c, m12 + m21), -1) / (2 * c)[..., None],
            torch.stack((m10 - m01, m20 + m02, m21 + m12, d * d), -1) / (2 * d)[..., None],
        ),
        -2,
    )  # (*, 4, 4): row c is the quaternion computed from the c-th largest-component guess
    best = sq.argmax(-1)
    q = torch.gather(cands, -2, best[..., None, None].expand(best.shape + (1, 4))).squeeze(-2)
    return standardize_quaternion(q)


def _sinc_and_cosc(theta_sq: torch.Tensor):
    """``sin(t)/t`` and ``(1 - cos t)/t^2`` as functions of ``t^2``, with finite gradients at 0."""
    small = theta_sq < _SMALL_SQ
    safe_sq = torch.where(small, torch.ones_like(theta_sq), theta_sq)
    t = torch.sqrt(safe_sq)
    sinc = torch.where(small, 1 - theta_sq / 6 + theta_sq * theta_sq / 120, torch.sin(t) / t)
    # (1 - cos t) / t^2 written as 2 sin^2(t/2) / t^2: no cancellation for small t in float32.
    half_sinc = torch.sin(t / 2) / t
    cosc = torch.where(small, 0.5 - theta_sq / 24 + theta_sq * theta_sq / 720, 2 * half_sinc * half_sinc)
    return sinc, cosc


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """Axis-angle vectors ``(*, 3)`` (angle = norm, radians) to rotation matrices ``(*, 3, 3)``
    by Rodrigues' formula ``R = I + sinc(t) [w]x + cosc(t) [w]x^2``."""
    _check_last(axis_angle, "axis_angle", 3)
    sinc, cosc = _sinc_and_cosc((axis_angle * axis_angle).sum(-1))
    x, y, z = axis_angle.unbind(-1)
    zero = torch.zeros_like(x)
    wx = torch.stack((zero, -z, y, z, zero, -x, -y, x, zero), -1).reshape(axis_angle.shape[:-1] + (3, 3))
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device)
    return eye + sinc[..., None, None] * wx + cosc[..., None, None] * (wx @ wx)


def axis_angle_to_quaternion(axis_angle: torch.Tensor) -> torch.Tensor:
    """Axis-angle ``(*, 3)`` to unit quaternions ``(*, 4)`` (real part first)."""
    _check_last(axis_angle, "axis_angle", 3)
    theta_sq = (axis_angle * axis_angle).sum(-1)
    small = theta_sq < _SMALL_SQ
    safe_sq = torch.where(small, torch.ones_like(theta_sq), theta_sq)
    t = torch.sqrt(safe_sq)
    # sin(t/2)/t and cos(t/2), series for small t
    half_sinc = torch.where(small, 0.5 - theta_sq / 48 + theta_sq * theta_sq / 3840, torch.sin(t / 2) / t)
    w = torch.where(small, 1 - theta_sq / 8 + theta_sq * theta_sq / 384, torch.cos(t / 2))
    return torch.cat((w[..., None], axis_angle * half_sinc[..., None]), -1)


def quaternion_to_axis_angle(quaternions: torch.Tensor) -> torch.Tensor:
    """Quaternions ``(*, 4)`` (real part first) to axis-angle ``(*, 3)`` with angle in [0, pi]."""
    _check_last(quaternions, "quaternions", 4)
    q = standardize_quaternion(quaternions)
    w, v = q[..., 0], q[..., 1:]
    n_sq = (v * v).sum(-1)
    small = n_sq < _SMALL_SQ * w * w  # angle small: |v|/w < 1e-3
    safe_sq = torch.where(small, torch.ones_like(n_sq), n_sq)
    n = torch.sqrt(safe_sq)
    # angle / |v| = 2 atan2(|v|, w) / |v|; near |v| = 0 use the series of atan(r)/r, r = |v|/w.
    safe_w = torch.where(small, w, torch.ones_like(w))
    r_sq = n_sq / (safe_w * safe_w)
    ratio = torch.where(small, 2 / safe_w * (1 - r_sq / 3 + r_sq * r_sq / 5), 2 * torch.atan2(n, w) / n)
    return v * ratio[..., None]


def matrix_to_axis_angle(matrix: torch.Tensor) -> torch.Tensor:
    """Rotation matrices ``(*, 3, 3)`` to axis-angle ``(*, 3)``, angle in [0, pi]. Stable at 0 and
    near pi (goes through :func:`matrix_to_quaternion`)."""
    return quaternion_to_axis_angle(matrix_to_quaternion(matrix))


def quaternion_raw_multiply(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Hamilton product of quaternions ``(*, 4)`` (broadcast), not normalised."""
    _check_last(a, "a", 4)
    _check_last(b, "b", 4)
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack(
        (
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ),
        -1,
    )


def quaternion_multiply(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Product ``a * b`` (rotation b then a), standardised to a non-negative real part."""
    return standardize_quaternion(quaternion_raw_multiply(a, b))


def quaternion_invert(quaternion: torch.Tensor) -> torch.Tensor:
    """Conjugate of quaternions ``(*, 4)``; the inverse rotation for unit quaternions."""
    _check_last(quaternion, "quaternion", 4)
    return quaternion * quaternion.new_tensor([1.0, -1.0, -1.0, -1.0])


def quaternion_apply(quaternion: torch.Tensor, point: torch.Tensor) -> torch.Tensor:
    """Rotate points ``(*, 3)`` by unit quaternions ``(*, 4)`` (broadcast)."""
    _check_last(point, "point", 3)
    p = torch.cat((torch.zeros_like(point[..., :1]), point), -1)
    out = quaternion_raw_multiply(quaternion_raw_multiply(quaternion, p), quaternion_invert(quaternion))
    return out[..., 1:]


def _axis_rotation(axis: str, angle: torch.Tensor) -> torch.Tensor:
    c, s = torch.cos(angle), torch.sin(angle)
    one, zero = torch.ones_like(angle), torch.zeros_like(angle)
    if axis == "X":
        flat = (one, zero, zero, zero, c, -s, zero, s, c)
    elif axis == "Y":
        flat = (c, zero, s, zero, one, zero, -s, zero, c)
    else:
        flat = (c, -s, zero, s, c, zero, zero, zero, one)
    return torch.stack(flat, -1).reshape(angle.shape + (3, 3))


def euler_angles_to_matrix(euler_angles: torch.Tensor, convention: str) -> torch.Tensor:
    """Euler angles ``(*, 3)`` in radians to rotation matrices ``(*, 3, 3)``.

    ``convention`` is three letters from ``"XYZ"`` (e.g. ``"XYZ"``, ``"ZYX"``, ``"ZYZ"``);
    ``R = R_{c0}(a0) @ R_{c1}(a1) @ R_{c2}(a2)`` as PyTorch3D.
    """
    _check_last(euler_angles, "euler_angles", 3)
    convention = _check_convention(convention)
    mats = [_axis_rotation(ax, a) for ax, a in zip(convention, euler_angles.unbind(-1))]
    return mats[0] @ mats[1] @ mats[2]


def matrix_to_euler_angles(matrix: torch.Tensor, convention: str) -> torch.Tensor:
    """Rotation matrices ``(*, 3, 3)`` to Euler angles ``(*, 3)`` (inverse of
    :func:`euler_angles_to_matrix`). Ranges as PyTorch3D: the middle angle is in [-pi/2, pi/2]
    (Tait-Bryan, e.g. ``"XYZ"``) or [0, pi] (proper Euler, e.g. ``"ZYZ"``); the others in (-pi, pi].
    At gimbal lock (middle angle at a range end) the last angle is set to 0 and the first carries
    the whole turn, so the result still reproduces the matrix."""
    _check_last(matrix, "matrix", 3, rows=3)
    convention = _check_convention(convention)
    i0, i1, i2 = ("XYZ".index(c) for c in convention)
    k = 3 - i0 - i1  # the axis that is neither the first nor the middle one
    p = 1.0 if (i1 - i0) % 3 == 1 else -1.0  # parity of (i0, i1, k): e_i0 x e_i1 = p e_k
    m = matrix
    if i0 != i2:  # Tait-Bryan (k == i2)
        y0, x0 = -p * m[..., i1, i2], m[..., i2, i2]
        y2, x2 = -p * m[..., i0, i1], m[..., i0, i0]
        sin_a1 = p * m[..., i0, i2]
    else:  # proper Euler
        y0, x0 = m[..., i1, i0], -p * m[..., k, i0]
        y2, x2 = m[..., i0, i1], p * m[..., i0, k]
        cos_a1 = m[..., i0, i0]
    # (x2, y2) has length |cos a1| (Tait-Bryan) or |sin a1| (proper): below sqrt(eps) the outer
    # angles are ill-defined; then a2 = 0 and R = R_i0(a0) R_i1(a1), whose column i1 is
    # R_i0(a0) e_i1 = cos(a0) e_i1 + p sin(a0) e_k.
    r_sq = x2 * x2 + y2 * y2
    lock = r_sq < torch.finfo(m.dtype).eps
    one, zero = torch.ones_like(x0), torch.zeros_like(x0)
    # The middle angle by atan2 (not asin/acos, whose slope is infinite at gimbal lock).
    r = torch.where(lock, zero, torch.sqrt(torch.where(lock, one, r_sq)))
    a1 = torch.atan2(sin_a1, r) if i0 != i2 else torch.atan2(r, cos_a1)
    # Safe inputs in the branch not taken keep atan2's gradient finite (no 0/0).
    a0 = torch.where(lock, torch.atan2(p * m[..., k, i1], m[..., i1, i1]),
                     torch.atan2(torch.where(lock, zero, y0), torch.where(lock, one, x0)))
    a2 = torch.where(lock, zero, torch.atan2(torch.where(lock, zero, y2), torch.where(lock, one, x2)))
    return torch.stack((a0, a1, a2), -1)


def rotation_6d_to_matrix(d6: torch.Tensor) -> torch.Tensor:
    """6D representation ``(*, 6)`` to rotation matrices ``(*, 3, 3)`` by Gram-Schmidt on the two
    3-vectors, which become the first two **rows** (as PyTorch3D)."""
    _check_last(d6, "d6", 6)
    a1, a2 = d6[..., :3], d6[..., 3:]
    b1 = torch.nn.functional.normalize(a1, dim=-1)
    b2 = torch.nn.functional.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack((b1, b2, b3), -2)


def matrix_to_rotation_6d(matrix: torch.Tensor) -> torch.Tensor:
    """Rotation matrices ``(*, 3, 3)`` to their first two rows flattened, ``(*, 6)``."""
    _check_last(matrix, "matrix", 3, rows=3)
    return matrix[..., :2, :].reshape(matrix.shape[:-2] + (6,))


def random_quaternions(n: int, dtype: Optional[torch.dtype] = None, device=None, *, generator=None) -> torch.Tensor:
    """``n`` unit quaternions ``(n, 4)`` uniform over rotations, real part >= 0."""
    n = check_int(n, "n", min=0)
    o = torch.randn((n, 4), dtype=dtype or torch.get_default_dtype(), device=device, generator=generator)
    o = o / o.norm(dim=-1, keepdim=True)
    return standardize_quaternion(o)


def random_rotations(n: int, dtype: Optional[torch.dtype] = None, device=None, *, generator=None) -> torch.Tensor:
    """``n`` rotation matrices ``(n, 3, 3)`` uniform over SO(3) (Haar measure)."""
    return quaternion_to_matrix(random_quaternions(n, dtype, device, generator=generator))
