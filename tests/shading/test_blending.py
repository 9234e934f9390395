"""Blending functions against brute-force numpy versions of PyTorch3D's formulas on random fragments."""
import math

import numpy as np
import pytest
import torch

from diffras.raster.fragments import Fragments
from diffras.shading.blending import BlendParams, hard_rgb_blend, sigmoid_alpha_blend, softmax_rgb_blend


def random_fragments(N=2, H=3, W=4, K=3, F=10, dtype=torch.float64, empty_frac=0.4, seed=0, max_fill=None):
    g = torch.Generator().manual_seed(seed)
    p2f = torch.randint(0, F, (N, H, W, K), generator=g)
    # Empty slots come last in each pixel (nearest first), as the rasterizer produces them.
    n_filled = torch.randint(0, (max_fill or K) + 1, (N, H, W, 1), generator=g)
    u = torch.rand(N, H, W, 1, generator=g)
    n_filled[u > empty_frac] = K
    n_filled[u < empty_frac / 3] = 0  # some wholly empty pixels
    filled = torch.arange(K)[None, None, None] < n_filled
    p2f = torch.where(filled, p2f, torch.full_like(p2f, -1))
    zbuf = torch.sort(torch.rand(N, H, W, K, generator=g, dtype=dtype) * 8 + 1.5, dim=-1).values
    dists = (torch.rand(N, H, W, K, generator=g, dtype=dtype) - 0.6) * 4e-4
    bary = torch.rand(N, H, W, K, 3, generator=g, dtype=dtype)
    bary = bary / bary.sum(-1, keepdim=True)
    zbuf = torch.where(filled, zbuf, torch.full_like(zbuf, -1))
    dists = torch.where(filled, dists, torch.full_like(dists, -1))
    bary = torch.where(filled[..., None], bary, torch.full_like(bary, -1))
    colors = torch.rand(N, H, W, K, 3, generator=g, dtype=dtype)
    return Fragments(p2f, zbuf, bary, dists), colors


def sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


def softmax_numpy(colors, frag, sigma, gamma, bg, znear, zfar):
    """PyTorch3D's softmax_rgb_blend, one pixel at a time in float64 Python."""
    p2f, zbuf, dists = frag.pix_to_face.numpy(), frag.zbuf.numpy(), frag.dists.numpy()
    colors = colors.numpy()
    N, H, W, K = p2f.shape
    out = np.zeros((N, H, W, 4))
    eps = 1e-10
    for n in range(N):
        zn = znear[n] if np.ndim(znear) else znear
        zf = zfar[n] if np.ndim(zfar) else zfar
        for y in range(H):
            for x in range(W):
                probs, zinv = [], []
                for k in range(K):
                    m = p2f[n, y, x, k] >= 0
                    probs.append(sigmoid(-dists[n, y, x, k] / sigma) if m else 0.0)
                    zinv.append((zf - zbuf[n, y, x, k]) / (zf - zn) if m else 0.0)
                zmax = max(max(zinv), eps)
                w = [probs[k] * math.exp((zinv[k] - zmax) / gamma) for k in range(K)]
                delta = max(math.exp((eps - zmax) / gamma), eps)
                denom = sum(w) + delta
                rgb = sum(w[k] * colors[n, y, x, k] for k in range(K)) + delta * np.asarray(bg)
                out[n, y, x, :3] = rgb / denom
                out[n, y, x, 3] = 1.0 - np.prod([1.0 - p for p in probs])
    return out


@pytest.mark.parametrize("sigma,gamma", [(1e-4, 1e-4), (3e-4, 0.05), (1e-3, 1.0)])
def test_softmax_matches_bruteforce(sigma, gamma):
    frag, colors = random_fragments()
    bp = BlendParams(sigma=sigma, gamma=gamma, background_color=(0.2, 0.5, 0.9))
    got = softmax_rgb_blend(colors, frag, bp, znear=0.5, zfar=20.0)
    want = softmax_numpy(colors, frag, sigma, gamma, (0.2, 0.5, 0.9), 0.5, 20.0)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-12)


