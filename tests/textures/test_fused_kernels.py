"""The fused CPU kernels of diffras.textures (packed interpolation, texture sampling) against the plain-torch
path they replace: values and gradients in float64 and float32, gradcheck in float64."""
import itertools

import pytest
import torch
from torch.autograd import gradcheck

from diffras.textures.interpolate import interpolate_packed
from diffras.textures.mipmap import sample_points, texel_table

D = torch.float64


def _both(fn, inputs, seed=0):
    """Values and input gradients (for a fixed random upstream gradient) of fn(fused=True/False)."""
    outs = []
    for fused in (True, False):
        leaves = [t.detach().clone().requires_grad_(t.requires_grad) for t in inputs]
        out = fn(*leaves, fused=fused)
        g = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed), dtype=out.dtype)
        grads = torch.autograd.grad((out * g).sum(), [t for t in leaves if t.requires_grad], allow_unused=True)
        outs.append((out.detach(), grads))
    return outs


def test_interpolate_packed_fused_matches_torch_and_gradcheck():
    g = torch.Generator().manual_seed(0)
    F, P, Dd = 7, 40, 5
    face = torch.randint(0, F, (P,), generator=g)
    bary = torch.rand(P, 3, generator=g, dtype=D, requires_grad=True)
    attrs = torch.randn(F, 3, Dd, generator=g, dtype=D, requires_grad=True)
    (a, ga), (b, gb) = _both(lambda bb, aa, fused: interpolate_packed(face, bb, aa, fused=fused), [bary, attrs])
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    for x, y in zip(ga, gb):
        torch.testing.assert_close(x, y, rtol=1e-12, atol=1e-12)
    assert gradcheck(lambda bb, aa: interpolate_packed(face, bb, aa, fused=True), (bary, attrs))
    # float32: same values and gradients up to rounding.
    (a, ga), (b, gb) = _both(lambda bb, aa, fused: interpolate_packed(face, bb, aa, fused=fused),
                             [bary.float(), attrs.float()])
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    for x, y in zip(ga, gb):
        torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-5)


def _sampling_inputs(dtype=D, P=60, seed=1):
    g = torch.Generator().manual_seed(seed)
    # Two maps of different, odd and even sizes (the pyramid pools unevenly for odd sizes).
    maps = [torch.rand(7, 10, 2, generator=g, dtype=dtype), torch.rand(8, 5, 2, generator=g, dtype=dtype)]
    map_idx = torch.randint(0, 2, (P,), generator=g)
    uv = (torch.rand(P, 2, generator=g, dtype=dtype) * 1.6 - 0.3)  # some outside [0, 1]
    lod = torch.rand(P, generator=g, dtype=dtype) * 4.0 - 1.0
    lod[::7] = -float("inf")
    return maps, map_idx, uv, lod


@pytest.mark.parametrize("mode,align,sampling,mip", [
    *[(m, a, "bilinear", True) for m, a in itertools.product(["border", "zeros", "wrap", "reflection"], [True, False])],
    ("border", True, "bilinear", False), ("reflection", False, "nearest", True), ("wrap", True, "nearest", False),
])
def test_sample_points_fused_matches_torch(mode, align, sampling, mip):
    maps, map_idx, uv, lod = _sampling_inputs()
    maps = [m.requires_grad_(True) for m in maps]

    def run(m0, m1, uv_, fused):
        table = texel_table([m0, m1], mip)
        return sample_points(table, map_idx, uv_, lod if mip else None, mode, align, sampling, fused=fused)

    (a, ga), (b, gb) = _both(run, [maps[0], maps[1], uv.requires_grad_(True)])
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    for x, y in zip(ga, gb):
        if x is None or y is None:
            # "nearest" gives no uv gradient on either path (a lookup).
            assert sampling == "nearest" and (x is None or not x.any()) and (y is None or not y.any())
            continue
        torch.testing.assert_close(x, y, rtol=1e-10, atol=1e-10)
    assert a.abs().sum() > 0


def test_sample_points_fused_gradcheck_and_float32():
    maps, map_idx, uv, lod = _sampling_inputs(P=12)
    # Keep UVs away from texel centres of every level (bilinear is not differentiable across them).
    m0, m1 = (m.requires_grad_(True) for m in maps)
    uvr = uv.requires_grad_(True)

    def run(a, b, u):
        return sample_points(texel_table([a, b], True), map_idx, u, lod, "reflection", False, "bilinear", fused=True)

    assert gradcheck(run, (m0, m1, uvr), atol=1e-6)
    maps32, map_idx, uv32, lod32 = _sampling_inputs(dtype=torch.float32)

    def run32(a, b, u, fused):
        return sample_points(texel_table([a, b], True), map_idx, u, lod32, "wrap", True, "bilinear", fused=fused)

    (a, ga), (b, gb) = _both(run32, [maps32[0].requires_grad_(True), maps32[1].requires_grad_(True),
                                     uv32.requires_grad_(True)])
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    for x, y in zip(ga, gb):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-4)


def test_footprint_lod_fused_matches_torch():
    from diffras.textures.mipmap import footprint_lod_packed

    g = torch.Generator().manual_seed(3)
    N, H, W, K = 2, 9, 11, 3
    p2f = torch.randint(-1, 4, (N, H, W, K), generator=g)  # few faces: many same-face neighbours
    p2f[0, 4] = -1  # an empty row
    slot = (p2f.reshape(-1) >= 0).nonzero().squeeze(1)
    face = p2f.reshape(-1)[slot]
    uv = torch.rand(slot.shape[0], 2, generator=g, dtype=D)
    size = torch.tensor([[64.0, 32.0], [16.0, 128.0]], dtype=D)
    a = footprint_lod_packed(uv, slot, face, (N, H, W, K), size, fused=True)
    b = footprint_lod_packed(uv, slot, face, (N, H, W, K), size, fused=False)
    assert torch.equal(torch.isinf(a), torch.isinf(b))
    torch.testing.assert_close(a[torch.isfinite(b)], b[torch.isfinite(b)], rtol=1e-12, atol=1e-12)
    assert torch.isfinite(b).sum() > 0.8 * b.numel()


def test_footprint_neighbour_search_on_sparse_and_dense_slots():
    # Every fragment's neighbours, found by the kernel's per-pixel lookup, against the torch binary search:
    # dense rows (neighbours adjacent) and very sparse slots (neighbours far away or absent).
    from diffras.textures.mipmap import footprint_lod_packed

    g = torch.Generator().manual_seed(5)
    for density in (0.97, 0.08):
        N, H, W, K = 1, 23, 31, 4
        filled = torch.rand(N, H, W, K, generator=g) < density
        p2f = torch.where(filled, torch.randint(0, 3, (N, H, W, K), generator=g), -1)
        slot = (p2f.reshape(-1) >= 0).nonzero().squeeze(1)
        face = p2f.reshape(-1)[slot]
        uv = torch.rand(slot.shape[0], 2, generator=g, dtype=D)
        size = torch.tensor([[50.0, 40.0]], dtype=D)
        a = footprint_lod_packed(uv, slot, face, (N, H, W, K), size, fused=True)
        b = footprint_lod_packed(uv, slot, face, (N, H, W, K), size, fused=False)
        assert torch.equal(torch.isinf(a), torch.isinf(b))
        torch.testing.assert_close(a[torch.isfinite(b)], b[torch.isfinite(b)], rtol=1e-12, atol=1e-12)
