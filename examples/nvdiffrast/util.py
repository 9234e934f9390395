"""Helpers for the nvdiffrast-style samples in this folder (the role of nvdiffrast's samples/torch/util.py),
plus procedural stand-ins for the data files nvdiffrast's samples load (cube_c/cube_d/cube_p/earth/envphong
.npz), so the samples need no download. Matrices follow OpenGL: column vectors, camera looking down -z.
"""
from __future__ import annotations

import os

import numpy as np
import torch


# ---- matrices (OpenGL) ---------------------------------------------------------------------------
def projection(x=0.1, n=1.0, f=50.0):
    """Perspective projection with half-width x at the near plane n (OpenGL glFrustum, symmetric)."""
    return np.array([[n / x, 0, 0, 0], [0, n / x, 0, 0], [0, 0, -(f + n) / (f - n), -(2 * f * n) / (f - n)],
                     [0, 0, -1, 0]], np.float32)


def translate(x, y, z):
    m = np.eye(4, dtype=np.float32)
    m[:3, 3] = (x, y, z)
    return m


def rotate_x(a):
    m = np.eye(4, dtype=np.float32)
    m[1:3, 1:3] = [[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]
    return m


def rotate_y(a):
    m = np.eye(4, dtype=np.float32)
    m[0, 0], m[0, 2], m[2, 0], m[2, 2] = np.cos(a), np.sin(a), -np.sin(a), np.cos(a)
    return m


def random_rotation_translation(t, rng=np.random):
    """A uniformly random rotation (QR of a Gaussian matrix) and a translation in [-t, t]^3."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    m = np.eye(4, dtype=np.float32)
    m[:3, :3] = q
    m[:3, 3] = rng.uniform(-t, t, size=3)
    return m


def transform_pos(mtx, pos):
    """(V, 3) object-space positions to (1, V, 4) clip space with a 4 x 4 matrix."""
    t = torch.as_tensor(mtx, dtype=pos.dtype, device=pos.device)
    posw = torch.cat([pos, torch.ones(pos.shape[0], 1, dtype=pos.dtype, device=pos.device)], 1)
    return (posw @ t.T)[None]


def bilinear_downsample(x):
    """Halve an (N, H, W, C) image with the [1 3 3 1] tent filter (as nvdiffrast's samples)."""
    k = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=x.dtype, device=x.device)
    w = (k[:, None] * k[None, :] / 64.0).expand(x.shape[-1], 1, 4, 4)
    y = torch.nn.functional.conv2d(x.permute(0, 3, 1, 2), w, padding=1, stride=2, groups=x.shape[-1])
    return y.permute(0, 2, 3, 1)


def save_image(fn, x):
    """Save an (H, W, C) float image in [0, 1] given in OpenGL row order (row 0 at the bottom)."""
    from PIL import Image

    os.makedirs(os.path.dirname(os.path.abspath(fn)), exist_ok=True)
    x = np.asarray(x)[::-1]
    if x.shape[-1] == 1:
        x = x[..., 0]
    Image.fromarray(np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)).save(fn)


# ---- procedural data ------------------------------------------------------------------------------
_CUBE_V = np.array([[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)], np.float32)
_CUBE_QUADS = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]  # outward CCW


def cube_data(kind="c", seed=0):
    """(pos_idx (12, 3), vtx_pos (8, 3), col_idx (12, 3), vtx_col) like nvdiffrast's cube_{c,d,p}.npz:
    'c' one random colour per vertex (continuous), 'd' a random colour per face corner (discontinuous),
    'p' one solid colour per face (the pose sample's cube)."""
    rng = np.random.RandomState(seed)
    pos_idx = np.array([t for a, b, c, d in _CUBE_QUADS for t in ((a, b, c), (a, c, d))], np.int32)
    if kind == "c":
        return pos_idx, _CUBE_V.copy(), pos_idx.copy(), rng.uniform(0, 1, (8, 3)).astype(np.float32)
    corner = np.array([t for f in range(6) for t in ((4 * f, 4 * f + 1, 4 * f + 2), (4 * f, 4 * f + 2, 4 * f + 3))],
                      np.int32)
    if kind == "d":
        return pos_idx, _CUBE_V.copy(), corner, rng.uniform(0, 1, (24, 3)).astype(np.float32)
    face_rgb = np.array([[1, 0.2, 0.2], [0.2, 1, 0.2], [0.2, 0.2, 1], [1, 1, 0.2], [1, 0.2, 1], [0.2, 1, 1]], np.float32)
    return pos_idx, _CUBE_V.copy(), corner, np.repeat(face_rgb, 4, 0)