def test_softmax_per_image_planes_and_blendparams_defaults():
    frag, colors = random_fragments(N=2)
    bp = BlendParams(sigma=2e-4, gamma=0.1)
    got = softmax_rgb_blend(colors, frag, bp, znear=torch.tensor([0.5, 1.0], dtype=torch.float64),
                            zfar=torch.tensor([10.0, 30.0], dtype=torch.float64))
    want = softmax_numpy(colors, frag, 2e-4, 0.1, (1, 1, 1), np.array([0.5, 1.0]), np.array([10.0, 30.0]))
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-12)
    # Per-image planes that are all equal (a camera batch's usual planes) take the scalar path: same values,
    # and gradients still reach them when they require grad.
    same = softmax_rgb_blend(colors, frag, bp, znear=torch.tensor([0.5, 0.5], dtype=torch.float64),
                             zfar=torch.tensor([10.0, 10.0], dtype=torch.float64))
    np.testing.assert_allclose(same.numpy(), softmax_numpy(colors, frag, 2e-4, 0.1, (1, 1, 1), 0.5, 10.0),
                               rtol=1e-10, atol=1e-12)
    zf = torch.tensor([10.0, 10.0], dtype=torch.float64, requires_grad=True)
    softmax_rgb_blend(colors, frag, bp, znear=0.5, zfar=zf).sum().backward()
    assert zf.grad is not None and zf.grad.shape == (2,) and bool(zf.grad.ne(0).all())
    # Without planes the BlendParams' znear/zfar are used.
    bp2 = BlendParams(sigma=2e-4, gamma=0.1, znear=2.0, zfar=50.0)
    np.testing.assert_allclose(softmax_rgb_blend(colors, frag, bp2).numpy(),
                               softmax_numpy(colors, frag, 2e-4, 0.1, (1, 1, 1), 2.0, 50.0), rtol=1e-10, atol=1e-12)


def test_softmax_empty_pixels_are_background_with_zero_alpha():
    frag, colors = random_fragments(empty_frac=1.0)
    empty = (frag.pix_to_face < 0).all(-1)
    assert empty.any()
    out = softmax_rgb_blend(colors, frag, BlendParams(background_color=(0.1, 0.2, 0.3)))
    torch.testing.assert_close(out[empty][:, :3], torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64).expand(int(empty.sum()), 3))
    assert (out[empty][:, 3] == 0).all()


def test_softmax_nearest_dominates_when_sharp():
    # Deep inside a face (dists << 0) with tiny gamma the nearest fragment takes all the weight.
    frag, colors = random_fragments(empty_frac=0.0)
    zbuf = 2.0 + torch.arange(3, dtype=torch.float64).expand_as(frag.zbuf)
    frag = Fragments(frag.pix_to_face, zbuf, frag.bary_coords, torch.full_like(frag.dists, -1.0))
    out = softmax_rgb_blend(colors, frag, BlendParams(sigma=1e-4, gamma=1e-6))
    torch.testing.assert_close(out[..., :3], colors[..., 0, :])
    torch.testing.assert_close(out[..., 3], torch.ones_like(out[..., 3]))


def test_sigmoid_alpha_matches_bruteforce():
    frag, colors = random_fragments(K=4, seed=3)
    sigma = 1e-4
    out = sigmoid_alpha_blend(colors, frag, BlendParams(sigma=sigma))
    p2f, d = frag.pix_to_face.numpy(), frag.dists.numpy()
    N, H, W, K = p2f.shape
    for n in range(N):
        for y in range(H):
            for x in range(W):
                a = 1.0
                for k in range(K):
                    if p2f[n, y, x, k] >= 0:
                        a *= 1.0 - sigmoid(-d[n, y, x, k] / sigma)
                assert out[n, y, x, 3].item() == pytest.approx(1.0 - a, rel=1e-12, abs=1e-14)
    torch.testing.assert_close(out[..., :3], colors[..., 0, :])


def test_hard_blend_picks_nearest_and_background():
    frag, colors = random_fragments(seed=5)
    out = hard_rgb_blend(colors, frag, BlendParams(background_color=(0.0, 0.25, 1.0)))
    covered = frag.pix_to_face[..., 0] >= 0
    assert (~covered).any() and covered.any()
    torch.testing.assert_close(out[covered][:, :3], colors[..., 0, :][covered])
    torch.testing.assert_close(out[~covered][:, :3],
                               torch.tensor([0.0, 0.25, 1.0], dtype=torch.float64).expand(int((~covered).sum()), 3))
    assert torch.equal(out[..., 3], covered.to(out.dtype))


def test_hard_blend_channels_and_scalar_background():
    frag, colors = random_fragments(seed=6)
    col1 = colors[..., :1]
    out = hard_rgb_blend(col1, frag, BlendParams(background_color=(0.5,)))
    assert out.shape[-1] == 2
    assert (out[..., 0][frag.pix_to_face[..., 0] < 0] == 0.5).all()


