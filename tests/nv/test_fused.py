"""The fused CPU kernels of diffras.nv (rasterize's fill, interpolate, texture with its mip pyramid,
antialias) against the plain-torch path (``fused_kernels(False)``, the reference that other devices run):
same values and the same gradients under random upstream gradients, in float64 (to rounding) and
float32 (to float32 tolerance), plus gradcheck of the fused paths where the existing tests do not already
run them (they do for texture, interpolate and rasterize on CPU float64)."""
import pytest
import torch

import diffras.nv as dr
from diffras.raster.fragments import fused_kernels

from .test_rasterize import CTX, random_scene

TOL = {torch.float64: 1e-9, torch.float32: 2e-4}


def both(fn, inputs, seed=0):
    """Run ``fn(*leaves)`` fused and through torch; return [(outputs, grads)] for both paths."""
    res = []
    for fused in (True, False):
        with fused_kernels(fused):
            leaves = [x.detach().clone().requires_grad_(x.requires_grad) if x is not None else None for x in inputs]
            outs = fn(*leaves)
            outs = outs if isinstance(outs, tuple) else (outs,)
            g = torch.Generator().manual_seed(seed)
            loss = sum((o * torch.randn(o.shape, generator=g, dtype=o.dtype)).sum() for o in outs if o.requires_grad)
            loss.backward()
            res.append(([o.detach() for o in outs], [x.grad if x is not None else None for x in leaves]))
    return res


