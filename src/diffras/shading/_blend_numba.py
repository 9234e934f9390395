"""Fused CPU blending of packed fragments: one numba pass per pixel, forward and a hand-written backward
(private; ``blending.blend_packed`` uses it for CPU float32/float64 tensors).

Why: the torch path needs a dozen passes over the P filled fragments and scatter/gather between fragments
and pixels; here each pixel reads its contiguous run of fragments once, in float64 registers, and writes its
RGBA. The forward keeps each fragment's coverage probability and depth weight (two float64 per fragment) so
the backward needs no exp per fragment; the backward writes each fragment's gradient from the one thread
that owns its pixel, so no atomics are needed.

The formulas are those documented in ``blending`` (PyTorch3D's); ``_blend_torch`` is the reference.
Rules are coded as ints: 0 hard, 1 sigmoid, 2 softmax.
"""
from __future__ import annotations

import math

import numba
import numpy as np
import torch
from numba import prange
from torch.autograd.function import once_differentiable

from .._threads import serial_below

HARD, SIGMOID, SOFTMAX = 0, 1, 2
_EPS = 1e-10  # PyTorch3D's epsilon in softmax_rgb_blend (same as blending._EPS)
# Below this many pixels + fragments a call costs less on one thread than waking the pool.
_SERIAL_WORK = 32768


@numba.njit(cache=True, parallel=True)
def _pixel_ranges(slots, K, total, begin, end):
    """begin[q], end[q]: the run of packed entries of flat pixel q = slot // K (begin == end when it has none).
    ``begin``/``end`` come zeroed. Checks the slots in the same pass: returns the number of entries outside
    [0, total) or not above their predecessor; while it is 0 the ranges are valid (nothing out of range is
    written)."""
    P = slots.shape[0]
    bad = 0
    for i in prange(P):
        s = slots[i]
        if s < 0 or s >= total:
            bad += 1
            continue
        if i > 0 and slots[i - 1] >= s:
            bad += 1
        q = s // K
        if i == 0 or slots[i - 1] // K != q:
            begin[q] = i
        if i == P - 1 or slots[i + 1] // K != q:
            end[q] = i + 1
    return bad


@numba.njit(cache=True, inline="always")
def _sig(x):
    # Both branches are exact forms of 1 / (1 + exp(-x)); each avoids overflow on its side.
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@numba.njit(cache=True, inline="always")
def _softmax_shift(zinv, b, e):
    """(M, argmax): ``M = max(eps, max_k zinv_k)`` and the first entry reaching it (-1 when clamped)."""
    best = -np.inf
    arg = -1
    for i in range(b, e):
        if zinv[i] > best:
            best = zinv[i]
            arg = i
    if arg < 0 or best < _EPS:
        return _EPS, -1
    return best, arg


@numba.njit(cache=True, inline="always")
def _coverage(dists, b, e, inv_sigma, prob):
    """prob[i] = sigmoid(-dists[i] / sigma) over the pixel's run; returns prod (1 - prob), the product of its
    non-zero factors and the number of zero factors (for an exact d alpha / d prob where a factor is 0)."""
    keep = 1.0
    keep_nz = 1.0
    zeros = 0
    for i in range(b, e):
        p = _sig(-float(dists[i]) * inv_sigma)
        prob[i] = p
        f = 1.0 - p
        keep *= f
        if f == 0.0:
            zeros += 1
        else:
            keep_nz *= f
    return keep, keep_nz, zeros


@numba.njit(cache=True, inline="always")
def _keep_from_prob(prob, b, e):
    """:func:`_coverage`'s products from stored probabilities."""
    keep = 1.0
    keep_nz = 1.0
    zeros = 0
    for i in range(b, e):
        f = 1.0 - prob[i]
        keep *= f
        if f == 0.0:
            zeros += 1
        else:
            keep_nz *= f
    return keep, keep_nz, zeros


