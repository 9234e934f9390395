"""The fused pyramid-and-sampling Function (``_mip_sample``, what maps that require grad use on the CPU) against
the plain-torch path (``texel_table`` + ``sample_points`` with ``fused=False``): values and gradients to the
maps and the UVs in float64 and float32, gradcheck in float64; and its sparse-row logic (only the mip levels
the points read are built and accumulated): all points at level 0, all at the top level, maps of different
sizes at different levels, a map no point reads, non power-of-two pyramids."""
import itertools
import math

import numpy as np
import pytest
import torch
from torch.autograd import gradcheck

from diffras.textures import TexturesUV
from diffras.textures._mip_sample import lowest_levels
from diffras.textures._sample_numba import level_weights
from diffras.textures._pyramid_numba import level_sizes
from diffras.textures.mipmap import sample_pyramid, sample_texture

D = torch.float64


def _inputs(shapes, rows, P, lod_range, dtype=D, seed=0, C=2):
    g = torch.Generator().manual_seed(seed)
    maps = [torch.rand(h, w, C, generator=g, dtype=dtype) for h, w in shapes]
    idx = torch.randint(0, len(rows), (P,), generator=g)
    uv = torch.rand(P, 2, generator=g, dtype=dtype) * 1.6 - 0.3  # outside [0, 1] too: every padding mode
    lo, hi = lod_range
    lod = torch.rand(P, generator=g, dtype=dtype) * (hi - lo) + lo
    return maps, idx, uv, lod


def _both(maps, rows, idx, uv, lod, mode, align, sampling, seed=1):
    """Values and gradients (maps..., uv) of sample_pyramid, fused and torch, for one random upstream gradient."""
    res = []
    for fused in (True, False):
        leaves = [m.detach().clone().requires_grad_(True) for m in maps]
        u = uv.detach().clone().requires_grad_(True)
        out = sample_pyramid([leaves[r] for r in rows], idx, u, lod, mode, align, sampling, fused=fused)
        up = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed), dtype=out.dtype)
        grads = torch.autograd.grad((out * up).sum(), leaves + [u], allow_unused=True)
        res.append((out.detach(), grads))
    return res


def _close(res, tol):
    (a, ga), (b, gb) = res
    torch.testing.assert_close(a, b, rtol=tol, atol=tol)
    for x, y in zip(ga, gb):
        if y is None:  # "nearest" carries no gradient to uv, on either path
            assert x is None or not x.any()
            continue
        torch.testing.assert_close(x, y, rtol=tol, atol=tol)


@pytest.mark.parametrize("mode,align,sampling", list(itertools.product(
    ["border", "zeros", "wrap", "reflection"], [True, False], ["bilinear", "nearest"])))
def test_matches_torch_float32(mode, align, sampling):
    # Two maps of different sizes, the first shared by two images (TexturesUV.extend); lods from
    # magnification through mid-levels to past the top level (-inf: no neighbour, level 0).
    maps, idx, uv, lod = _inputs([(16, 8), (8, 8)], [0, 1, 0], 300, (-2.0, 6.0), torch.float32)
    lod[::17] = -math.inf
    _close(_both(maps, [0, 1, 0], idx, uv, lod, mode, align, sampling), 1e-5)


@pytest.mark.parametrize("mode", ["border", "zeros", "wrap", "reflection"])
def test_gradcheck_float64(mode):
    maps, idx, uv, lod = _inputs([(16, 8), (8, 8)], [0, 1], 40, (-1.0, 5.0))
    a, b = (m.requires_grad_(True) for m in maps)
    u = uv.requires_grad_(True)
    fn = lambda a, b, u: sample_pyramid([a, b], idx, u, lod, mode, mode != "wrap", "bilinear", fused=True)  # noqa
    assert gradcheck(fn, (a, b, u))
    nearest = lambda a, b: sample_pyramid([a, b], idx, uv.detach(), lod, mode, True, "nearest", fused=True)  # noqa
    assert gradcheck(nearest, (a, b))


