import math

import pytest
import torch

import diffras.nv as dr

from .test_rasterize import CTX, random_scene


def test_interpolate_values_and_derivatives():
    pos, tri = random_scene(N=2, T=3, seed=5)
    attr = torch.randn(2, pos.shape[1], 3, dtype=torch.float64)
    rast, db = dr.rasterize(CTX, pos, tri, (10, 12))
    out, da = dr.interpolate(attr, rast, tri, rast_db=db, diff_attrs=[0, 2])
    assert out.shape == (2, 10, 12, 3) and da.shape == (2, 10, 12, 4)
    for n, i, j in torch.nonzero(rast[..., 3]).tolist():
        t = tri[int(rast[n, i, j, 3]) - 1].long()
        u, v = rast[n, i, j, 0], rast[n, i, j, 1]
        a = attr[n, t]
        assert torch.allclose(out[n, i, j], u * a[0] + v * a[1] + (1 - u - v) * a[2])
        du = db[n, i, j]
        for k, c in enumerate([0, 2]):
            want = [(a[0, c] - a[2, c]) * du[0] + (a[1, c] - a[2, c]) * du[2],
                    (a[0, c] - a[2, c]) * du[1] + (a[1, c] - a[2, c]) * du[3]]
            assert torch.allclose(da[n, i, j, 2 * k:2 * k + 2], torch.stack(want))
    assert (out[rast[..., 3] == 0] == 0).all()
    # Broadcasting (1, V, C) and range-mode (V, C) attributes.
    o1, _ = dr.interpolate(attr[:1], rast, tri)
    o2, _ = dr.interpolate(attr[0], rast, tri)
    assert torch.equal(o1, o2)
    _, empty = dr.interpolate(attr, rast, tri)
    assert empty.shape == (2, 10, 12, 0)


def test_interpolate_gradcheck():
    pos, tri = random_scene(N=1, T=2, seed=11)
    pos.requires_grad_(True)
    attr = torch.randn(1, pos.shape[1], 2, dtype=torch.float64, requires_grad=True)

    def fn(p, a):
        rast, db = dr.rasterize(CTX, p, tri, (6, 7))
        return dr.interpolate(a, rast, tri, rast_db=db, diff_attrs="all")

    assert torch.autograd.gradcheck(fn, (pos, attr), eps=1e-7, atol=1e-5, fast_mode=True)


def bilinear_reference(tex, s, t, mode):
    """One lookup of tex (H, W, C) at (s, t), nvdiffrast's rule, in Python floats."""
    H, W, C = tex.shape
    if mode == "wrap":
        s, t = s - math.floor(s), t - math.floor(t)
    x, y = s * W - 0.5, t * H - 0.5
    if mode == "clamp":
        x, y = min(max(x, 0.0), W - 1.0), min(max(y, 0.0), H - 1.0)
    x0, y0 = math.floor(x), math.floor(y)
    fx, fy = x - x0, y - y0
    acc = [0.0] * C
    for yy, wy in ((y0, 1 - fy), (y0 + 1, fy)):
        for xx, wx in ((x0, 1 - fx), (x0 + 1, fx)):
            if mode == "wrap":
                yy2, xx2 = yy % H, xx % W
            elif mode == "clamp":
                yy2, xx2 = min(max(yy, 0), H - 1), min(max(xx, 0), W - 1)
            else:
                if not (0 <= yy < H and 0 <= xx < W):
                    continue
                yy2, xx2 = yy, xx
            for c in range(C):
                acc[c] += wy * wx * float(tex[yy2, xx2, c])
    return acc


@pytest.mark.parametrize("mode", ["wrap", "clamp", "zero"])
def test_texture_linear_matches_reference(mode):
    tex = torch.rand(1, 5, 7, 2, dtype=torch.float64)
    uv = torch.rand(1, 6, 6, 2, dtype=torch.float64) * 1.6 - 0.3
    out = dr.texture(tex, uv, filter_mode="linear", boundary_mode=mode)
    for i in range(6):
        for j in range(6):
            s, t = uv[0, i, j].tolist()
            assert out[0, i, j].tolist() == pytest.approx(bilinear_reference(tex[0], s, t, mode), abs=1e-12)