@numba.njit(cache=True, inline="always")
def _depth_weights(zinv, b, e, inv_gamma, ex):
    """ex[i] = exp((zinv[i] - M) / gamma); returns (M, argmax, raw background weight, clamped delta)."""
    M, arg = _softmax_shift(zinv, b, e)
    for i in range(b, e):
        ex[i] = math.exp((float(zinv[i]) - M) * inv_gamma)
    raw = math.exp((_EPS - M) * inv_gamma)
    return M, arg, raw, max(raw, _EPS)


@numba.njit(cache=True, parallel=True)
def _forward(rule, slots, K, begin, end, colors, dists, zinv, bg, inv_sigma, inv_gamma, out, prob, ex):
    """``prob``/``ex``: (P,) float64 scratch, each entry written and read by its pixel's thread only."""
    NP = begin.shape[0]
    C = colors.shape[1]
    for q in prange(NP):
        b = begin[q]
        e = end[q]
        first = b < e and slots[b] == q * K  # the pixel's slot 0 is filled
        if rule == HARD:
            for c in range(C):
                out[q, c] = colors[b, c] if first else bg[c]
            out[q, C] = 1.0 if first else 0.0
            continue
        # alpha = 1 - prod_k (1 - prob_k), the product in slot order as the dense path takes it
        keep, _, _ = _coverage(dists, b, e, inv_sigma, prob)
        out[q, C] = 1.0 - keep
        if rule == SIGMOID:
            for c in range(C):
                out[q, c] = colors[b, c] if first else 0.0
            continue
        _, _, _, delta = _depth_weights(zinv, b, e, inv_gamma, ex)
        den = delta
        for i in range(b, e):
            den += prob[i] * ex[i]
        for c in range(C):
            num = delta * bg[c]
            for i in range(b, e):
                num += prob[i] * ex[i] * float(colors[i, c])
            out[q, c] = num / den


@numba.njit(cache=True, parallel=True)
def _backward(rule, slots, K, begin, end, colors, dists, zinv, bg, inv_sigma, inv_gamma, prob, ex, gout,
              d_colors, d_dists, d_zinv, bg_coef, d_prob):
    """Gradients of the packed inputs; ``bg_coef[q]`` is d rgb[q, c] / d bg[c] (the same for every c).
    ``prob``/``ex`` as the forward left them (read only); ``d_prob`` (P,) float64 scratch.
    ``d_colors`` comes zeroed (entries other than slot 0 of a pixel get no gradient under hard/sigmoid)."""
    NP = begin.shape[0]
    C = colors.shape[1]
    for q in prange(NP):
        b = begin[q]
        e = end[q]
        first = b < e and slots[b] == q * K
        if rule == HARD:
            if first:
                for c in range(C):
                    d_colors[b, c] = gout[q, c]
                bg_coef[q] = 0.0
            else:
                bg_coef[q] = 1.0
            continue
        bg_coef[q] = 0.0
        if b == e:
            # No fragment: softmax gives the background (weight delta / delta = 1), alpha 0.
            if rule == SOFTMAX:
                bg_coef[q] = 1.0
            continue
        if rule == SIGMOID and first:
            for c in range(C):
                d_colors[b, c] = gout[q, c]
        ga = float(gout[q, C])
        keep, keep_nz, zeros = _keep_from_prob(prob, b, e)
        if rule == SOFTMAX:
            M, arg = _softmax_shift(zinv, b, e)
            raw = math.exp((_EPS - M) * inv_gamma)
            delta = max(raw, _EPS)
            den = delta
            for i in range(b, e):
                den += prob[i] * ex[i]
            # rgb_c = num_c / den; g . rgb and g . bg are needed for d/d den and d/d delta.
            g_rgb = 0.0
            g_bg = 0.0
            for c in range(C):
                num = delta * bg[c]
                for i in range(b, e):
                    num += prob[i] * ex[i] * float(colors[i, c])
                g_rgb += float(gout[q, c]) * num / den
                g_bg += float(gout[q, c]) * bg[c]
            bg_coef[q] = delta / den
            d_M = 0.0
            for i in range(b, e):
                w = prob[i] * ex[i]
                gc = 0.0
                for c in range(C):
                    g = float(gout[q, c])
                    d_colors[i, c] = w * g / den
                    gc += g * float(colors[i, c])
                d_w = (gc - g_rgb) / den
                d_zinv[i] = d_w * w * inv_gamma
                d_M -= d_w * w * inv_gamma
                # d w / d prob = ex; the coverage term below adds the alpha part.
                d_prob[i] = d_w * ex[i]
            if raw >= _EPS:  # delta = exp((eps - M) / gamma) is not clamped: it moves with M
                d_M -= (g_bg - g_rgb) / den * delta * inv_gamma
            if arg >= 0:
                d_zinv[arg] += d_M
        for i in range(b, e):
            p = prob[i]
            f = 1.0 - p
            if zeros == 0:
                others = keep / f
            elif zeros == 1 and f == 0.0:
                others = keep_nz
            else:
                others = 0.0
            d_p = (d_prob[i] if rule == SOFTMAX else 0.0) + ga * others
            # d prob / d dist = -prob (1 - prob) / sigma
            d_dists[i] = -d_p * p * f * inv_sigma