def test_gradcheck_softmax():
    frag, colors = random_fragments(N=1, H=2, W=2, K=3, empty_frac=0.3, seed=1)
    bg = torch.tensor([0.3, 0.6, 0.1], dtype=torch.float64, requires_grad=True)
    colors.requires_grad_(True)
    dists = (frag.dists / 1e-4 * 0.1).detach().requires_grad_(True)  # O(1) in units of sigma=0.1
    zbuf = frag.zbuf.detach().requires_grad_(True)

    zn = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    zf = torch.tensor([12.0], dtype=torch.float64, requires_grad=True)

    def f(c, d, z, b, zn, zf):
        fr = Fragments(frag.pix_to_face, z, frag.bary_coords, d)
        return softmax_rgb_blend(c, fr, BlendParams(sigma=0.1, gamma=0.5, background_color=b), znear=zn, zfar=zf)

    assert torch.autograd.gradcheck(f, (colors, dists, zbuf, bg, zn, zf))


def test_gradcheck_sigmoid_alpha():
    frag, colors = random_fragments(N=1, H=2, W=3, K=3, seed=2)
    dists = (frag.dists / 1e-4 * 0.1).detach().requires_grad_(True)

    def f(d):
        return sigmoid_alpha_blend(colors, Fragments(frag.pix_to_face, frag.zbuf, frag.bary_coords, d),
                                   BlendParams(sigma=0.1))

    assert torch.autograd.gradcheck(f, (dists,))


def test_gradients_finite_with_default_sharp_params():
    frag, colors = random_fragments(seed=4)
    colors.requires_grad_(True)
    d = frag.dists.clone().requires_grad_(True)
    z = frag.zbuf.clone().requires_grad_(True)
    out = softmax_rgb_blend(colors, Fragments(frag.pix_to_face, z, frag.bary_coords, d), BlendParams())
    out.sum().backward()
    for t in (colors, d, z):
        assert torch.isfinite(t.grad).all()


def test_float32_and_dtype_follow_colors():
    frag, colors = random_fragments(dtype=torch.float32)
    for fn in (hard_rgb_blend, sigmoid_alpha_blend, softmax_rgb_blend):
        out = fn(colors.float(), frag, BlendParams())
        assert out.dtype == torch.float32 and out.shape == (2, 3, 4, 4)


# ---- bad input ---------------------------------------------------------------------------------
def test_blend_params_validation():
    with pytest.raises(ValueError, match="sigma"):
        BlendParams(sigma=0.0)
    with pytest.raises(ValueError, match="gamma"):
        BlendParams(gamma=-1.0)
    with pytest.raises(ValueError, match="sigma: expected a finite"):
        BlendParams(sigma=float("nan"))
    with pytest.raises(ValueError, match="znear, zfar"):
        BlendParams(znear=5.0, zfar=1.0)
    with pytest.raises(ValueError, match="background_color"):
        BlendParams(background_color=(1.0, float("inf"), 0.0))
    with pytest.raises(ValueError, match="background_color"):
        BlendParams(background_color=torch.tensor([0.0, float("nan"), 0.0]))
    with pytest.raises(TypeError, match="background_color"):
        BlendParams(background_color="white")


def test_blend_shape_errors():
    frag, colors = random_fragments()
    with pytest.raises(ValueError, match="colors"):
        hard_rgb_blend(colors[:, :, :2], frag)
    with pytest.raises(ValueError, match="colors"):
        softmax_rgb_blend(colors[..., 0, :], frag)
    with pytest.raises(TypeError, match="colors"):
        sigmoid_alpha_blend(colors.long(), frag)
    with pytest.raises(TypeError, match="fragments"):
        hard_rgb_blend(colors, tuple(frag))
    with pytest.raises(TypeError, match="blend_params"):
        hard_rgb_blend(colors, frag, {"sigma": 1.0})
    with pytest.raises(ValueError, match="background_color: expected 3 values"):
        hard_rgb_blend(colors, frag, BlendParams(background_color=(1.0, 1.0)))
    with pytest.raises(ValueError, match="znear"):
        softmax_rgb_blend(colors, frag, BlendParams(), znear=torch.ones(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="zfar"):
        softmax_rgb_blend(colors, frag, BlendParams(), zfar=float("inf"))


from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), sigma=st.floats(1e-5, 1e-1), gamma=st.floats(1e-5, 1.0),
       empty=st.floats(0.0, 1.0))
