"""Fused CPU Phong lighting of packed fragments for point and directional lights (private; used by
``shade._light_filled`` for CPU float32/float64 tensors of one dtype; other lights take the torch path).

Why: the torch expression of ``lighting.PointLights.diffuse_specular`` runs ~40 elementwise ops over
(P, 3) tensors, forward and backward; here each fragment is lit once in registers. Values and gradients
are those of the torch path (tests compare both and run gradcheck in float64), including its edge cases:
``normalize(x) = x / max(|x|, 1e-6)``, ``relu`` passing no gradient at 0, and ``pow``'s conventions at
``alpha = 0`` (no gradient to alpha when ``shininess = 0``, none to shininess when ``alpha = 0``).
Gradients reach points, normals, texels, every light and material property and the camera position.
"""
from __future__ import annotations

import math

import numba
import numpy as np
import torch
from numba import prange
from torch.autograd.function import once_differentiable

_EPS = 1e-6
_MAX_CHUNKS = 8
_PAD = 16


@numba.njit(cache=True, inline="always")
def _unit(x0, x1, x2):
    nrm = math.sqrt(x0 * x0 + x1 * x1 + x2 * x2)
    d = max(nrm, _EPS)
    return x0 / d, x1 / d, x2 / d, d, nrm > _EPS


@numba.njit(cache=True, inline="always")
def _unit_grad(g0, g1, g2, y0, y1, y2, d, live):
    """Gradient of x / max(|x|, eps) w.r.t. x, given y = the output and d = max(|x|, eps)."""
    if not live:
        return g0 / d, g1 / d, g2 / d
    s = g0 * y0 + g1 * y1 + g2 * y2
    return (g0 - y0 * s) / d, (g1 - y1 * s) / d, (g2 - y2 * s) / d


@numba.njit(cache=True, inline="always")
def _row(B, n):
    return n if B > 1 else 0


@numba.njit(cache=True, inline="always")
def _geometry(points, normals, img, p, is_point, l_pos, cam):
    n = img[p]
    px, py, pz = points[p, 0], points[p, 1], points[p, 2]
    lb = _row(l_pos.shape[0], n)
    if is_point:
        dx, dy, dz = l_pos[lb, 0] - px, l_pos[lb, 1] - py, l_pos[lb, 2] - pz
    else:
        dx, dy, dz = l_pos[lb, 0], l_pos[lb, 1], l_pos[lb, 2]
    cb = _row(cam.shape[0], n)
    vx, vy, vz = cam[cb, 0] - px, cam[cb, 1] - py, cam[cb, 2] - pz
    return n, dx, dy, dz, vx, vy, vz


@numba.njit(cache=True, parallel=True)
def _forward(points, normals, tex, img, is_point, l_amb, l_dif, l_spec, l_pos, m_amb, m_dif, m_spec, m_shin, cam,
             out):
    C = tex.shape[1]
    for p in prange(points.shape[0]):
        n, dx, dy, dz, vx, vy, vz = _geometry(points, normals, img, p, is_point, l_pos, cam)
        nx, ny, nz, _, _ = _unit(normals[p, 0], normals[p, 1], normals[p, 2])
        lx, ly, lz, _, _ = _unit(dx, dy, dz)
        cos = nx * lx + ny * ly + nz * lz
        ux, uy, uz, _, _ = _unit(vx, vy, vz)
        rx, ry, rz = -lx + 2.0 * cos * nx, -ly + 2.0 * cos * ny, -lz + 2.0 * cos * nz
        s = ux * rx + uy * ry + uz * rz
        a = s if (s > 0.0 and cos > 0.0) else 0.0
        shin = m_shin[_row(m_shin.shape[0], n)]
        apow = a ** shin
        rc = max(cos, 0.0)
        for c in range(C):
            amb = m_amb[_row(m_amb.shape[0], n), c] * l_amb[_row(l_amb.shape[0], n), c]
            dif = m_dif[_row(m_dif.shape[0], n), c] * l_dif[_row(l_dif.shape[0], n), c] * rc
            spec = m_spec[_row(m_spec.shape[0], n), c] * l_spec[_row(l_spec.shape[0], n), c] * apow
            out[p, c] = (amb + dif) * tex[p, c] + spec