def uv_sphere(n_lat=32, n_lon=64):
    """A unit sphere: positions shared across the seam, texture coordinates not (the seam column of
    uv is duplicated), like earth.npz. Returns pos_idx, pos (V, 3), uv_idx, uv (Vt, 2)."""
    lat = np.linspace(0, np.pi, n_lat + 1)
    lon = np.linspace(0, 2 * np.pi, n_lon + 1)
    pos, pid = [], {}
    for i, a in enumerate(lat):
        for j in range(n_lon if 0 < i < n_lat else 1):
            pid[(i, j)] = len(pos)
            b = lon[j]
            pos.append((np.sin(a) * np.cos(b), np.cos(a), -np.sin(a) * np.sin(b)))
    uv = np.array([(j / n_lon, 1 - i / n_lat) for i in range(n_lat + 1) for j in range(n_lon + 1)], np.float32)
    P = lambda i, j: pid[(i, 0)] if i in (0, n_lat) else pid[(i, j % n_lon)]  # noqa: E731
    T = lambda i, j: i * (n_lon + 1) + j  # noqa: E731
    pos_idx, uv_idx = [], []
    for i in range(n_lat):
        for j in range(n_lon):
            quad_p = (P(i, j), P(i + 1, j), P(i + 1, j + 1), P(i, j + 1))
            quad_t = (T(i, j), T(i + 1, j), T(i + 1, j + 1), T(i, j + 1))
            for k in ((0, 1, 2), (0, 2, 3)):
                if len({quad_p[m] for m in k}) == 3:
                    pos_idx.append([quad_p[m] for m in k])
                    uv_idx.append([quad_t[m] for m in k])
    return np.array(pos_idx, np.int32), np.array(pos, np.float32), np.array(uv_idx, np.int32), uv


def earth_texture(h=512, w=1024, seed=1):
    """An earth-like (H, W, 3) texture in [0, 1], row 0 at t = 0 (the south pole, OpenGL order):
    smooth random continents on blue oceans, darker highlands, white polar caps, fine detail that
    aliases without mip-mapping."""
    rng = np.random.RandomState(seed)
    t = (np.arange(h) + 0.5) / h
    s = (np.arange(w) + 0.5) / w
    lat = (t - 0.5) * np.pi
    lon = s * 2 * np.pi
    LA, LO = np.meshgrid(lat, lon, indexing="ij")
    x, y, z = np.cos(LA) * np.cos(LO), np.sin(LA), np.cos(LA) * np.sin(LO)
    field = np.zeros_like(x)
    for octave in range(6):
        f = 2.0 ** octave * 1.5
        for _ in range(4):
            d = rng.normal(size=3)
            d /= np.linalg.norm(d)
            field += np.sin(f * (d[0] * x + d[1] * y + d[2] * z) * 3 + rng.uniform(0, 6.3)) / (1.6 ** octave)
    land = field > 0.3
    ocean = np.stack([0.05 + 0.05 * field, 0.15 + 0.08 * field, 0.45 + 0.1 * field], -1)
    green = np.clip(field - 0.3, 0, 1)
    landc = np.stack([0.25 + 0.5 * green, 0.45 - 0.1 * green, 0.15 + 0.1 * green], -1)
    img = np.where(land[..., None], landc, ocean)
    ice = np.abs(LA) > np.radians(72) + 0.05 * field
    img[ice] = 0.92
    return np.clip(img, 0, 1).astype(np.float32)


def torus(n_major=48, n_minor=24, R=0.7, r=0.3):
    """A torus with shared vertices and analytic normals: pos_idx (T, 3), pos (V, 4) (w = 1), normals (V, 3),
    the layout envphong.npz holds."""
    i, j = np.meshgrid(np.arange(n_major), np.arange(n_minor), indexing="ij")
    a, b = 2 * np.pi * i / n_major, 2 * np.pi * j / n_minor
    nrm = np.stack([np.cos(a) * np.cos(b), np.sin(b), np.sin(a) * np.cos(b)], -1).reshape(-1, 3)
    ctr = np.stack([R * np.cos(a), np.zeros_like(a), R * np.sin(a)], -1).reshape(-1, 3)
    pos = ctr + r * nrm
    idx = lambda u, v: (u % n_major) * n_minor + (v % n_minor)  # noqa: E731
    tris = []
    for u in range(n_major):
        for v in range(n_minor):
            q = (idx(u, v), idx(u + 1, v), idx(u + 1, v + 1), idx(u, v + 1))
            tris += [(q[0], q[2], q[1]), (q[0], q[3], q[2])]
    pos4 = np.concatenate([pos, np.ones((len(pos), 1))], 1).astype(np.float32)
    return np.array(tris, np.int32), pos4, nrm.astype(np.float32)


def env_cube(size=64):
    """A (6, S, S, 3) cube environment map (OpenGL face order +X, -X, +Y, -Y, +Z, -Z): a blue sky
    gradient over a brown ground, a bright sun and coloured stripes along the horizon."""
    c = (np.arange(size) + 0.5) / size * 2 - 1
    T, S = np.meshgrid(c, c, indexing="ij")  # row = t, column = s
    one = np.ones_like(S)
    dirs = [np.stack(d, -1) for d in (
        (one, -T, -S), (-one, -T, S), (S, one, T), (S, -one, -T), (S, -T, one), (-S, -T, -one))]
    faces = []
    for d in dirs:
        d = d / np.linalg.norm(d, axis=-1, keepdims=True)
        up = d[..., 1:2]
        sky = np.where(up > 0, np.array([0.35, 0.55, 0.9]) * (0.6 + 0.4 * up), np.array([0.35, 0.25, 0.15]))
        sun = np.exp(-np.sum((d - np.array([0.48, 0.6, 0.64])) ** 2, -1, keepdims=True) * 40.0)
        ang = np.arctan2(d[..., 2], d[..., 0])[..., None]
        band = (np.abs(up) < 0.15) * (0.5 + 0.5 * np.stack([np.sin(6 * ang[..., 0]), np.sin(6 * ang[..., 0] + 2),
                                                             np.sin(6 * ang[..., 0] + 4)], -1))
        faces.append(np.clip(sky * (1 - (np.abs(up) < 0.15)) + band + 2.0 * sun, 0, 1))
    return np.stack(faces).astype(np.float32)
