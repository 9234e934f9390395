"""Numba kernels for the EWA projection (``projection.py`` documents the rules) and its hand-written backward.

One parallel task per Gaussian, looping over the cameras, so per-Gaussian gradients need no atomics; the
viewmat gradients are written per (camera, Gaussian) and summed by the caller. Intermediates are recomputed
in the backward pass (cheaper than storing them). Arithmetic is float64 whatever the storage dtype.
The torch implementation in ``projection.py`` is the reference these kernels are tested against.
"""
from __future__ import annotations

import math

import numba
import numpy as np

ALPHA_THRESHOLD = 1.0 / 255.0
GAUSSIAN_EXTEND = 3.33


@numba.njit(cache=True, inline="always")
def _mm(A, B):
    """Small dense product ``A @ B`` by loops: numba's ``@`` calls BLAS, whose per-call overhead on 3x3
    matrices was half of a 100k-Gaussian fwd+bwd."""
    out = np.zeros((A.shape[0], B.shape[1]))
    for i in range(A.shape[0]):
        for k in range(A.shape[1]):
            a = A[i, k]
            for j in range(B.shape[1]):
                out[i, j] += a * B[k, j]
    return out


@numba.njit(cache=True, inline="always")
def _rotmat(qw, qx, qy, qz):
    inv = 1.0 / math.sqrt(qw * qw + qx * qx + qy * qy + qz * qz)
    w, x, y, z = qw * inv, qx * inv, qy * inv, qz * inv
    R = np.empty((3, 3))
    R[0, 0] = 1 - 2 * (y * y + z * z)
    R[0, 1] = 2 * (x * y - w * z)
    R[0, 2] = 2 * (x * z + w * y)
    R[1, 0] = 2 * (x * y + w * z)
    R[1, 1] = 1 - 2 * (x * x + z * z)
    R[1, 2] = 2 * (y * z - w * x)
    R[2, 0] = 2 * (x * z - w * y)
    R[2, 1] = 2 * (y * z + w * x)
    R[2, 2] = 1 - 2 * (x * x + y * y)
    return R, w, x, y, z, inv


@numba.njit(cache=True, inline="always")
def _setup(n, c, means, quats, scales, viewmats, Ks, width, height):
    """World covariance, camera-space mean and covariance, Jacobian and clamp flags of Gaussian n in camera c."""
    R, w, x, y, z, inv = _rotmat(quats[n, 0], quats[n, 1], quats[n, 2], quats[n, 3])
    M = np.empty((3, 3))
    for i in range(3):
        for j in range(3):
            M[i, j] = R[i, j] * scales[n, j]
    Sig = _mm(M, M.T)
    W = np.empty((3, 3))
    for i in range(3):
        for j in range(3):
            W[i, j] = viewmats[c, i, j]
    p = np.empty(3)
    for i in range(3):
        p[i] = W[i, 0] * means[n, 0] + W[i, 1] * means[n, 1] + W[i, 2] * means[n, 2] + viewmats[c, i, 3]
    Sc = _mm(_mm(W, Sig), W.T)
    fx, fy, cx, cy = Ks[c, 0, 0], Ks[c, 1, 1], Ks[c, 0, 2], Ks[c, 1, 2]
    return R, (w, x, y, z, inv), M, Sig, W, p, Sc, fx, fy, cx, cy


@numba.njit(cache=True, inline="always")
def _jacobian(p, fx, fy, cx, cy, width, height):
    rz = 1.0 / p[2]
    tan_x, tan_y = 0.5 * width / fx, 0.5 * height / fy
    lxp, lxn = (width - cx) / fx + 0.3 * tan_x, cx / fx + 0.3 * tan_x
    lyp, lyn = (height - cy) / fy + 0.3 * tan_y, cy / fy + 0.3 * tan_y
    ux, uy = p[0] * rz, p[1] * rz
    cux, cuy = min(lxp, max(-lxn, ux)), min(lyp, max(-lyn, uy))
    J = np.zeros((2, 3))
    J[0, 0] = fx * rz
    J[0, 2] = -fx * cux * rz  # = -fx tx / z^2 with tx = z * clamp(x / z)
    J[1, 1] = fy * rz
    J[1, 2] = -fy * cuy * rz
    return J, rz, cux, cuy, cux == ux, cuy == uy