@numba.njit(cache=True, parallel=True)
def _backward(points, normals, tex, img, is_point, l_amb, l_dif, l_spec, l_pos, m_amb, m_dif, m_spec, m_shin, cam,
              g_out, n_chunks, g_pts, g_nrm, g_tex, a_lamb, a_ldif, a_lspec, a_lpos, a_mamb, a_mdif, a_mspec, a_shin,
              a_cam):
    """Per-fragment gradients g_pts, g_nrm (P, 3), g_tex (P, C); the a_* (n_chunks, B, *) float64 zeros
    accumulate the per-image property gradients, one accumulator per chunk of fragments."""
    P = points.shape[0]
    C = tex.shape[1]
    per = (P + n_chunks - 1) // n_chunks
    for ch in prange(n_chunks):
        for p in range(ch * per, min(P, (ch + 1) * per)):
            n, dx, dy, dz, vx, vy, vz = _geometry(points, normals, img, p, is_point, l_pos, cam)
            nx, ny, nz, nd, nlive = _unit(normals[p, 0], normals[p, 1], normals[p, 2])
            lx, ly, lz, ld, llive = _unit(dx, dy, dz)
            cos = nx * lx + ny * ly + nz * lz
            ux, uy, uz, ud, ulive = _unit(vx, vy, vz)
            rx, ry, rz = -lx + 2.0 * cos * nx, -ly + 2.0 * cos * ny, -lz + 2.0 * cos * nz
            s = ux * rx + uy * ry + uz * rz
            a = s if (s > 0.0 and cos > 0.0) else 0.0
            mb = _row(m_shin.shape[0], n)
            shin = m_shin[mb]
            apow = a ** shin
            rc = max(cos, 0.0)
            ma, md, ms = _row(m_amb.shape[0], n), _row(m_dif.shape[0], n), _row(m_spec.shape[0], n)
            la, ldb, ls = _row(l_amb.shape[0], n), _row(l_dif.shape[0], n), _row(l_spec.shape[0], n)
            g_rc = 0.0
            g_apow = 0.0
            for c in range(C):
                g = g_out[p, c]
                t = tex[p, c]
                amb_m, amb_l = m_amb[ma, c], l_amb[la, c]
                dif_m, dif_l = m_dif[md, c], l_dif[ldb, c]
                spec_m, spec_l = m_spec[ms, c], l_spec[ls, c]
                g_tex[p, c] = g * (amb_m * amb_l + dif_m * dif_l * rc)
                gt = g * t
                a_mamb[ch, ma, c] += gt * amb_l
                a_lamb[ch, la, c] += gt * amb_m
                a_mdif[ch, md, c] += gt * dif_l * rc
                a_ldif[ch, ldb, c] += gt * dif_m * rc
                g_rc += gt * dif_m * dif_l
                a_mspec[ch, ms, c] += g * spec_l * apow
                a_lspec[ch, ls, c] += g * spec_m * apow
                g_apow += g * spec_m * spec_l
            # pow(a, shin): torch's conventions at a = 0 and shin = 0.
            if a != 0.0:
                a_shin[ch, mb] += g_apow * apow * math.log(a)
            g_a = 0.0 if shin == 0.0 else g_apow * shin * a ** (shin - 1.0)
            g_cos = g_rc if cos > 0.0 else 0.0
            g_s = g_a if (s > 0.0 and cos > 0.0) else 0.0
            # s = u . r
            gux, guy, guz = g_s * rx, g_s * ry, g_s * rz
            grx, gry, grz = g_s * ux, g_s * uy, g_s * uz
            # r = -l + 2 cos n
            glx, gly, glz = -grx, -gry, -grz
            g_cos += 2.0 * (grx * nx + gry * ny + grz * nz)
            gnx, gny, gnz = 2.0 * cos * grx, 2.0 * cos * gry, 2.0 * cos * grz
            # cos = n . l
            gnx += g_cos * lx
            gny += g_cos * ly
            gnz += g_cos * lz
            glx += g_cos * nx
            gly += g_cos * ny
            glz += g_cos * nz
            gvx, gvy, gvz = _unit_grad(gux, guy, guz, ux, uy, uz, ud, ulive)
            gdx, gdy, gdz = _unit_grad(glx, gly, glz, lx, ly, lz, ld, llive)
            g_nrm[p, 0], g_nrm[p, 1], g_nrm[p, 2] = _unit_grad(gnx, gny, gnz, nx, ny, nz, nd, nlive)
            cb = _row(cam.shape[0], n)
            a_cam[ch, cb, 0] += gvx
            a_cam[ch, cb, 1] += gvy
            a_cam[ch, cb, 2] += gvz
            lb = _row(l_pos.shape[0], n)
            a_lpos[ch, lb, 0] += gdx
            a_lpos[ch, lb, 1] += gdy
            a_lpos[ch, lb, 2] += gdz
            if is_point:
                g_pts[p, 0] = -gvx - gdx
                g_pts[p, 1] = -gvy - gdy
                g_pts[p, 2] = -gvz - gdz
            else:
                g_pts[p, 0] = -gvx
                g_pts[p, 1] = -gvy
                g_pts[p, 2] = -gvz