@pytest.mark.parametrize("case", ["level0", "top", "mixed", "unread", "odd"])
def test_sparse_levels(case):
    """lowest_levels picks the lowest level a tap reads per map, and values / gradients stay the torch path's
    whatever that level is (levels below it are never stored nor accumulated)."""
    shapes, rows, lod_range = {
        "level0": ([(16, 8)], [0], (-3.0, 0.0)),  # all magnified: level 0 only, no blending
        "top": ([(16, 8), (8, 8)], [0, 1], (9.0, 12.0)),  # past the top level of both maps
        "mixed": ([(16, 16), (8, 4)], [0, 1], (2.2, 3.5)),  # exact 2 x 2 pyramid above level 2
        "unread": ([(16, 8), (8, 8)], [0, 1], (1.0, 2.0)),  # map 1 gets no points below
        "odd": ([(12, 10), (7, 5)], [0, 1], (2.2, 2.9)),  # two adaptive (non 2 x 2) steps below level 2
    }[case]
    maps, idx, uv, lod = _inputs(shapes, rows, 120, lod_range, seed=3)
    if case == "unread":
        idx = torch.zeros_like(idx)
    if case == "mixed":  # map 1 also reads level 0
        lod = torch.where(idx == 1, torch.full_like(lod, -1.0), lod)
    sizes = [level_sizes(h, w) for h, w in shapes]
    nlev = np.array([len(sizes[r]) for r in rows], dtype=np.int64)
    lowest = lowest_levels(level_weights(lod, True, idx, nlev), rows, sizes)
    top = [len(lv) - 1 for lv in sizes]
    expect = {"level0": [0], "top": top, "mixed": [2, 0], "unread": [1, top[-1]], "odd": [2, 2]}[case]
    assert lowest == expect
    for mode in ("border", "wrap"):
        _close(_both(maps, rows, idx, uv, lod, mode, True, "bilinear"), 1e-12)
    a, b = (m.requires_grad_(True) for m in maps) if len(maps) == 2 else (maps[0].requires_grad_(True), None)
    args = (a, b) if b is not None else (a,)
    assert gradcheck(lambda *ms: sample_pyramid([ms[r] for r in rows], idx, uv, lod, "zeros", False, "bilinear",
                                                fused=True), args)