def pixel_ranges(slots: np.ndarray, K: int, n_pixels: int):
    """(begin, end, bad): ``begin``/``end`` each (n_pixels,) int64, pixel q's entries (``slots // K == q``) are
    ``begin[q]:end[q]``, valid only if ``bad``, the count of slots outside [0, n_pixels K) or not above their
    predecessor (checked in the same pass), is 0."""
    begin = np.zeros(n_pixels, dtype=np.int64)
    end = np.zeros(n_pixels, dtype=np.int64)
    bad = 0
    if slots.shape[0]:
        with serial_below(slots.shape[0], _SERIAL_WORK):
            bad = _pixel_ranges(slots, K, n_pixels * K, begin, end)
    return begin, end, bad


class FusedBlend(torch.autograd.Function):
    """(colors (P, C), dists (P,), zinv (P,), bg (C,)) -> (n_pixels, C + 1); ``dists``/``zinv`` may be empty
    where the rule does not read them. ``ranges`` = (slots, K, begin, end) as numpy arrays."""

    @staticmethod
    def forward(ctx, colors, dists, zinv, bg, ranges, rule, sigma, gamma):
        slots, K, begin, end = ranges
        out = torch.empty((begin.shape[0], colors.shape[1] + 1), dtype=colors.dtype)
        args = (rule, slots, K, begin, end, colors.detach().numpy(), dists.detach().numpy(),
                zinv.detach().numpy(), bg.detach().to(torch.float64).contiguous().numpy(), 1.0 / sigma, 1.0 / gamma)
        scratch = (np.empty(slots.shape[0] if rule != HARD else 0), np.empty(slots.shape[0] if rule == SOFTMAX else 0))
        with serial_below(begin.shape[0] + slots.shape[0], _SERIAL_WORK):
            _forward(*args, out.numpy(), *scratch)
        ctx.args = args + scratch
        ctx.save_for_backward(colors, dists, zinv, bg)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, gout):
        colors, dists, zinv, bg = ctx.saved_tensors
        # A loss like images.sum() sends a stride-0 expanded gradient: read it in place (the kernel takes any
        # strides) rather than materialising the whole (n_pixels, C + 1) image.
        gout = gout.to(colors.dtype)
        rule = ctx.args[0]
        # The softmax rule writes every fragment's gradients; hard and sigmoid only the nearest's colour.
        d_colors = torch.empty_like(colors) if rule == SOFTMAX else torch.zeros_like(colors)
        d_dists = torch.empty_like(dists)
        d_zinv = torch.empty_like(zinv)
        bg_coef = torch.empty(gout.shape[0], dtype=gout.dtype)
        work = ctx.args[3].shape[0] + ctx.args[1].shape[0]
        with serial_below(work, _SERIAL_WORK):
            _backward(*ctx.args, gout.numpy(), d_colors.numpy(), d_dists.numpy(), d_zinv.numpy(), bg_coef.numpy(),
                      np.empty(d_zinv.shape[0]))
        d_bg = None
        if ctx.needs_input_grad[3]:
            d_bg = (bg_coef @ gout[:, :-1]).to(bg.dtype)
        return d_colors, d_dists, d_zinv, d_bg, None, None, None, None
