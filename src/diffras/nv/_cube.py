"""Cube maps for ``diffras.nv.texture``: OpenGL face selection and seamless borders.

Face order and orientation are OpenGL's (and nvdiffrast's): faces +X, -X, +Y, -Y, +Z, -Z; a direction
(x, y, z) picks the face of its largest |component| (ties: z over y over x), and within it
``s = 0.5 + sc / (2 |m|)``, ``t = 0.5 + tc / (2 |m|)`` with (sc, tc) = (-z, -y), (z, -y), (x, z), (x, -z),
(x, -y), (-x, -y) for the six faces; texel (row, col) = (t H - 0.5, s W - 0.5).

Seamless filtering: every face is padded by one texel ring read from its neighbours (the texel a
direction just past the edge lands on), so a bilinear tap across an edge reads the adjacent face, as
nvdiffrast does. At the three-face corners the padded texel takes one neighbour's corner texel where
nvdiffrast averages the three: the only difference, confined to the corner texels.
"""
from __future__ import annotations

from typing import Tuple

import torch

__all__ = ["cube_face_st", "cube_st_derivatives", "pad_cube"]

# (face) -> (index of sc component, sign), (index of tc component, sign), major axis index.
_SC = ((2, -1.0), (2, 1.0), (0, 1.0), (0, 1.0), (0, 1.0), (0, -1.0))
_TC = ((1, -1.0), (1, -1.0), (2, 1.0), (2, -1.0), (1, -1.0), (1, -1.0))
_MA = (0, 0, 1, 1, 2, 2)


def _face(v: torch.Tensor) -> torch.Tensor:
    ax, ay, az = v[..., 0].abs(), v[..., 1].abs(), v[..., 2].abs()
    face = torch.where(az > torch.maximum(ax, ay), 4, torch.where(ay > ax, 2, 0))
    major = v.gather(-1, torch.div(face, 2, rounding_mode="floor")[..., None])[..., 0]
    return face + (major < 0).to(face.dtype)


def _tables(device, dtype):
    sc_i = torch.tensor([s[0] for s in _SC], device=device)
    sc_s = torch.tensor([s[1] for s in _SC], device=device, dtype=dtype)
    tc_i = torch.tensor([s[0] for s in _TC], device=device)
    tc_s = torch.tensor([s[1] for s in _TC], device=device, dtype=dtype)
    ma = torch.tensor(_MA, device=device)
    return sc_i, sc_s, tc_i, tc_s, ma


def cube_face_st(v: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Face (P,) int64, s and t (P,) in [0, 1] and a validity mask for directions v (P, 3)
    (zero or non-finite directions are invalid: they sample zero, as in nvdiffrast)."""
    face = _face(v.detach())
    sc_i, sc_s, tc_i, tc_s, ma = _tables(v.device, v.dtype)
    m = v.gather(-1, ma[face][..., None])[..., 0].abs()
    valid = (m > 0) & torch.isfinite(v.detach()).all(-1)
    m = torch.where(valid, m, torch.ones_like(m))
    sc = v.gather(-1, sc_i[face][..., None])[..., 0] * sc_s[face]
    tc = v.gather(-1, tc_i[face][..., None])[..., 0] * tc_s[face]
    s = (0.5 + sc / (2 * m)).clamp(0.0, 1.0)
    t = (0.5 + tc / (2 * m)).clamp(0.0, 1.0)
    return face, s, t, valid


def cube_st_derivatives(v: torch.Tensor, dv: torch.Tensor) -> torch.Tensor:
    """(ds/dX, ds/dY, dt/dX, dt/dY) (P, 4) from directions v (P, 3) and their screen derivatives
    dv (P, 6) ordered (dx/dX, dx/dY, dy/dX, dy/dY, dz/dX, dz/dY), as nvdiffrast's uv_da for cubes."""
    face = _face(v.detach())
    sc_i, sc_s, tc_i, tc_s, ma = _tables(v.device, v.dtype)
    mi = ma[face]
    c = v.gather(-1, mi[..., None])[..., 0]
    c = torch.where(c == 0, torch.ones_like(c), c)
    dvx, dvy = dv[..., 0::2], dv[..., 1::2]  # (P, 3) each
    out = []
    for ci, cs in ((sc_i, sc_s), (tc_i, tc_s)):
        k = ci[face]
        n = v.gather(-1, k[..., None])[..., 0] * cs[face]
        for dd in (dvx, dvy):
            dn = dd.gather(-1, k[..., None])[..., 0] * cs[face]
            dcm = dd.gather(-1, mi[..., None])[..., 0]
            # d(n / (2|c|)) = (dn - n dc / c) / (2|c|)
            out.append((dn - n * dcm / c) / (2 * c.abs()))
    return torch.stack(out, -1)


def _face_dirs(face: int, s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Directions (on the face's plane, |major| = 1) of face-local (s, t), inverse of cube_face_st."""
    sc, tc = 2 * s - 1, 2 * t - 1
    v = [None, None, None]
    v[_MA[face]] = torch.full_like(s, 1.0 if face % 2 == 0 else -1.0)
    v[_SC[face][0]] = sc * _SC[face][1]
    v[_TC[face][0]] = tc * _TC[face][1]
    return torch.stack(v, -1)


def pad_cube(tex: torch.Tensor) -> torch.Tensor:
    """(B, 6, S, S, C) faces to (B, 6, S + 2, S + 2, C) with each face's border ring read from the
    adjacent faces (differentiable: a gather)."""
    B, _, S, _, C = tex.shape
    out = torch.nn.functional.pad(tex.permute(0, 1, 4, 2, 3), (1, 1, 1, 1)).permute(0, 1, 3, 4, 2).clone()
    idx = torch.arange(-1, S + 1, device=tex.device, dtype=tex.dtype)
    rows, cols = torch.meshgrid(idx, idx, indexing="ij")
    ring = (rows < 0) | (rows >= S) | (cols < 0) | (cols >= S)
    r, c = rows[ring], cols[ring]
    flat = tex.reshape(B, 6 * S * S, C)
    for f in range(6):
        dirs = _face_dirs(f, (c + 0.5) / S, (r + 0.5) / S)
        g, s, t, _ = cube_face_st(dirs)
        ti = (t * S).floor().clamp(0, S - 1).to(torch.int64)
        si = (s * S).floor().clamp(0, S - 1).to(torch.int64)
        src = (g * S + ti) * S + si
        out[:, f][:, (r + 1).to(torch.int64), (c + 1).to(torch.int64)] = flat[:, src]
    return out
