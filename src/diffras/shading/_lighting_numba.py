"""Fused CPU Phong lighting of packed fragments for point and directional lights (private; used by
``shade._lit_faces`` for CPU float32/float64 tensors of one dtype; other lights take the torch path).

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
    inv = 1.0 / d
    return x0 * inv, x1 * inv, x2 * inv, d, nrm > _EPS


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
def _pow(a, e):
    """``a ** e`` for the specular term, whose base is 0 for most fragments (facing away, or outside the
    highlight): skip the costly pow there (0 ** e is 0 for e > 0, 1 for e = 0; e < 0 is left to pow)."""
    if a == 0.0 and e >= 0.0:
        return 1.0 if e == 0.0 else 0.0
    return a ** e


@numba.njit(cache=True, inline="always")
def _interp(attr, corner, bary, f, p):
    """World position and (unnormalised) normal of fragment p on face f: ``sum_j bary[p, j] attr[corner[f, j]]``
    over the face's J corners (J = 1: the row itself, weight 1)."""
    if corner.shape[1] == 1:
        a = corner[f, 0]
        return attr[a, 0], attr[a, 1], attr[a, 2], attr[a, 3], attr[a, 4], attr[a, 5]
    px = py = pz = nx = ny = nz = 0.0
    for j in range(corner.shape[1]):
        a = corner[f, j]
        b = bary[p, j]
        px += b * attr[a, 0]
        py += b * attr[a, 1]
        pz += b * attr[a, 2]
        nx += b * attr[a, 3]
        ny += b * attr[a, 4]
        nz += b * attr[a, 5]
    return px, py, pz, nx, ny, nz


@numba.njit(cache=True, inline="always")
def _geometry(px, py, pz, n, is_point, l_pos, cam):
    lb = _row(l_pos.shape[0], n)
    if is_point:
        dx, dy, dz = l_pos[lb, 0] - px, l_pos[lb, 1] - py, l_pos[lb, 2] - pz
    else:
        dx, dy, dz = l_pos[lb, 0], l_pos[lb, 1], l_pos[lb, 2]
    cb = _row(cam.shape[0], n)
    return dx, dy, dz, cam[cb, 0] - px, cam[cb, 1] - py, cam[cb, 2] - pz


@numba.njit(cache=True, parallel=True)
def _forward(attr, corner, face, bary, img_src, img_div, tex, is_point, l_amb, l_dif, l_spec, l_pos, m_amb, m_dif,
             m_spec, m_shin, cam, out, apow_out):
    """``out`` (P, C) the lit colours; ``apow_out`` (P,) each fragment's a^shininess, kept for the backward
    (the pow is the costliest step of a lit fragment)."""
    C = tex.shape[1]
    for p in prange(face.shape[0]):
        n = img_src[p] // img_div
        px, py, pz, nx0, ny0, nz0 = _interp(attr, corner, bary, face[p], p)
        dx, dy, dz, vx, vy, vz = _geometry(px, py, pz, n, is_point, l_pos, cam)
        nx, ny, nz, _, _ = _unit(nx0, ny0, nz0)
        lx, ly, lz, _, _ = _unit(dx, dy, dz)
        cos = nx * lx + ny * ly + nz * lz
        a = 0.0
        if cos > 0.0:  # facing away (about half the fragments of a soft render): no highlight, skip the view ray
            ux, uy, uz, _, _ = _unit(vx, vy, vz)
            rx, ry, rz = -lx + 2.0 * cos * nx, -ly + 2.0 * cos * ny, -lz + 2.0 * cos * nz
            s = ux * rx + uy * ry + uz * rz
            a = s if s > 0.0 else 0.0
        shin = m_shin[_row(m_shin.shape[0], n)]
        apow = _pow(a, shin)
        apow_out[p] = apow
        rc = max(cos, 0.0)
        for c in range(C):
            amb = m_amb[_row(m_amb.shape[0], n), c] * l_amb[_row(l_amb.shape[0], n), c]
            dif = m_dif[_row(m_dif.shape[0], n), c] * l_dif[_row(l_dif.shape[0], n), c] * rc
            spec = m_spec[_row(m_spec.shape[0], n), c] * l_spec[_row(l_spec.shape[0], n), c] * apow
            out[p, c] = (amb + dif) * tex[p, c] + spec