def test_texture_nearest_and_row_order():
    tex = torch.arange(12, dtype=torch.float64).reshape(1, 3, 4, 1)
    # Texel (row 0, col 0) covers s, t in [0, 1/4) x [0, 1/3): row 0 is t = 0 (the bottom).
    uv = torch.tensor([[[[0.1, 0.1], [0.9, 0.1], [0.1, 0.9], [0.6, 0.5]]]], dtype=torch.float64)
    out = dr.texture(tex, uv, filter_mode="nearest")
    assert out[0, 0, :, 0].tolist() == [0.0, 3.0, 8.0, 6.0]


def test_mip_levels_and_level_selection():
    tex = torch.rand(1, 8, 8, 3, dtype=torch.float64)
    mip = dr.texture_construct_mip(tex)
    assert [tuple(m.shape) for m in mip.levels] == [(1, 4, 4, 3), (1, 2, 2, 3), (1, 1, 1, 3)]
    assert torch.allclose(mip.levels[0][0, 0, 0], tex[0, :2, :2].mean((0, 1)))
    uv = torch.rand(1, 4, 4, 2, dtype=torch.float64)
    # A footprint of 2 texels per pixel selects level 1 exactly; bias 1 then gives level 2.
    uv_da = torch.tensor([2 / 8, 0, 0, 2 / 8], dtype=torch.float64).expand(1, 4, 4, 4)
    got = dr.texture(tex, uv, uv_da=uv_da, mip=mip)
    want = dr.texture(mip.levels[0], uv, filter_mode="linear")
    assert torch.allclose(got, want)
    got2 = dr.texture(tex, uv, uv_da=uv_da, mip_level_bias=torch.ones(1, 4, 4, dtype=torch.float64))
    assert torch.allclose(got2, dr.texture(mip.levels[1], uv, filter_mode="linear"))
    # Half-way between levels 1 and 2 in linear-mipmap-linear; floor in linear-mipmap-nearest.
    half = torch.full((1, 4, 4), 0.5, dtype=torch.float64)
    mid = dr.texture(tex, uv, uv_da=uv_da, mip_level_bias=half)
    assert torch.allclose(mid, 0.5 * (got + got2))
    near = dr.texture(tex, uv, uv_da=uv_da, mip_level_bias=half, filter_mode="linear-mipmap-nearest")
    assert torch.allclose(near, got)
    with pytest.raises(ValueError, match="max_mip_level"):
        dr.texture_construct_mip(torch.rand(1, 12, 10, 1))
    assert len(dr.texture_construct_mip(torch.rand(1, 12, 10, 1), max_mip_level=1).levels) == 1


def test_texture_gradcheck_all_inputs():
    tex = torch.rand(1, 4, 4, 2, dtype=torch.float64, requires_grad=True)
    uv = (torch.rand(1, 3, 3, 2, dtype=torch.float64) * 0.8 + 0.1).requires_grad_(True)
    uv_da = (torch.rand(1, 3, 3, 4, dtype=torch.float64) * 0.3 + 0.05).requires_grad_(True)
    bias = (torch.rand(1, 3, 3, dtype=torch.float64) * 0.4).requires_grad_(True)
    fn = lambda *a: dr.texture(*a, filter_mode="linear-mipmap-linear", boundary_mode="clamp")  # noqa: E731
    assert torch.autograd.gradcheck(fn, (tex, uv, uv_da, bias), eps=1e-6, atol=1e-5, fast_mode=True)


