"""Compositing front door: the Numba kernels behind a thin autograd Function, or the plain-torch path."""
from __future__ import annotations

import numpy as np
import torch

from . import _composite_numba as K
from ._composite_torch import composite_torch
from .binning import TileIntersections


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().contiguous().numpy()


class _CompositeNumba(torch.autograd.Function):
    """(means2d (G, 2), conics (G, 3), opacities (G,), colors (G, D), backgrounds (C, D)) ->
    (colors (C, H, W, D), alphas (C, H, W, 1)); G = C * N flattened."""

    @staticmethod
    def forward(ctx, means2d, conics, opacities, colors, backgrounds, radii, isect, n_cameras, width, height):
        D = colors.shape[-1]
        dt = colors.dtype
        out_c = np.empty((n_cameras, height, width, D), dt_np(dt))
        out_a = np.empty((n_cameras, height, width), dt_np(dt))
        count = np.empty((n_cameras, height, width), np.int64)
        args = (_np(means2d), _np(conics), _np(opacities), _np(colors), _np(radii.to(torch.int32)), _np(backgrounds),
                isect.flatten_ids.numpy(), isect.offsets.numpy(), width, height,
                isect.tile_size, isect.tile_width, isect.tile_width * isect.tile_height)
        K.composite_forward(*args, out_c, out_a, count)
        ctx.args = args
        ctx.out_a, ctx.count = out_a, count
        ctx.n_gauss = means2d.shape[0]
        ctx.dtype = dt
        return torch.from_numpy(out_c), torch.from_numpy(out_a)[..., None]

    @staticmethod
    def backward(ctx, v_img, v_alpha):
        args = ctx.args
        flat = args[6]
        M, D = flat.shape[0], args[3].shape[1]
        dt = dt_np(ctx.dtype)
        v_m, v_c = np.zeros((M, 2), dt), np.zeros((M, 3), dt)
        v_o, v_col = np.zeros(M, dt), np.zeros((M, D), dt)
        v_img = v_img.to(ctx.dtype)
        v_img_np, v_alpha_np = _np(v_img), _np(v_alpha[..., 0].to(ctx.dtype))
        K.composite_backward(*args, ctx.out_a, ctx.count, v_img_np, v_alpha_np, v_m, v_c, v_o, v_col)
        ids = torch.from_numpy(flat)
        G = ctx.n_gauss

        def reduce(rows: np.ndarray, shape):
            return torch.zeros(shape, dtype=v_img.dtype).index_add_(0, ids, torch.from_numpy(rows))

        T_final = torch.from_numpy(1.0 - ctx.out_a)  # (C, H, W)
        v_bg = (v_img * T_final[..., None]).sum(dim=(1, 2))
        return (reduce(v_m, (G, 2)), reduce(v_c, (G, 3)), reduce(v_o, (G,)), reduce(v_col, (G, D)), v_bg,
                None, None, None, None, None)


def dt_np(dtype: torch.dtype):
    return np.float64 if dtype == torch.float64 else np.float32


def composite(means2d, conics, opacities, colors, backgrounds, radii, isect: TileIntersections, n_cameras: int,
              width: int, height: int, backend: str):
    """Composite ``C`` images; ``backend`` is ``"numba"`` (CPU float32/float64 only) or ``"torch"``.
    ``radii: (G, 2)`` int footprint radii (the Numba kernels visit only the pixels inside them)."""
    if backend == "numba":
        return _CompositeNumba.apply(means2d, conics, opacities, colors, backgrounds, radii, isect, n_cameras,
                                     width, height)
    return composite_torch(means2d, conics, opacities, colors, backgrounds, isect, n_cameras, width, height)