@numba.njit(cache=True)
def _flush(ch, n, C, s_amb, s_dif, s_spec, s_rest, l_amb, l_dif, l_spec, m_amb, m_dif, m_spec, a_lamb, a_ldif,
           a_lspec, a_lpos, a_mamb, a_mdif, a_mspec, a_shin, a_cam):
    """Add one run of fragments of image n (sums s_*) to the property gradients of chunk ch, and clear the sums.
    Every property is constant over the run, so its gradient is the run's sum times the other factor."""
    ma, md, ms = _row(m_amb.shape[0], n), _row(m_dif.shape[0], n), _row(m_spec.shape[0], n)
    la, ldb, ls = _row(l_amb.shape[0], n), _row(l_dif.shape[0], n), _row(l_spec.shape[0], n)
    for c in range(C):
        a_mamb[ch, ma, c] += s_amb[c] * l_amb[la, c]
        a_lamb[ch, la, c] += s_amb[c] * m_amb[ma, c]
        a_mdif[ch, md, c] += s_dif[c] * l_dif[ldb, c]
        a_ldif[ch, ldb, c] += s_dif[c] * m_dif[md, c]
        a_mspec[ch, ms, c] += s_spec[c] * l_spec[ls, c]
        a_lspec[ch, ls, c] += s_spec[c] * m_spec[ms, c]
        s_amb[c] = 0.0
        s_dif[c] = 0.0
        s_spec[c] = 0.0
    a_shin[ch, _row(a_shin.shape[1] - _PAD, n)] += s_rest[0]
    cb = _row(a_cam.shape[1] - _PAD, n)
    lb = _row(a_lpos.shape[1] - _PAD, n)
    for d in range(3):
        a_cam[ch, cb, d] += s_rest[1 + d]
        a_lpos[ch, lb, d] += s_rest[4 + d]
    for i in range(7):
        s_rest[i] = 0.0