@numba.njit(parallel=True, cache=True)
def project_forward(means, quats, scales, opacities, viewmats, Ks, width, height, near, far, radius_clip, eps2d,
                    antialiased, out_means2d, out_conics, out_depths, out_radii, out_opac, out_comp):
    C = viewmats.shape[0]
    N = means.shape[0]
    for n in numba.prange(N):
        for c in range(C):
            out_radii[c, n, 0] = 0
            out_radii[c, n, 1] = 0
            out_means2d[c, n, 0] = out_means2d[c, n, 1] = 0.0
            out_conics[c, n, 0] = out_conics[c, n, 1] = out_conics[c, n, 2] = 0.0
            out_depths[c, n] = out_opac[c, n] = out_comp[c, n] = 0.0
            R, q, M, Sig, W, p, Sc, fx, fy, cx, cy = _setup(n, c, means, quats, scales, viewmats, Ks, width, height)
            if p[2] < near or p[2] > far:
                continue
            J, rz, cux, cuy, fx_free, fy_free = _jacobian(p, fx, fy, cx, cy, width, height)
            S = _mm(_mm(J, Sc), J.T)
            a, b, cc = S[0, 0] + eps2d, S[0, 1], S[1, 1] + eps2d
            det = a * cc - b * b
            if det <= 0.0:
                continue
            o = opacities[n]
            comp = 0.0
            if antialiased:
                r = (S[0, 0] * S[1, 1] - b * b) / det
                comp = math.sqrt(r) if r > 0.0 else 0.0
                o = o * comp
            if o < ALPHA_THRESHOLD:
                continue
            ext = min(GAUSSIAN_EXTEND, math.sqrt(2.0 * math.log(o / ALPHA_THRESHOLD)))
            rx = math.ceil(ext * math.sqrt(a))
            ry = math.ceil(ext * math.sqrt(cc))
            if rx <= radius_clip and ry <= radius_clip:
                continue
            mx = fx * p[0] * rz + cx
            my = fy * p[1] * rz + cy
            if mx + rx <= 0 or mx - rx >= width or my + ry <= 0 or my - ry >= height:
                continue
            out_radii[c, n, 0] = int(rx)
            out_radii[c, n, 1] = int(ry)
            out_means2d[c, n, 0] = mx
            out_means2d[c, n, 1] = my
            out_conics[c, n, 0] = cc / det
            out_conics[c, n, 1] = -b / det
            out_conics[c, n, 2] = a / det
            out_depths[c, n] = p[2]
            out_opac[c, n] = o
            out_comp[c, n] = comp