def test_textures_uv_one_padded_map_is_a_view():
    """A one-map padded field hands out a reshape view (its backward is a reshape, not unbind's stack), and the
    map gradient of a mip-mapped TexturesUV sample is the torch path's."""
    from diffras.raster.fragments import Fragments, fused_kernels

    g = torch.Generator().manual_seed(4)
    maps = torch.rand(1, 32, 16, 3, generator=g, requires_grad=True)
    tex = TexturesUV(maps, torch.tensor([[[0, 1, 2]]]), torch.tensor([[[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]]))
    assert tex.maps_list()[0].data_ptr() == maps.data_ptr()
    # A 4 x 4 image of one face whose UV spans the whole map: minified (lod ~ 2-3), trilinear.
    H = W = 4
    ys, xs = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    b0, b1 = (xs.reshape(-1) + 0.5) / (W + 1), (ys.reshape(-1) + 0.5) / (H + 1)
    bary = torch.stack([1 - b0 - b1, b0, b1], 1)[:, None, None, :].reshape(1, H, W, 1, 3)
    frags = Fragments(torch.zeros(1, H, W, 1, dtype=torch.int64), torch.zeros(1, H, W, 1), bary,
                      torch.zeros(1, H, W, 1))
    grads = []
    for fused in (True, False):
        with fused_kernels(fused):
            out = tex.sample_textures_packed(frags)
            grads.append(torch.autograd.grad(out.square().sum(), maps)[0])
    assert grads[0].shape == maps.shape and grads[0].abs().sum() > 0
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("N", [1, 2])
def test_sample_texture_fused_matches_torch(N):
    from diffras.raster.fragments import fused_kernels

    g = torch.Generator().manual_seed(5)
    maps = torch.rand(N, 16, 8, 3, generator=g, dtype=D, requires_grad=True)
    uv = torch.rand(N, 30, 2, generator=g, dtype=D)
    lod = torch.rand(N, 30, generator=g, dtype=D) * 5 - 1
    res = []
    for fused in (True, False):
        with fused_kernels(fused):
            out = sample_texture(maps, uv, lod=lod)
            res.append((out, torch.autograd.grad(out.sin().sum(), maps)[0]))
    torch.testing.assert_close(res[0][0], res[1][0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(res[0][1], res[1][1], rtol=1e-12, atol=1e-12)


def test_backward_split_by_rows_equals_chunked():
    """The table gradient accumulated by row parts (every part reads all points, works only on the levels and
    taps in its rows; any bounds: between levels, inside one, empty or unbalanced parts) equals the per-chunk
    copies' sum; and uv's gradient, summed over the parts, is unchanged."""
    import numpy as np

    from diffras.textures import _sample_numba as sn
    from diffras.textures.mipmap import texel_table

    maps, idx, uv, lod = _inputs([(16, 8), (8, 8)], [0, 1], 500, (-1.0, 5.0))
    table = texel_table(maps, True, fused=True)
    meta = [t.numpy() for t in (table.offset, table.height, table.width, table.num_levels)]
    T, C = table.texels.shape
    level1 = int(table.offset[0, 1])  # a bound between map 0's levels 0 and 1
    g_out = torch.randn(500, C, generator=torch.Generator().manual_seed(6), dtype=D).numpy()
    dummy = np.zeros((1, C))
    res = []
    for by_rows, n_parts, rows in ((False, 3, [0]), (True, 4, [0, 7, 7, 150, T]), (True, 2, [0, 0, T]),
                                   (True, 3, [0, level1, level1 + 5, T])):
        gt = np.zeros((1 if by_rows else n_parts, T, C))
        gu = np.zeros((n_parts if by_rows else 1, 500, 2))
        parts = sn._parts(500, T, n_parts, rows if by_rows else None)
        sn._backward(table.texels.detach().numpy(), dummy, 0, idx.numpy(), uv.numpy(), lod.numpy(), True, *meta,
                     0, True, False, g_out, True, True, parts, gt, gu)
        res.append((gt.sum(0), gu.sum(0)))
    assert np.abs(res[0][0]).sum() > 0 and np.abs(res[0][1]).sum() > 0
    for gt, gu in res[1:]:
        np.testing.assert_allclose(gt, res[0][0], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(gu, res[0][1], rtol=1e-12, atol=1e-12)


def test_row_parts_cut_between_levels_when_balanced():
    """_row_parts puts a bound on a level boundary when that is within a quarter share of balance, else inside
    the level holding the goal (in proportion to its rows)."""
    import numpy as np

    from diffras.textures import _sample_numba as sn

    # One map, three levels of 64, 16 and 4 rows starting at rows 0, 64, 80.
    meta = [torch.tensor([[0, 64, 80]]), torch.tensor([[8, 4, 2]]), torch.tensor([[8, 4, 2]]), torch.tensor([3])]
    between = sn._row_parts(np.array([[4.0, 5.0, 1.0]]), meta, 84, 2)  # goal 5: after level 0 is 4, off by 1
    assert between.tolist() == [0, 64, 84]
    inside = sn._row_parts(np.array([[10.0, 0.0, 0.0]]), meta, 84, 2)  # all weight on level 0: cut it in half
    assert inside.tolist() == [0, 32, 84]
    three = sn._row_parts(np.array([[2.0, 2.0, 2.0]]), meta, 84, 3)
    assert three.tolist() == [0, 64, 80, 84]


@pytest.mark.parametrize("side", [256, 32])
def test_many_points_match_torch_with_either_split(side):
    """Enough points for parallel parts (P >= 8192): on a 256^2 map (T = 87,381 rows >= 2 P) the backward splits
    the table by rows, on a 32^2 map (T = 1,365) by points, with per-part copies. Either way the torch path's
    values and gradients."""
    from diffras.textures import _sample_numba as sn

    P = 8192
    maps, idx, uv, lod = _inputs([(side, side)], [0], P, (-1.0, 4.0), C=3, seed=7)
    T = sum(h * w for h, w in level_sizes(side, side))
    assert (2 * P <= T) == (side == 256) and min(sn._MAX_CHUNKS, P // 4096) > 1
    _close(_both(maps, [0], idx, uv, lod, "border", True, "bilinear"), 1e-10)
