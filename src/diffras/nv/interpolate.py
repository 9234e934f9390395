"""nvdiffrast's ``interpolate``: vertex attributes to pixels through the rasterizer's barycentrics.

``out[n, y, x] = u * a[t0] + v * a[t1] + (1 - u - v) * a[t2]`` for the triangle (t0, t1, t2) recorded in
``rast[n, y, x, 3]`` (zero where ``rast[..., 3] == 0``), and with ``rast_db`` the chain rule gives
``dA/dX = (a[t0] - a[t2]) du/dX + (a[t1] - a[t2]) dv/dX`` (likewise for Y). Plain torch on the covered
pixels only: runs on any device, autograd gives gradients to ``attr``, ``rast`` and ``rast_db``. CPU
float32/float64 tensors of one dtype run the fused kernel of ``diffras.nv._interpolate_numba`` instead
(same semantics, hand-written backward).
"""
from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple, Union

import torch

from .._validation import check_index_range, check_tensor
from ..raster.fragments import use_fused

__all__ = ["interpolate"]


def _diff_list(diff_attrs: Any, C: int) -> List[int]:
    if isinstance(diff_attrs, str):
        if diff_attrs != "all":
            raise ValueError(f"diff_attrs: expected 'all' or a list of attribute indices, got {diff_attrs!r}")
        return list(range(C))
    try:
        idx = [int(i) for i in diff_attrs]
    except TypeError as e:
        raise TypeError(f"diff_attrs: expected 'all' or a list of ints, got {type(diff_attrs).__name__}") from e
    for i in idx:
        if not 0 <= i < C:
            raise ValueError(f"diff_attrs: expected indices in [0, {C}), got {i}")
    return idx


def interpolate(
    attr: torch.Tensor, rast: torch.Tensor, tri: torch.Tensor, rast_db: Optional[torch.Tensor] = None,
    diff_attrs: Union[None, str, Sequence[int]] = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Interpolate vertex attributes (``nvdiffrast.torch.interpolate``).

    Args:
        attr: (V, C) float (range mode) or (N, V, C) float (instanced mode; N may be 1 to broadcast).
        rast: (N, H, W, 4) from :func:`rasterize`.
        tri: (T, 3) int, the triangles given to :func:`rasterize`.
        rast_db: optional (N, H, W, 4) from :func:`rasterize`, needed for ``diff_attrs``.
        diff_attrs: attribute indices whose screen derivatives to return, or ``'all'``.

    Returns:
        out: (N, H, W, C) interpolated attributes, zero where no triangle is visible.
        out_da: (N, H, W, 2 * len(diff_attrs)) ``(dA/dX, dA/dY)`` per selected attribute in pixel units,
            or an (N, H, W, 0) tensor without ``rast_db`` / ``diff_attrs``.
    """
    check_tensor(attr, "attr", dtype="float")
    if attr.dim() not in (2, 3):
        raise ValueError(f"attr: expected shape (V, C) or (N, V, C), got {tuple(attr.shape)}")
    check_tensor(rast, "rast", ndim=4, dtype="float")
    if rast.shape[-1] != 4:
        raise ValueError(f"rast: expected shape (N, H, W, 4), got {tuple(rast.shape)}")
    check_tensor(tri, "tri", shape=(None, 3), dtype="int")
    N, H, W, _ = rast.shape
    if attr.dim() == 3 and attr.shape[0] not in (1, N):
        raise ValueError(f"attr: expected minibatch size 1 or {N} (rast's), got {attr.shape[0]}")
    for name, t in (("rast", rast), ("tri", tri), ("rast_db", rast_db)):
        if t is not None and t.device != attr.device:
            raise ValueError(f"{name}: expected device {attr.device} (the device of attr), got {t.device}")
    V, C = attr.shape[-2], attr.shape[-1]
    check_index_range(tri, "tri", V)
    if rast_db is not None:
        check_tensor(rast_db, "rast_db", shape=(N, H, W, 4), dtype="float")
    want_da = rast_db is not None and diff_attrs is not None
    sel = _diff_list(diff_attrs, C) if want_da else []

    r3 = rast[..., 3].detach()
    if r3.numel():
        hi, lo = int(r3.max().round()), int(r3.min().round())
        if hi > tri.shape[0] or lo < 0:
            raise ValueError(f"rast: expected triangle ids in [0, {tri.shape[0]}] in channel 3 (as rasterize "
                             f"writes for this tri), got ids in [{lo}, {hi}]")
    if use_fused(attr, rast, *([rast_db] if want_da else [])):
        from ._interpolate_numba import fused_interpolate

        return fused_interpolate(attr, rast, tri, rast_db if want_da else None, sel)
    flat = rast.reshape(-1, 4)
    ids = flat[:, 3].detach().round().to(torch.int64)
    pix = torch.nonzero(ids, as_tuple=True)[0]
    corners = tri.to(torch.int64)[ids[pix] - 1]  # (P, 3)
    if attr.dim() == 3 and attr.shape[0] == N and N > 1:
        n = torch.div(pix, H * W, rounding_mode="floor")
        a = attr.reshape(-1, C)[corners + (n * V)[:, None]]  # (P, 3, C)
    else:
        a = attr.reshape(-1, C)[corners]
    u = flat[pix, 0:1]
    v = flat[pix, 1:2]
    a0, a1, a2 = a[:, 0], a[:, 1], a[:, 2]
    d0, d1 = a0 - a2, a1 - a2
    vals = a2 + u * d0 + v * d1
    out = torch.zeros(N * H * W, C, dtype=vals.dtype, device=attr.device).index_put((pix,), vals)
    out = out.reshape(N, H, W, C)
    if not want_da:
        return out, torch.zeros(N, H, W, 0, dtype=out.dtype, device=attr.device)
    db = rast_db.reshape(-1, 4)[pix]  # (du/dX, du/dY, dv/dX, dv/dY)
    s0, s1 = d0[:, sel], d1[:, sel]
    dX = s0 * db[:, 0:1] + s1 * db[:, 2:3]
    dY = s0 * db[:, 1:2] + s1 * db[:, 3:4]
    da = torch.stack([dX, dY], 2).reshape(-1, 2 * len(sel))
    out_da = torch.zeros(N * H * W, 2 * len(sel), dtype=da.dtype, device=attr.device).index_put((pix,), da)
    return out, out_da.reshape(N, H, W, 2 * len(sel))