@numba.njit(parallel=True, cache=True)
def project_backward(means, quats, scales, opacities, viewmats, Ks, width, height, eps2d, antialiased, radii,
                     v_means2d, v_conics, v_depths, v_opac,
                     g_means, g_quats, g_scales, g_opac, g_W, g_t):
    """Gradients: g_means (N, 3), g_quats (N, 4), g_scales (N, 3), g_opac (N,), and per (camera, Gaussian)
    g_W (C, N, 3, 3), g_t (C, N, 3) for the viewmats' rotation and translation (summed by the caller)."""
    C = viewmats.shape[0]
    N = means.shape[0]
    for n in numba.prange(N):
        vSig = np.zeros((3, 3))
        R, q, M, Sig, W, p, Sc, fx, fy, cx, cy = _setup(n, 0, means, quats, scales, viewmats, Ks, width, height)
        for c in range(C):
            for i in range(3):
                g_t[c, n, i] = 0.0
                for j in range(3):
                    g_W[c, n, i, j] = 0.0
            if radii[c, n, 0] <= 0 or radii[c, n, 1] <= 0:
                continue
            R, q, M, Sig, W, p, Sc, fx, fy, cx, cy = _setup(n, c, means, quats, scales, viewmats, Ks, width, height)
            J, rz, cux, cuy, fx_free, fy_free = _jacobian(p, fx, fy, cx, cy, width, height)
            S = _mm(_mm(J, Sc), J.T)
            a, b, cc = S[0, 0] + eps2d, S[0, 1], S[1, 1] + eps2d
            det = a * cc - b * b
            id2 = 1.0 / (det * det)
            vA, vB, vC = v_conics[c, n, 0], v_conics[c, n, 1], v_conics[c, n, 2]
            # conic = (cc, -b, a) / det, b entering once.
            va = vA * (-cc * cc * id2) + vB * (b * cc * id2) + vC * (1.0 / det - a * cc * id2)
            vb = vA * (2 * b * cc * id2) - vB * (1.0 / det + 2 * b * b * id2) + vC * (2 * a * b * id2)
            vc = vA * (1.0 / det - a * cc * id2) + vB * (a * b * id2) + vC * (-a * a * id2)
            vo = v_opac[c, n]
            if antialiased:
                det0 = S[0, 0] * S[1, 1] - b * b
                r = det0 / det
                comp = math.sqrt(r) if r > 0.0 else 0.0
                g_opac[n] += vo * comp
                if r > 0.0:
                    v_r = vo * opacities[n] * 0.5 / comp
                    va += v_r * (S[1, 1] * det - det0 * cc) * id2
                    vc += v_r * (S[0, 0] * det - det0 * a) * id2
                    vb += v_r * (-2 * b * det + det0 * 2 * b) * id2
            else:
                g_opac[n] += vo
            # S = J Sc J^T with dL/dS symmetric: [[va, vb / 2], [vb / 2, vc]].
            VS = np.empty((2, 2))
            VS[0, 0], VS[0, 1], VS[1, 0], VS[1, 1] = va, 0.5 * vb, 0.5 * vb, vc
            vJ = 2.0 * _mm(_mm(VS, J), Sc)
            vSc = _mm(_mm(J.T, VS), J)
            # Jacobian entries -> camera-space mean.
            vp = np.zeros(3)
            vp[2] += -vJ[0, 0] * fx * rz * rz - vJ[1, 1] * fy * rz * rz
            if fx_free:
                vp[0] += -vJ[0, 2] * fx * rz * rz
                vp[2] += vJ[0, 2] * 2.0 * fx * cux * rz * rz
            else:
                vp[2] += vJ[0, 2] * fx * cux * rz * rz
            if fy_free:
                vp[1] += -vJ[1, 2] * fy * rz * rz
                vp[2] += vJ[1, 2] * 2.0 * fy * cuy * rz * rz
            else:
                vp[2] += vJ[1, 2] * fy * cuy * rz * rz
            # Projected mean and depth.
            vu, vv = v_means2d[c, n, 0], v_means2d[c, n, 1]
            vp[0] += vu * fx * rz
            vp[1] += vv * fy * rz
            vp[2] += -vu * fx * p[0] * rz * rz - vv * fy * p[1] * rz * rz + v_depths[c, n]
            # Sc = W Sig W^T; p = W mu + t.
            vSig += _mm(_mm(W.T, vSc), W)
            gW = 2.0 * _mm(_mm(vSc, W), Sig)
            for i in range(3):
                g_t[c, n, i] = vp[i]
                for j in range(3):
                    g_W[c, n, i, j] = gW[i, j] + vp[i] * means[n, j]
                    g_means[n, j] += W[i, j] * vp[i]
        # Sig = M M^T, M = R diag(s).
        vM = 2.0 * _mm(vSig, M)
        vR = np.empty((3, 3))
        for i in range(3):
            for j in range(3):
                vR[i, j] = vM[i, j] * scales[n, j]
        for j in range(3):
            g_scales[n, j] += vM[0, j] * R[0, j] + vM[1, j] * R[1, j] + vM[2, j] * R[2, j]
        w, x, y, z, inv = q
        dw = 2 * (-z * vR[0, 1] + y * vR[0, 2] + z * vR[1, 0] - x * vR[1, 2] - y * vR[2, 0] + x * vR[2, 1])
        dx = 2 * (y * vR[0, 1] + z * vR[0, 2] + y * vR[1, 0] - 2 * x * vR[1, 1] - w * vR[1, 2] + z * vR[2, 0] + w * vR[2, 1] - 2 * x * vR[2, 2])
        dy = 2 * (-2 * y * vR[0, 0] + x * vR[0, 1] + w * vR[0, 2] + x * vR[1, 0] + z * vR[1, 2] - w * vR[2, 0] + z * vR[2, 1] - 2 * y * vR[2, 2])
        dz = 2 * (-2 * z * vR[0, 0] - w * vR[0, 1] + x * vR[0, 2] + w * vR[1, 0] - 2 * z * vR[1, 1] + y * vR[1, 2] + x * vR[2, 0] + y * vR[2, 1])
        dot = w * dw + x * dx + y * dy + z * dz  # through the normalisation q / |q|
        g_quats[n, 0] += (dw - w * dot) * inv
        g_quats[n, 1] += (dx - x * dot) * inv
        g_quats[n, 2] += (dy - y * dot) * inv
        g_quats[n, 3] += (dz - z * dot) * inv
