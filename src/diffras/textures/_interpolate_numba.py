"""Fused CPU interpolation of per-face-corner attributes at packed fragments (private; used by
``interpolate.interpolate_packed`` for CPU float32/float64 tensors).

Why: the torch path gathers a (P, 3, D) copy of the corner attributes and its backward scatters a
(P, 3, D) gradient back through the gather; here each fragment reads its three corners in place and the
backward accumulates the (F, 3, D) gradient per chunk of fragments (no atomics, no (P, 3, D) temporaries).
Same values and gradients as the torch path (tests check both, and gradcheck in float64).
"""
from __future__ import annotations

import numba
import numpy as np
import torch
from numba import prange
from torch.autograd.function import once_differentiable

_MAX_CHUNKS = 8


@numba.njit(cache=True, parallel=True)
def _forward(face, bary, attrs, out):
    D = attrs.shape[2]
    for p in prange(face.shape[0]):
        f = face[p]
        b0, b1, b2 = bary[p, 0], bary[p, 1], bary[p, 2]
        for d in range(D):
            out[p, d] = b0 * attrs[f, 0, d] + b1 * attrs[f, 1, d] + b2 * attrs[f, 2, d]


@numba.njit(cache=True, parallel=True)
def _backward(face, bary, attrs, g_out, need_bary, need_attrs, n_chunks, g_bary, g_attrs):
    """g_bary (P, 3) written per fragment; g_attrs (n_chunks, F, 3, D) float64 zeros, one per chunk."""
    P = face.shape[0]
    D = attrs.shape[2]
    per = (P + n_chunks - 1) // n_chunks
    for ch in prange(n_chunks):
        ga = g_attrs[ch]
        for p in range(ch * per, min(P, (ch + 1) * per)):
            f = face[p]
            if need_bary:
                s0 = 0.0
                s1 = 0.0
                s2 = 0.0
                for d in range(D):
                    g = g_out[p, d]
                    s0 += g * attrs[f, 0, d]
                    s1 += g * attrs[f, 1, d]
                    s2 += g * attrs[f, 2, d]
                g_bary[p, 0] = s0
                g_bary[p, 1] = s1
                g_bary[p, 2] = s2
            if need_attrs:
                b0, b1, b2 = bary[p, 0], bary[p, 1], bary[p, 2]
                for d in range(D):
                    g = g_out[p, d]
                    ga[f, 0, d] += b0 * g
                    ga[f, 1, d] += b1 * g
                    ga[f, 2, d] += b2 * g


class _FusedInterpolate(torch.autograd.Function):
    @staticmethod
    def forward(ctx, face, bary, attrs):
        face = face.contiguous()
        b = bary.detach().contiguous()
        a = attrs.detach().contiguous()
        out = torch.empty((face.shape[0], a.shape[2]), dtype=a.dtype)
        if face.numel() and a.shape[2]:
            _forward(face.numpy(), b.numpy(), a.numpy(), out.numpy())
        ctx.save_for_backward(face, b, a)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, g_out):
        face, b, a = ctx.saved_tensors
        need_bary, need_attrs = ctx.needs_input_grad[1], ctx.needs_input_grad[2]
        P = face.shape[0]
        g = g_out.to(a.dtype).contiguous()
        n_chunks = max(1, min(_MAX_CHUNKS, numba.get_num_threads(), P // 256 or 1)) if need_attrs else 1
        g_bary = np.zeros((P, 3) if need_bary else (0, 3), dtype=b.numpy().dtype)
        g_attrs = np.zeros((n_chunks,) + tuple(a.shape) if need_attrs else (1, 0, 3, 0), dtype=np.float64)
        if P and a.shape[2]:
            _backward(face.numpy(), b.numpy(), a.numpy(), g.numpy(), need_bary, need_attrs, n_chunks, g_bary,
                      g_attrs)
        gb = torch.from_numpy(g_bary) if need_bary else None
        ga = torch.from_numpy(g_attrs.sum(0) if n_chunks > 1 else g_attrs[0]).to(a.dtype) if need_attrs else None
        return None, gb, ga


def fused_interpolate(face: torch.Tensor, bary: torch.Tensor, attrs: torch.Tensor) -> torch.Tensor:
    """(P, D) ``sum_i bary[p, i] * attrs[face[p], i]`` for CPU tensors of one float dtype."""
    return _FusedInterpolate.apply(face, bary, attrs)