@numba.njit(cache=True, parallel=True)
def _backward(attr, corner, face, bary, img_src, img_div, tex, is_point, l_amb, l_dif, l_spec, l_pos, m_amb, m_dif,
              m_spec, m_shin, cam, apow_in, g_out, n_chunks, need_bary, need_shin, g_attr, g_bary, g_tex, a_lamb, a_ldif, a_lspec, a_lpos,
              a_mamb, a_mdif, a_mspec, a_shin, a_cam):
    """Per-fragment gradients g_bary (P, J), g_tex (P, C); ``g_attr`` (n_chunks, A, 6) and the a_* (n_chunks,
    B + _PAD, *) float64 zeros: one accumulator per chunk of fragments (no atomics)."""
    P = face.shape[0]
    C = tex.shape[1]
    J = corner.shape[1]
    per = (P + n_chunks - 1) // n_chunks
    for ch in prange(n_chunks):
        # Fragments come sorted by image, so the property gradients are summed per run of one image (in
        # registers and these small arrays) and added once per run.
        s_amb = np.zeros(C)
        s_dif = np.zeros(C)
        s_spec = np.zeros(C)
        s_rest = np.zeros(7)  # shininess, camera (3), light position (3)
        n_run = -1
        for p in range(ch * per, min(P, (ch + 1) * per)):
            n = img_src[p] // img_div
            if n != n_run:
                if n_run >= 0:
                    _flush(ch, n_run, C, s_amb, s_dif, s_spec, s_rest, l_amb, l_dif, l_spec, m_amb, m_dif, m_spec,
                           a_lamb, a_ldif, a_lspec, a_lpos, a_mamb, a_mdif, a_mspec, a_shin, a_cam)
                n_run = n
            f = face[p]
            px, py, pz, nx0, ny0, nz0 = _interp(attr, corner, bary, f, p)
            dx, dy, dz, vx, vy, vz = _geometry(px, py, pz, n, is_point, l_pos, cam)
            nx, ny, nz, nd, nlive = _unit(nx0, ny0, nz0)
            lx, ly, lz, ld, llive = _unit(dx, dy, dz)
            cos = nx * lx + ny * ly + nz * lz
            # As the forward: the view ray only matters with a highlight (a > 0 needs cos > 0 and s > 0).
            a = 0.0
            ux = uy = uz = ud = rx = ry = rz = 0.0
            ulive = False
            if cos > 0.0:
                ux, uy, uz, ud, ulive = _unit(vx, vy, vz)
                rx, ry, rz = -lx + 2.0 * cos * nx, -ly + 2.0 * cos * ny, -lz + 2.0 * cos * nz
                s = ux * rx + uy * ry + uz * rz
                a = s if s > 0.0 else 0.0
            shin = m_shin[_row(m_shin.shape[0], n)]
            apow = apow_in[p]
            rc = max(cos, 0.0)
            ma, md, ms = _row(m_amb.shape[0], n), _row(m_dif.shape[0], n), _row(m_spec.shape[0], n)
            la, ldb, ls = _row(l_amb.shape[0], n), _row(l_dif.shape[0], n), _row(l_spec.shape[0], n)
            g_rc = 0.0
            g_apow = 0.0
            for c in range(C):
                g = g_out[p, c]
                gt = g * tex[p, c]
                dif = m_dif[md, c] * l_dif[ldb, c]
                spec = m_spec[ms, c] * l_spec[ls, c]
                g_tex[p, c] = g * (m_amb[ma, c] * l_amb[la, c] + dif * rc)
                s_amb[c] += gt
                s_dif[c] += gt * rc
                s_spec[c] += g * apow
                g_rc += gt * dif
                g_apow += g * spec
            # pow(a, shin): torch's conventions at a = 0 and shin = 0; a^(shin - 1) = a^shin / a for a > 0.
            if a != 0.0 and need_shin:
                s_rest[0] += g_apow * apow * math.log(a)
            # d a^shin / da = shin a^(shin - 1) = shin a^shin / a (used only where a > 0); 0 for shin = 0.
            g_a = g_apow * shin * apow / a if (a > 0.0 and shin != 0.0) else 0.0
            g_cos = g_rc if cos > 0.0 else 0.0
            gnx = gny = gnz = glx = gly = glz = gvx = gvy = gvz = 0.0
            if a > 0.0:  # a = s here: the gradient through the highlight (zero without one)
                # s = u . r
                gux, guy, guz = g_a * rx, g_a * ry, g_a * rz
                grx, gry, grz = g_a * ux, g_a * uy, g_a * uz
                # r = -l + 2 cos n
                glx, gly, glz = -grx, -gry, -grz
                g_cos += 2.0 * (grx * nx + gry * ny + grz * nz)
                gnx, gny, gnz = 2.0 * cos * grx, 2.0 * cos * gry, 2.0 * cos * grz
                gvx, gvy, gvz = _unit_grad(gux, guy, guz, ux, uy, uz, ud, ulive)
            # cos = n . l
            gnx += g_cos * lx
            gny += g_cos * ly
            gnz += g_cos * lz
            glx += g_cos * nx
            gly += g_cos * ny
            glz += g_cos * nz
            gdx, gdy, gdz = _unit_grad(glx, gly, glz, lx, ly, lz, ld, llive)
            gn0, gn1, gn2 = _unit_grad(gnx, gny, gnz, nx, ny, nz, nd, nlive)
            s_rest[1] += gvx
            s_rest[2] += gvy
            s_rest[3] += gvz
            s_rest[4] += gdx
            s_rest[5] += gdy
            s_rest[6] += gdz
            if is_point:
                gp0, gp1, gp2 = -gvx - gdx, -gvy - gdy, -gvz - gdz
            else:
                gp0, gp1, gp2 = -gvx, -gvy, -gvz
            # Back through the interpolation: to the corner rows and to the barycentrics.
            for j in range(J):
                r = corner[f, j]
                w = bary[p, j] if J > 1 else 1.0
                g_attr[ch, r, 0] += w * gp0
                g_attr[ch, r, 1] += w * gp1
                g_attr[ch, r, 2] += w * gp2
                g_attr[ch, r, 3] += w * gn0
                g_attr[ch, r, 4] += w * gn1
                g_attr[ch, r, 5] += w * gn2
                if need_bary:
                    g_bary[p, j] = (gp0 * attr[r, 0] + gp1 * attr[r, 1] + gp2 * attr[r, 2] + gn0 * attr[r, 3]
                                    + gn1 * attr[r, 4] + gn2 * attr[r, 5])
        if n_run >= 0:
            _flush(ch, n_run, C, s_amb, s_dif, s_spec, s_rest, l_amb, l_dif, l_spec, m_amb, m_dif, m_spec, a_lamb,
                   a_ldif, a_lspec, a_lpos, a_mamb, a_mdif, a_mspec, a_shin, a_cam)


_PROPS = ("l_amb", "l_dif", "l_spec", "l_pos", "m_amb", "m_dif", "m_spec", "m_shin", "cam")


