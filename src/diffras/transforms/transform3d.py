"""Batched 3D transforms as 4x4 matrices in PyTorch3D's **row-vector** convention.

A point ``x`` (3,) maps to ``[x, 1] @ M`` followed by division by the last coordinate, so a
translation sits in the bottom row ``M[3, :3]`` and ``a.compose(b)`` applies ``a`` first, then ``b``
(matrix ``M_a @ M_b``). A ``Transform3d`` holds N matrices; a batch of 1 broadcasts against any N.
Everything is plain torch and differentiable in every input.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Union

import torch

from .._validation import check_tensor
from .rotation_conversions import _axis_rotation

__all__ = ["Rotate", "RotateAxisAngle", "Scale", "Transform3d", "Translate"]


def _broadcast_batch(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str):
    """Expand two batched tensors to a common leading size (equal, or one of them 1)."""
    na, nb = a.shape[0], b.shape[0]
    if na == nb:
        return a, b
    if na == 1:
        return a.expand((nb,) + a.shape[1:]), b
    if nb == 1:
        return a, b.expand((na,) + b.shape[1:])
    raise ValueError(f"{name_b}: expected batch size 1 or {na} (the batch of {name_a}), got {nb}")


class Transform3d:
    """N 4x4 transforms in row-vector convention (``x_out = [x, 1] @ M``), as PyTorch3D.

    Args:
        dtype: dtype of the identity made when ``matrix`` is None (default: torch's default dtype).
        device: device of that identity (default: torch's default device).
        matrix: ``(N, 4, 4)`` or ``(4, 4)`` float tensor; its dtype/device win over the arguments.

    ``compose`` is eager (it multiplies at once); Rotate/Translate/Scale and their compositions
    carry a closed-form inverse, so ``inverse()`` of a world-to-view transform is exact.
    """

    def __init__(self, dtype: Optional[torch.dtype] = None, device=None, matrix: Optional[torch.Tensor] = None):
        if matrix is None:
            matrix = torch.eye(4, dtype=dtype or torch.get_default_dtype(), device=device)[None]
            inv = matrix
        else:
            check_tensor(matrix, "matrix", dtype="float", finite=True)
            if matrix.dim() == 2:
                matrix = matrix[None]
            if matrix.dim() != 3 or matrix.shape[-2:] != (4, 4):
                raise ValueError(f"matrix: expected shape (N, 4, 4) or (4, 4), got {tuple(matrix.shape)}")
            if matrix.shape[0] == 0:
                raise ValueError("matrix: expected at least one transform, got batch size 0")
            inv = None
        self._matrix = matrix
        self._inv = inv

    @classmethod
    def _make(cls, matrix: torch.Tensor, inv: Optional[torch.Tensor] = None) -> "Transform3d":
        # Internal constructor: no validation (inputs already checked), keeps the class.
        t = Transform3d.__new__(Transform3d)
        t._matrix, t._inv = matrix, inv
        return t

    # --- basic properties ---------------------------------------------------------------
    def __len__(self) -> int:
        return self._matrix.shape[0]

    @property
    def device(self) -> torch.device:
        return self._matrix.device

    @property
    def dtype(self) -> torch.dtype:
        return self._matrix.dtype

    def get_matrix(self) -> torch.Tensor:
        """The ``(N, 4, 4)`` matrices (row-vector convention)."""
        return self._matrix

    def __repr__(self) -> str:
        return f"Transform3d(N={len(self)}, dtype={self.dtype}, device={self.device})"

    # --- composition ----------------------------------------------------------------------
    def compose(self, *others: "Transform3d") -> "Transform3d":
        """A transform applying ``self`` first, then each of ``others`` in order."""
        m, inv = self._matrix, self._inv
        for i, o in enumerate(others):
            if not isinstance(o, Transform3d):
                raise TypeError(f"others[{i}]: expected a Transform3d, got {type(o).__name__}")
            if o.device != m.device:
                raise ValueError(f"others[{i}]: expected device {m.device}, got {o.device}")
            om = o._matrix.to(m.dtype)
            a, b = _broadcast_batch(m, om, "self", f"others[{i}]")
            new_m = a @ b
            if inv is not None and o._inv is not None:
                ai, bi = _broadcast_batch(inv, o._inv.to(m.dtype), "self", f"others[{i}]")
                inv = bi @ ai
            else:
                inv = None
            m = new_m
        return Transform3d._make(m, inv)

    def inverse(self, invert_composed: bool = False) -> "Transform3d":
        """The inverse transform (closed form when known, else ``torch.linalg.inv``).
        ``invert_composed`` is accepted for PyTorch3D compatibility and has no effect."""
        if self._inv is not None:
            return Transform3d._make(self._inv, self._matrix)
        return Transform3d._make(torch.linalg.inv(self._matrix), self._matrix)

    def translate(self, *args, **kwargs) -> "Transform3d":
        return self.compose(Translate(*args, device=self.device, dtype=self.dtype, **kwargs))

    def scale(self, *args, **kwargs) -> "Transform3d":
        return self.compose(Scale(*args, device=self.device, dtype=self.dtype, **kwargs))

    def rotate(self, *args, **kwargs) -> "Transform3d":
        return self.compose(Rotate(*args, device=self.device, dtype=self.dtype, **kwargs))

    def rotate_axis_angle(self, *args, **kwargs) -> "Transform3d":
        return self.compose(RotateAxisAngle(*args, device=self.device, dtype=self.dtype, **kwargs))

    # --- application ----------------------------------------------------------------------
    def transform_points(self, points: torch.Tensor, eps: Optional[float] = None) -> torch.Tensor:
        """Apply to points ``(P, 3)`` or ``(N|1, P, 3)``, dividing by the homogeneous coordinate.

        Args:
            eps: if given, the divisor's magnitude is clamped to at least ``eps`` (sign kept, 0
                treated as +), avoiding inf/NaN for points on the camera plane.

        Returns:
            ``(N, P, 3)``, or ``(P, 3)`` when ``points`` is 2-D and the transform has one matrix.
        """
        pts = self._check_points(points, "points")
        m = self._matrix.to(pts.dtype) if pts.dtype != self.dtype else self._matrix
        m, p = _broadcast_batch(m, pts, "the transform", "points")
        out = p @ m[:, :3, :3] + m[:, 3:4, :3]
        w = p @ m[:, :3, 3:4] + m[:, 3:4, 3:4]
        if eps is not None:
            sign = torch.where(w < 0, -torch.ones_like(w), torch.ones_like(w))
            w = sign * w.abs().clamp(min=eps)
        out = out / w
        if points.dim() == 2 and out.shape[0] == 1:
            out = out[0]
        return out

    def transform_normals(self, normals: torch.Tensor) -> torch.Tensor:
        """Apply to normals ``(P, 3)`` or ``(N|1, P, 3)``: multiply by the inverse transpose of the
        linear 3x3 block (so normals stay perpendicular to transformed surfaces). Not renormalised."""
        nrm = self._check_points(normals, "normals")
        m = self._matrix.to(nrm.dtype)[:, :3, :3]
        lin_inv_t = torch.linalg.inv(m).transpose(1, 2)
        lin_inv_t, n = _broadcast_batch(lin_inv_t, nrm, "the transform", "normals")
        out = n @ lin_inv_t
        if normals.dim() == 2 and out.shape[0] == 1:
            out = out[0]
        return out

    def _check_points(self, points, name: str) -> torch.Tensor:
        check_tensor(points, name, dtype="float", device=self.device)
        if points.dim() == 2:
            points = points[None]
        if points.dim() != 3 or points.shape[-1] != 3:
            raise ValueError(f"{name}: expected shape (P, 3) or (N, P, 3), got {tuple(points.shape)}")
        return points

    # --- tensor-like helpers --------------------------------------------------------------
    def _map(self, fn) -> "Transform3d":
        return Transform3d._make(fn(self._matrix), None if self._inv is None else fn(self._inv))

    def to(self, device=None, copy: bool = False, dtype: Optional[torch.dtype] = None) -> "Transform3d":
        """Move to ``device`` and/or cast to ``dtype`` (differentiable)."""
        if not copy and (device is None or torch.device(device) == self.device) and (dtype is None or dtype == self.dtype):
            return self
        return self._map(lambda t: t.to(device=device, dtype=dtype, copy=copy))

    def cpu(self) -> "Transform3d":
        return self.to("cpu")

    def clone(self) -> "Transform3d":
        return self._map(torch.clone)

    def detach(self) -> "Transform3d":
        return self._map(torch.Tensor.detach)

    def __getitem__(self, index: Union[int, slice, Sequence[int], torch.Tensor]) -> "Transform3d":
        """Select transforms along the batch; an int keeps a batch of 1."""
        if isinstance(index, int):
            index = [index]
        return self._map(lambda t: t[index])

    def stack(self, *others: "Transform3d") -> "Transform3d":
        """Concatenate the batches of ``self`` and ``others``."""
        ts = (self,) + others
        mats = torch.cat([t._matrix.to(self.dtype) for t in ts], 0)
        invs = None
        if all(t._inv is not None for t in ts):
            invs = torch.cat([t._inv.to(self.dtype) for t in ts], 0)
        return Transform3d._make(mats, invs)


def _resolve(dtype, device, *tensors):
    for t in tensors:
        if isinstance(t, torch.Tensor):
            if dtype is None and t.is_floating_point():
                dtype = t.dtype
            if device is None:
                device = t.device
    return dtype or torch.get_default_dtype(), device


def _vec3(x, y, z, name: str, dtype, device, allow_singleton: bool = True) -> torch.Tensor:
    """Parse ``x`` as (N, 3) (when y, z are None and x is not a scalar) or x, y, z as broadcast
    scalars / (N,) vectors; returns (N, 3)."""
    dtype, device = _resolve(dtype, device, x, y, z)

    def as_t(v, nm):
        if isinstance(v, torch.Tensor):
            check_tensor(v, nm, dtype="float", finite=True)
            return v.to(dtype=dtype, device=device)
        try:
            t = torch.as_tensor(v, dtype=dtype, device=device)
        except (TypeError, ValueError, RuntimeError) as e:
            raise TypeError(f"{nm}: expected a number, sequence or tensor, got {type(v).__name__}") from e
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{nm}: expected finite values, got NaN/inf")
        return t

    xt = as_t(x, name)
    if y is None and z is None and xt.dim() >= 1 and xt.shape[-1] == 3 and xt.dim() <= 2:
        return xt.reshape(-1, 3)
    if y is None and z is None:
        if not allow_singleton:
            raise ValueError(f"{name}: expected shape (N, 3) or (3,), or y and z as well, got shape {tuple(xt.shape)}")
        y = z = x
    yt, zt = as_t(y, "y"), as_t(z, "z")
    for t, nm in ((xt, name), (yt, "y"), (zt, "z")):
        if t.dim() > 1:
            raise ValueError(f"{nm}: expected a scalar or a (N,) tensor, got shape {tuple(t.shape)}")
    xt, yt, zt = (t.reshape(-1) for t in (xt, yt, zt))
    n, first = 1, None
    for t, nm in ((xt, name), (yt, "y"), (zt, "z")):
        if t.shape[0] in (1, n):
            continue
        if first is not None:
            raise ValueError(f"{nm}: expected 1 or {n} values (as {first}), got {t.shape[0]}")
        n, first = t.shape[0], nm
    return torch.stack([t.expand(n) for t in (xt, yt, zt)], -1)


def _affine(lin: torch.Tensor, trans: torch.Tensor) -> torch.Tensor:
    """Row-vector 4x4 from a linear block (N, 3, 3) and translation (N, 3)."""
    n = lin.shape[0]
    top = torch.cat((lin, torch.zeros_like(lin[:, :, :1])), 2)
    bottom = torch.cat((trans, torch.ones_like(trans[:, :1])), 1)[:, None]
    return torch.cat((top, bottom.expand(n, 1, 4)), 1)


class Translate(Transform3d):
    """Translation by ``x`` ``(N, 3)`` / ``(3,)``, or by scalars / ``(N,)`` vectors ``x, y, z``.

    A ``Transform3d`` subclass, as PyTorch3D's (``isinstance(t, Translate)`` works); compositions of it
    are plain ``Transform3d``."""

    def __init__(self, x, y=None, z=None, dtype: Optional[torch.dtype] = None, device=None) -> None:
        t = _vec3(x, y, z, "x", dtype, device, allow_singleton=False)
        eye = torch.eye(3, dtype=t.dtype, device=t.device).expand(t.shape[0], 3, 3)
        self._matrix, self._inv = _affine(eye, t), _affine(eye, -t)


class Scale(Transform3d):
    """Scaling by ``x`` (uniform scalar), ``(N, 3)``, or per-axis ``x, y, z``. Non-zero factors."""

    def __init__(self, x, y=None, z=None, dtype: Optional[torch.dtype] = None, device=None) -> None:
        s = _vec3(x, y, z, "x", dtype, device)
        if bool((s == 0).any()):
            raise ValueError("x: expected non-zero scale factors, got a zero")
        zero = torch.zeros_like(s)
        self._matrix = _affine(torch.diag_embed(s), zero)
        self._inv = _affine(torch.diag_embed(1 / s), zero)


class Rotate(Transform3d):
    """Rotation by ``R`` ``(N, 3, 3)`` or ``(3, 3)`` in row-vector convention (``x_out = x @ R``),
    with inverse ``R^T``. ``R`` is not checked for orthonormality (it may drift while optimised);
    the inverse assumes it is a rotation."""

    def __init__(self, R: torch.Tensor, dtype: Optional[torch.dtype] = None, device=None) -> None:
        check_tensor(R, "R", dtype="float", finite=True)
        if R.dim() == 2:
            R = R[None]
        if R.dim() != 3 or R.shape[-2:] != (3, 3):
            raise ValueError(f"R: expected shape (N, 3, 3) or (3, 3), got {tuple(R.shape)}")
        R = R.to(dtype=dtype or R.dtype, device=device or R.device)
        zero = torch.zeros_like(R[:, 0])
        self._matrix, self._inv = _affine(R, zero), _affine(R.transpose(1, 2), zero)


class RotateAxisAngle(Rotate):
    """Rotation by ``angle`` (scalar or ``(N,)``) about a coordinate ``axis`` ("X", "Y" or "Z"),
    right-handed: points turn counter-clockwise looking down the axis towards the origin."""

    def __init__(self, angle, axis: str = "X", degrees: bool = True, dtype: Optional[torch.dtype] = None,
                 device=None) -> None:
        if axis not in ("X", "Y", "Z"):
            raise ValueError(f"axis: expected one of ['X', 'Y', 'Z'], got {axis!r}")
        a = _vec3(angle, 0.0, 0.0, "angle", dtype, device)[:, 0]
        if degrees:
            a = a * (math.pi / 180.0)
        # column-vector matrix transposed for row vectors
        super().__init__(_axis_rotation(axis, a).transpose(1, 2))