def test_softmax_is_convex_combination_of_colors_and_background(seed, sigma, gamma, empty):
    frag, colors = random_fragments(N=1, H=3, W=3, K=4, seed=seed, empty_frac=empty)
    bg = torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64)
    out = softmax_rgb_blend(colors, frag, BlendParams(sigma=sigma, gamma=gamma, background_color=tuple(bg.tolist())))
    assert torch.isfinite(out).all()
    alpha = out[..., 3]
    assert ((alpha >= 0) & (alpha <= 1)).all()
    # each channel lies between the smallest and largest of the filled colours and the background
    filled = (frag.pix_to_face >= 0)[..., None]
    lo = torch.minimum(torch.where(filled, colors, torch.inf).amin(-2), bg)
    hi = torch.maximum(torch.where(filled, colors, -torch.inf).amax(-2), bg)
    assert ((out[..., :3] >= lo - 1e-12) & (out[..., :3] <= hi + 1e-12)).all()
    # the silhouette alpha of sigmoid_alpha_blend is the same as softmax's
    torch.testing.assert_close(sigmoid_alpha_blend(colors, frag, BlendParams(sigma=sigma))[..., 3], alpha)


# ---- packed blending: fused CPU kernels and the packed torch path against the dense formulas -------------
import diffras.shading.blending as blending_mod  # noqa: E402
from diffras.shading.blending import blend_packed  # noqa: E402


def dense_reference(rule, colors, frag, bp, znear=None, zfar=None):
    """The dense (N, H, W, K, C) torch formulas (PyTorch3D's), differentiated by autograd: the reference."""
    mask = frag.pix_to_face >= 0
    bg = bp.background_color
    bg = bg.to(colors.dtype) if isinstance(bg, torch.Tensor) else torch.tensor(bg, dtype=colors.dtype)
    bg = bg.expand(colors.shape[-1])
    if rule == "hard":
        covered = mask[..., :1]
        return torch.cat([torch.where(covered, colors[..., 0, :], bg), covered.to(colors.dtype)], -1)
    prob = torch.where(mask, torch.sigmoid(-frag.dists / bp.sigma), 0.0)
    alpha = 1.0 - torch.prod(1.0 - prob, dim=-1)
    if rule == "sigmoid":
        return torch.cat([torch.where(mask[..., :1], colors[..., 0, :], 0.0), alpha[..., None]], -1)
    zn = bp.znear if znear is None else znear
    zf = bp.zfar if zfar is None else zfar
    if isinstance(zn, torch.Tensor) and zn.dim():
        zn, zf = zn[:, None, None, None], zf[:, None, None, None]
    z_inv = torch.where(mask, (zf - frag.zbuf) / (zf - zn), 0.0)
    z_max = torch.max(z_inv, dim=-1, keepdim=True).values.clamp(min=1e-10)
    w = prob * torch.exp((z_inv - z_max) / bp.gamma)
    delta = torch.exp((1e-10 - z_max) / bp.gamma).clamp(min=1e-10)
    rgb = ((w[..., None] * colors).sum(-2) + delta * bg) / (w.sum(-1, keepdim=True) + delta)
    return torch.cat([rgb, alpha[..., None]], -1)


def packed(frag, colors):
    slots = (frag.pix_to_face.reshape(-1) >= 0).nonzero()[:, 0]
    return (slots, colors.reshape(-1, colors.shape[-1])[slots], frag.zbuf.reshape(-1)[slots],
            frag.dists.reshape(-1)[slots])


@pytest.fixture(params=["fused", "torch"])
def path(request, monkeypatch):
    monkeypatch.setattr(blending_mod, "_FUSED_CPU", request.param == "fused")
    return request.param


SCENES = {  # name: random_fragments kwargs
    "K3": dict(N=2, H=5, W=6, K=3, seed=11),
    "K1": dict(N=2, H=5, W=4, K=1, seed=12),
    "K50_sparse": dict(N=1, H=6, W=5, K=50, seed=13, empty_frac=1.0, max_fill=6),
    "all_empty": dict(N=1, H=2, W=3, K=4, seed=14, empty_frac=1.0, max_fill=0),
}