class _FusedPhong(torch.autograd.Function):
    @staticmethod
    def forward(ctx, is_point, geom, attr, bary, tex, *props):
        corner, face, img_src, img_div = geom
        arrs = [t.detach().contiguous() for t in (attr, bary, tex) + props]
        idx = [t.contiguous() for t in (corner, face, img_src)]
        out = torch.empty((face.shape[0], tex.shape[1]), dtype=attr.dtype)
        apow = torch.zeros((face.shape[0],), dtype=attr.dtype)
        if face.shape[0] and tex.shape[1]:
            _forward(arrs[0].numpy(), idx[0].numpy(), idx[1].numpy(), arrs[1].numpy(), idx[2].numpy(), img_div,
                     arrs[2].numpy(), is_point, *(a.numpy() for a in arrs[3:]), out.numpy(), apow.numpy())
        ctx.save_for_backward(*idx, *arrs, apow)
        ctx.flags = (is_point, img_div)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, g_out):
        corner, face, img_src, attr, bary, tex, *props, apow = ctx.saved_tensors
        is_point, img_div = ctx.flags
        P, A, J = face.shape[0], attr.shape[0], corner.shape[1]
        np_dtype = attr.numpy().dtype
        # One (A, 6) float64 accumulator per chunk of fragments: zeroing and summing one costs about as much as
        # a quarter of A fragments' work, so chunks stop where that would not pay (huge meshes, few fragments).
        n_chunks = max(1, min(_MAX_CHUNKS, numba.get_num_threads(), P // 1024 or 1, P // max(A // 4, 1) or 1))
        need_bary = ctx.needs_input_grad[3] and J > 1
        need_shin = ctx.needs_input_grad[5 + _PROPS.index("m_shin")]
        g_attr = np.zeros((n_chunks, A, 6), dtype=np.float64)
        # The kernel writes every fragment's entry (when it runs: P and C > 0).
        alloc = np.empty if P and tex.shape[1] else np.zeros
        g_bary = alloc((P, J) if need_bary else (0, J), dtype=np_dtype)
        g_tex = alloc((P, tex.shape[1]), dtype=np_dtype)
        # 16 spare rows (>= 128 bytes) keep two threads' property accumulators off one cache line.
        acc = [np.zeros((n_chunks, t.shape[0] + _PAD) + tuple(t.shape[1:]), dtype=np.float64) for t in props]
        if P and tex.shape[1]:
            _backward(attr.numpy(), corner.numpy(), face.numpy(), bary.numpy(), img_src.numpy(), img_div, tex.numpy(),
                      is_point, *(t.numpy() for t in props), apow.numpy(), g_out.to(attr.dtype).numpy(), n_chunks,
                      need_bary, need_shin, g_attr, g_bary, g_tex, *acc)
        g_props = [torch.from_numpy(a.sum(0)[:t.shape[0]]).to(attr.dtype) for a, t in zip(acc, props)]
        ga = torch.from_numpy(g_attr.sum(0) if n_chunks > 1 else g_attr[0]).to(attr.dtype)
        return (None, None, ga, torch.from_numpy(g_bary) if need_bary else None, torch.from_numpy(g_tex), *g_props)


def _props(lights, materials, camera_position, dtype):
    from .lighting import PointLights

    is_point = isinstance(lights, PointLights)
    pos = lights.location if is_point else lights.direction
    props = [lights.ambient_color, lights.diffuse_color, lights.specular_color, pos, materials.ambient_color,
             materials.diffuse_color, materials.specular_color, materials.shininess, camera_position]
    return is_point, [t.to(dtype) for t in props]


def fused_phong_faces(attr, corner, face_idx, bary, image_of, image_div, texels, lights, materials, camera_position):
    """(P, C) ``(ambient + diffuse) * texels + specular`` (``shade._lit_faces``) at fragments interpolated in
    the kernel: fragment p lies on face ``f = face_idx[p]`` with position and normal
    ``sum_j bary[p, j] * attr[corner[f, j]]`` (``attr`` (A, 6) = position | normal rows; ``corner`` (F, J) int64;
    J = 3 with ``bary`` (P, 3), or J = 1 with weight 1 and ``bary`` unused) and belongs to image
    ``image_of[p] // image_div`` (e.g. ``Fragments.slot_idx`` and H W K: no (P,) image index is built).

    Gradients reach ``attr``, ``bary``, ``texels``, every light and material property and the camera
    position, as the torch path (interpolation, then ``shade._light_torch``)."""
    is_point, props = _props(lights, materials, camera_position, attr.dtype)
    return _FusedPhong.apply(is_point, (corner, face_idx, image_of, int(image_div)), attr, bary, texels, *props)