def test_cube_map_faces_and_seams():
    S = 4
    tex = torch.zeros(1, 6, S, S, 1, dtype=torch.float64)
    for f in range(6):
        tex[0, f] = f
    dirs = torch.tensor([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1.0]], dtype=torch.float64)
    out = dr.texture(tex, dirs.reshape(1, 1, 6, 3), boundary_mode="cube", filter_mode="linear")
    assert out[0, 0, :, 0].tolist() == [0, 1, 2, 3, 4, 5]
    # OpenGL orientation on +X: s grows with -z, t with -y; texel (row, col) = (t S - .5, s S - .5).
    ramp = torch.arange(S * S, dtype=torch.float64).reshape(S, S)
    tex2 = torch.zeros(1, 6, S, S, 1, dtype=torch.float64)
    tex2[0, 0, :, :, 0] = ramp
    d = torch.tensor([[[[1.0, -0.5 + 0.25, -(-0.75 + 0.25)]]]], dtype=torch.float64)  # s = 0.125+.., t = ..
    s, t = 0.5 + 0.5 * -d[0, 0, 0, 2], 0.5 + 0.5 * -d[0, 0, 0, 1]
    got = dr.texture(tex2, d, boundary_mode="cube", filter_mode="nearest")
    assert got.item() == ramp[int(t * S), int(s * S)]
    # Seamless: a smooth function of the direction sampled on both sides of the +X/+Z edge agrees.
    grid = (torch.arange(S, dtype=torch.float64) + 0.5) / S * 2 - 1
    smooth = torch.zeros(1, 6, S, S, 1, dtype=torch.float64)
    from diffras.nv._cube import _face_dirs

    for f in range(6):
        tt, ss = torch.meshgrid((grid + 1) / 2, (grid + 1) / 2, indexing="ij")
        v = _face_dirs(f, ss, tt)
        smooth[0, f, :, :, 0] = (v / v.norm(dim=-1, keepdim=True))[..., 0]  # x of the unit direction
    eps = 1e-4
    a = torch.tensor([1.0, 0.1, 1.0 - eps], dtype=torch.float64)  # +X face, at its edge with +Z
    b = torch.tensor([1.0 - eps, 0.1, 1.0], dtype=torch.float64)  # +Z face, same edge
    va = dr.texture(smooth, a.reshape(1, 1, 1, 3), boundary_mode="cube").item()
    vb = dr.texture(smooth, b.reshape(1, 1, 1, 3), boundary_mode="cube").item()
    assert abs(va - vb) < 1e-3
    zero = dr.texture(smooth, torch.zeros(1, 1, 1, 3, dtype=torch.float64), boundary_mode="cube")
    assert zero.item() == 0.0


def test_cube_gradcheck():
    tex = torch.rand(1, 6, 2, 2, 1, dtype=torch.float64, requires_grad=True)
    v = torch.randn(1, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    vda = (torch.randn(1, 1, 3, 6, dtype=torch.float64) * 0.3).requires_grad_(True)
    fn = lambda t, v, d: dr.texture(t, v, uv_da=d, boundary_mode="cube")  # noqa: E731
    assert torch.autograd.gradcheck(fn, (tex, v, vda), eps=1e-6, atol=1e-5, fast_mode=True)


def test_texture_bad_input():
    tex = torch.rand(1, 4, 4, 3)
    uv = torch.rand(1, 2, 2, 2)
    with pytest.raises(ValueError, match="filter_mode"):
        dr.texture(tex, uv, filter_mode="cubic")
    with pytest.raises(ValueError, match="boundary_mode"):
        dr.texture(tex, uv, boundary_mode="mirror")
    with pytest.raises(ValueError, match="uv"):
        dr.texture(tex, torch.rand(1, 2, 2, 3))
    with pytest.raises(ValueError, match="uv_da"):
        dr.texture(tex, uv, uv_da=torch.rand(1, 2, 2, 2))
    with pytest.raises(ValueError, match="tex"):
        dr.texture(torch.rand(1, 6, 4, 5, 3), torch.rand(1, 2, 2, 3), boundary_mode="cube")
    with pytest.raises(ValueError, match="filter_mode"):
        dr.texture(tex, uv, filter_mode="linear-mipmap-linear")
    with pytest.raises(ValueError, match="diff_attrs"):
        dr.interpolate(torch.rand(3, 2), torch.zeros(1, 2, 2, 4), torch.tensor([[0, 1, 2]]),
                       rast_db=torch.zeros(1, 2, 2, 4), diff_attrs=[5])