@pytest.mark.parametrize("scene", list(SCENES))
@pytest.mark.parametrize("rule", ["hard", "sigmoid", "softmax"])
def test_packed_matches_dense_values_and_grads_float32(path, rule, scene):
    frag, colors = random_fragments(dtype=torch.float32, **SCENES[scene])
    N = frag.pix_to_face.shape[0]
    # dists within a few sigma so that every term has a gradient; a far plane some fragments pass.
    sigma, gamma = 1e-2, 0.3
    dists = (frag.dists * 1e2 * sigma).requires_grad_(True)
    zbuf = frag.zbuf.clone().requires_grad_(True)
    colors.requires_grad_(True)
    bg = torch.tensor([0.2, 0.4, 0.9], requires_grad=True)
    zn = (torch.rand(N) + 0.5).requires_grad_(True)
    zf = (torch.rand(N) * 4 + 6.0).requires_grad_(True)
    bp = BlendParams(sigma=sigma, gamma=gamma, background_color=bg)
    fr = Fragments(frag.pix_to_face, zbuf, frag.bary_coords, dists)
    ref = dense_reference(rule, colors, fr, bp, zn, zf)
    slots, c, z, d = packed(fr, colors)
    got = blend_packed(rule, c, slots, z, d, tuple(frag.pix_to_face.shape), bp, znear=zn, zfar=zf)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-6)
    gout = torch.randn(ref.shape, generator=torch.Generator().manual_seed(0))
    inputs = (colors, dists, zbuf, bg, zn, zf)
    g_ref = torch.autograd.grad(ref, inputs, gout, allow_unused=True)
    g_got = torch.autograd.grad(got, inputs, gout, allow_unused=True)
    for name, x, a, b in zip(("colors", "dists", "zbuf", "bg", "znear", "zfar"), inputs, g_got, g_ref):
        # An input a rule does not read gets None or zeros on either side.
        a = torch.zeros_like(x) if a is None else a
        b = torch.zeros_like(x) if b is None else b
        torch.testing.assert_close(a, b, rtol=2e-4, atol=2e-4 * float(b.abs().max()) + 1e-6, msg=name)


@pytest.mark.parametrize("rule", ["hard", "sigmoid", "softmax"])
def test_packed_gradcheck_float64(path, rule):
    frag, colors = random_fragments(N=2, H=2, W=3, K=3, empty_frac=0.3, seed=21)
    slots, c, z, d = packed(frag, colors)
    d = (d / 1e-4 * 0.1).detach().requires_grad_(True)  # O(1) in units of sigma = 0.1
    c = c.detach().requires_grad_(True)
    z = z.detach().requires_grad_(True)
    bg = torch.tensor([0.3, 0.6, 0.1], dtype=torch.float64, requires_grad=True)
    zn = torch.tensor([1.0, 0.7], dtype=torch.float64, requires_grad=True)
    zf = torch.tensor([12.0, 9.0], dtype=torch.float64, requires_grad=True)
    # gamma = 0.03 clamps the background weight in the pixels whose nearest z_inv exceeds ~0.69, not in the
    # others: both branches of its gradient are checked.
    reads = {"hard": (0, 3), "sigmoid": (0, 1), "softmax": (0, 1, 2, 3, 4, 5)}[rule]

    def f(*args):
        c, d, z, bg, zn, zf = [args[reads.index(i)] if i in reads else x for i, x in enumerate(full)]
        bp = BlendParams(sigma=0.1, gamma=0.03, background_color=bg)
        return blend_packed(rule, c, slots, z, d, (2, 2, 3, 3), bp, znear=zn, zfar=zf)

    full = (c, d, z, bg, zn, zf)
    assert torch.autograd.gradcheck(f, tuple(full[i] for i in reads))


def test_packed_saturated_coverage_gradient(path):
    # prob == 1 exactly (deep inside a face in float32): 1 - prob == 0 in the alpha product; the gradient of
    # alpha w.r.t. that fragment's neighbours is then 0, and w.r.t. the saturated one the product of the others.
    frag, colors = random_fragments(N=1, H=1, W=2, K=3, empty_frac=0.0, seed=3, dtype=torch.float32)
    d = torch.tensor([-1.0, -0.5, 2e-4, -1.0, 0.5, 1.0]).reshape(1, 1, 2, 3).requires_grad_(True)
    fr = Fragments(frag.pix_to_face, frag.zbuf, frag.bary_coords, d)
    bp = BlendParams(sigma=1e-4)
    ref = dense_reference("sigmoid", colors, fr, bp)[..., 3].sum()
    slots, c, z, dd = packed(fr, colors)
    got = blend_packed("sigmoid", c, slots, z, dd, (1, 1, 2, 3), bp)[..., 3].sum()
    torch.testing.assert_close(got, ref)
    torch.testing.assert_close(torch.autograd.grad(got, d)[0], torch.autograd.grad(ref, d)[0])