def assert_same(res, dtype):
    (oa, ga), (ob, gb) = res
    for a, b in zip(oa, ob):
        torch.testing.assert_close(a, b, rtol=TOL[dtype], atol=TOL[dtype])
    for a, b in zip(ga, gb):
        assert (a is None) == (b is None)
        if a is not None:
            scale = max(1.0, float(b.abs().max()))
            torch.testing.assert_close(a / scale, b / scale, rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("filter_mode", ["nearest", "linear", "linear-mipmap-nearest", "linear-mipmap-linear"])
@pytest.mark.parametrize("boundary_mode", ["wrap", "clamp", "zero"])
def test_texture_matches_torch(dtype, filter_mode, boundary_mode):
    g = torch.Generator().manual_seed(1)
    tex = torch.rand(2, 8, 16, 3, generator=g, dtype=dtype, requires_grad=True)
    uv = (torch.rand(2, 5, 6, 2, generator=g, dtype=dtype) * 1.6 - 0.3).requires_grad_(True)
    # Footprints from under a texel (level 0, no level gradient) to several texels; some pixels repeat
    # their neighbour's inputs (the kernel reuses the previous lookup there).
    uv_da = (torch.rand(2, 5, 6, 4, generator=g, dtype=dtype) * 0.4).requires_grad_(True)
    with torch.no_grad():
        uv[:, 1, 2:] = uv[:, 1, 1:2]
        uv_da[:, 1, 2:] = uv_da[:, 1, 1:2]
    mip = filter_mode.startswith("linear-mipmap")
    fn = lambda t, u, d: dr.texture(t, u, d, filter_mode=filter_mode, boundary_mode=boundary_mode)  # noqa: E731
    assert_same(both(fn, [tex, uv, uv_da]), dtype)
    if mip:  # with a bias, and with the texture broadcast over the minibatch
        bias = (torch.rand(2, 5, 6, generator=g, dtype=dtype) * 2 - 0.5).requires_grad_(True)
        fn2 = lambda t, u, d, b: dr.texture(t, u, d, b, filter_mode=filter_mode,  # noqa: E731
                                            boundary_mode=boundary_mode, max_mip_level=2)
        assert_same(both(fn2, [tex[:1], uv, uv_da, bias]), dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_texture_user_mip_and_thin_maps(dtype):
    g = torch.Generator().manual_seed(2)
    uv = torch.rand(1, 4, 5, 2, generator=g, dtype=dtype, requires_grad=True)
    uv_da = (torch.rand(1, 4, 5, 4, generator=g, dtype=dtype) * 2.0).requires_grad_(True)
    # A 2 x 16 map: its levels have sides of 1 (1 x 8, 1 x 4, ...), boxes of 1 x 2 texels.
    thin = torch.rand(1, 2, 16, 2, generator=g, dtype=dtype, requires_grad=True)
    fn = lambda t, u, d: dr.texture(t, u, d, filter_mode="linear-mipmap-linear")  # noqa: E731
    assert_same(both(fn, [thin, uv, uv_da]), dtype)
    # User mip levels (a list of tensors) get their own gradients.
    tex = torch.rand(1, 8, 8, 2, generator=g, dtype=dtype)
    levels = [l.detach().requires_grad_(True) for l in dr.texture_construct_mip(tex).levels]
    fn2 = lambda t, u, d, *m: dr.texture(t, u, d, mip=list(m), filter_mode="linear-mipmap-linear")  # noqa: E731
    assert_same(both(fn2, [tex.requires_grad_(True), uv, uv_da, *levels]), dtype)


def test_texture_fused_gradcheck_user_levels():
    g = torch.Generator().manual_seed(3)
    tex = torch.rand(1, 4, 4, 1, generator=g, dtype=torch.float64, requires_grad=True)
    lv = [torch.rand(1, 2, 2, 1, generator=g, dtype=torch.float64, requires_grad=True),
          torch.rand(1, 1, 1, 1, generator=g, dtype=torch.float64, requires_grad=True)]
    uv = (torch.rand(1, 2, 3, 2, generator=g, dtype=torch.float64) * 0.8 + 0.1).requires_grad_(True)
    da = (torch.rand(1, 2, 3, 4, generator=g, dtype=torch.float64) * 0.5 + 0.2).requires_grad_(True)
    fn = lambda t, u, d, a, b: dr.texture(t, u, d, mip=[a, b], boundary_mode="wrap")  # noqa: E731
    assert torch.autograd.gradcheck(fn, (tex, uv, da, *lv), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("attr_batch", [2, 1, 0])
def test_interpolate_matches_torch(dtype, attr_batch):
    pos, tri = random_scene(N=2, T=6, seed=5, dtype=dtype)
    rast, db = dr.rasterize(CTX, pos, tri, (11, 13))
    V = pos.shape[1]
    g = torch.Generator().manual_seed(6)
    attr = torch.randn(*((attr_batch, V, 3) if attr_batch else (V, 3)), generator=g, dtype=dtype, requires_grad=True)
    r, d = rast.detach().requires_grad_(True), db.detach().requires_grad_(True)
    for diff in (None, [0, 2], "all"):
        fn = lambda a, r_, d_: dr.interpolate(a, r_, tri, rast_db=d_, diff_attrs=diff)  # noqa: E731
        assert_same(both(fn, [attr, r, d]), dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("grad_db", [True, False])
def test_rasterize_fill_matches_torch(dtype, grad_db):
    pos, tri = random_scene(N=3, T=8, seed=7, dtype=dtype)
    fn = lambda p: dr.rasterize(CTX, p, tri, (13, 11), grad_db=grad_db)  # noqa: E731
    res = both(fn, [pos.requires_grad_(True)])
    assert_same(res, dtype)
    assert (res[0][0][0][..., 3] > 0).sum() > 40  # the scene covers pixels
    # Range mode: (V, 4) positions with ranges.
    flat = pos.detach()[0]
    ranges = torch.tensor([[0, 5], [3, 5]], dtype=torch.int32)
    fn2 = lambda p: dr.rasterize(CTX, p, tri, (9, 10), ranges=ranges, grad_db=grad_db)  # noqa: E731
    assert_same(both(fn2, [flat.requires_grad_(True)]), dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_antialias_matches_torch(dtype):
    pos, tri = random_scene(N=2, T=10, seed=9, dtype=dtype)
    rast, _ = dr.rasterize(CTX, pos, tri, (24, 26))
    g = torch.Generator().manual_seed(4)
    color = torch.rand(2, 24, 26, 3, generator=g, dtype=dtype, requires_grad=True)
    fn = lambda c, p: dr.antialias(c, rast, p, tri, pos_gradient_boost=1.5)  # noqa: E731
    res = both(fn, [color, pos.requires_grad_(True)])
    assert_same(res, dtype)
    assert not torch.equal(res[0][0][0], color.detach())  # some edges were blended
    assert res[0][1][1].abs().max() > 0  # and gave position gradients
    # Range mode, on a closed mesh's shared edges (topology hash).
    from diffras.ops import ico_sphere

    m = ico_sphere(1)
    v = m.verts_packed().to(dtype)
    p2 = torch.cat([v[:, :2] * 0.7, v[:, 2:] * 0.5, torch.ones(len(v), 1, dtype=dtype)], 1)
    t2 = m.faces_packed().to(torch.int32)
    ranges = torch.tensor([[0, t2.shape[0]]], dtype=torch.int32)
    r2, _ = dr.rasterize(CTX, p2, t2, (20, 20), ranges=ranges)
    c2 = torch.rand(1, 20, 20, 2, generator=g, dtype=dtype, requires_grad=True)
    topo = dr.antialias_construct_topology_hash(t2)
    fn2 = lambda c, p: dr.antialias(c, r2, p, t2, topology_hash=topo)  # noqa: E731
    assert_same(both(fn2, [c2, p2.requires_grad_(True)]), dtype)