_PROPS = ("l_amb", "l_dif", "l_spec", "l_pos", "m_amb", "m_dif", "m_spec", "m_shin", "cam")


class _FusedPhong(torch.autograd.Function):
    @staticmethod
    def forward(ctx, is_point, img, points, normals, tex, *props):
        arrs = [t.detach().contiguous() for t in (points, normals, tex) + props]
        img = img.contiguous()
        out = torch.empty(tex.shape, dtype=points.dtype)
        if points.shape[0] and tex.shape[1]:
            _forward(*(a.numpy() for a in arrs[:2]), arrs[2].numpy(), img.numpy(), is_point,
                     *(a.numpy() for a in arrs[3:]), out.numpy())
        ctx.save_for_backward(img, *arrs)
        ctx.is_point = is_point
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, g_out):
        img, points, normals, tex, *props = ctx.saved_tensors
        P = points.shape[0]
        np_dtype = points.numpy().dtype
        n_chunks = max(1, min(_MAX_CHUNKS, numba.get_num_threads(), P // 1024 or 1))
        g_pts = np.zeros((P, 3), dtype=np_dtype)
        g_nrm = np.zeros((P, 3), dtype=np_dtype)
        g_tex = np.zeros(tuple(tex.shape), dtype=np_dtype)
        # Every fragment adds into these tiny per-chunk accumulators: 16 spare rows (>= 128 bytes) keep two
        # threads' chunks off one cache line (false sharing made the 8-view backward 4x slower).
        acc = [np.zeros((n_chunks, t.shape[0] + _PAD) + tuple(t.shape[1:]), dtype=np.float64) for t in props]
        if P and tex.shape[1]:
            _backward(points.numpy(), normals.numpy(), tex.numpy(), img.numpy(), ctx.is_point,
                      *(t.numpy() for t in props), g_out.to(points.dtype).contiguous().numpy(), n_chunks, g_pts,
                      g_nrm, g_tex, *acc)
        g_props = [torch.from_numpy(a.sum(0)[:t.shape[0]]).to(points.dtype) for a, t in zip(acc, props)]
        return (None, None, torch.from_numpy(g_pts), torch.from_numpy(g_nrm), torch.from_numpy(g_tex), *g_props)


def fused_phong(points, normals, texels, image_idx, lights, materials, camera_position):
    """(P, C) ``(ambient + diffuse) * texels + specular`` of ``shade._light_filled`` for a ``PointLights`` or
    ``DirectionalLights``; every colour C wide, properties with batch 1 or N (indexed by ``image_idx``)."""
    from .lighting import PointLights

    dt = points.dtype
    is_point = isinstance(lights, PointLights)
    pos = lights.location if is_point else lights.direction
    props = [lights.ambient_color, lights.diffuse_color, lights.specular_color, pos, materials.ambient_color,
             materials.diffuse_color, materials.specular_color, materials.shininess, camera_position]
    return _FusedPhong.apply(is_point, image_idx, points, normals, texels, *(t.to(dt) for t in props))