def test_dense_functions_ignore_empty_slot_values():
    # Garbage (NaN) in empty slots must not reach the blended image or the gradients.
    frag, colors = random_fragments(seed=8)
    empty = frag.pix_to_face < 0
    colors = colors.masked_fill(empty[..., None], float("nan")).requires_grad_(True)
    d = frag.dists.masked_fill(empty, float("nan")).requires_grad_(True)
    z = frag.zbuf.masked_fill(empty, float("nan"))
    out = softmax_rgb_blend(colors, Fragments(frag.pix_to_face, z, frag.bary_coords, d), BlendParams(gamma=0.1))
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert torch.isfinite(d.grad).all() and (d.grad[empty] == 0).all() and (colors.grad[empty] == 0).all()


def test_blend_packed_bad_input(path):
    frag, colors = random_fragments()
    slots, c, z, d = packed(frag, colors)
    shape = tuple(frag.pix_to_face.shape)
    with pytest.raises(ValueError, match="rule"):
        blend_packed("soft", c, slots, z, d, shape)
    repeat = slots.clone()
    repeat[3] = repeat[2]
    for bad in (slots.flip(0), repeat):
        with pytest.raises(ValueError, match="slots: expected strictly increasing"):
            blend_packed("softmax", c, bad, z, d, shape)
    for bad in (slots + 72, slots - 1 - slots[0]):  # past the end; one below 0
        with pytest.raises(ValueError, match=r"slots: expected indices in \[0, 72\)"):
            blend_packed("softmax", c, bad, z, d, shape, znear=torch.ones(shape[0]))
    with pytest.raises(TypeError, match="slots"):
        blend_packed("softmax", c, slots.double(), z, d, shape)
    with pytest.raises(ValueError, match="zbuf"):
        blend_packed("softmax", c, slots, z[:-1], d, shape)
    with pytest.raises(TypeError, match="dists"):
        blend_packed("sigmoid", c, slots, None, None, shape)
    with pytest.raises(ValueError, match="shape"):
        blend_packed("hard", c, slots, None, None, shape[:3])
    with pytest.raises(ValueError, match=r"shape\[3\]"):
        blend_packed("hard", c, slots, None, None, shape[:3] + (0,))
    with pytest.raises(ValueError, match="shape: expected an output of at most"):
        blend_packed("hard", c, slots, None, None, (10**5, 16384, 16384, 1))
    with pytest.raises(ValueError, match="znear"):
        blend_packed("softmax", c, slots, z, d, shape, znear=torch.ones(3, dtype=torch.float64))
    with pytest.raises(TypeError, match="blend_params"):
        blend_packed("hard", c, slots, None, None, shape, blend_params={})


@pytest.mark.parametrize("rule", ["hard", "sigmoid", "softmax"])
def test_packed_backward_reads_expanded_gradient(rule):
    """``images.sum().backward()`` sends a stride-0 gradient that the fused backward reads in place: the same
    gradients as the materialised all-ones gradient."""
    frag, colors = random_fragments(N=2, H=3, W=4, K=3, empty_frac=0.3, seed=5)
    slots, c, z, d = packed(frag, colors)
    c, z, d = (t.detach().requires_grad_(True) for t in (c, z, d))
    bg = torch.tensor([0.3, 0.6, 0.1], dtype=torch.float64, requires_grad=True)
    bp = BlendParams(sigma=0.1, gamma=0.5, background_color=bg)
    shape = tuple(frag.pix_to_face.shape)
    ins = [c, d] + ([z] if rule == "softmax" else []) + ([bg] if rule != "sigmoid" else [])
    out = blend_packed(rule, c, slots, z if rule == "softmax" else None, d if rule != "hard" else None, shape, bp)
    g_expanded = torch.autograd.grad(out.sum(), ins, retain_graph=True, allow_unused=True)
    g_dense = torch.autograd.grad(out, ins, torch.ones_like(out).contiguous(), allow_unused=True)
    for a, b in zip(g_expanded, g_dense):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, rtol=0, atol=0)
