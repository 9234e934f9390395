"""Compositors and PointsRenderer: PyTorch3D's formulas (against per-pixel loops written from its CPU
kernels), background colour, gradcheck in float64, an end-to-end render checked by hand."""
import pytest
import torch

from diffras.cameras import FoVOrthographicCameras
from diffras.points import (
    AlphaCompositor,
    NormWeightedCompositor,
    PointsRasterizationSettings,
    PointsRasterizer,
    PointsRenderer,
    alpha_composite,
    norm_weighted_sum,
    weighted_sum,
)
from diffras.structures import Pointclouds


def _loop(kind, idx, alphas, feats):
    """PyTorch3D's accum_* CPU kernels, pixel by pixel."""
    N, K, H, W = idx.shape
    C = feats.shape[0]
    out = torch.zeros(N, C, H, W, dtype=torch.float64)
    for n in range(N):
        for y in range(H):
            for x in range(W):
                slots = [(int(idx[n, k, y, x]), float(alphas[n, k, y, x])) for k in range(K) if idx[n, k, y, x] >= 0]
                if kind == "alpha":
                    t = 1.0
                    for p, a in slots:
                        out[n, :, y, x] += t * a * feats[:, p]
                        t *= 1 - a
                elif kind == "norm":
                    total = max(sum(a for _, a in slots), 1e-4)
                    for p, a in slots:
                        out[n, :, y, x] += a * feats[:, p] / total
                else:
                    for p, a in slots:
                        out[n, :, y, x] += a * feats[:, p]
    return out


def _inputs(seed=0, N=2, K=3, H=4, W=5, C=3, P=9):
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(-1, P, (N, K, H, W), generator=g)
    idx[0, 1, 0, 0] = -7  # any negative index is an empty slot
    alphas = torch.rand(N, K, H, W, generator=g, dtype=torch.float64)
    alphas[0, 0, 1, 1] = 1.0  # opaque in front: nothing behind shows
    idx[0, 0, 1, 1] = 2
    alphas[1, :, 2, 2] = 0.0  # all weights zero: the norm floor
    feats = torch.rand(C, P, generator=g, dtype=torch.float64)
    return idx, alphas, feats


@pytest.mark.parametrize("kind, fn", [("alpha", alpha_composite), ("norm", norm_weighted_sum), ("sum", weighted_sum)])
def test_blend_matches_loops_and_gradcheck(kind, fn):
    idx, alphas, feats = _inputs()
    out = fn(idx, alphas, feats)
    assert out.shape == (2, 3, 4, 5)
    torch.testing.assert_close(out, _loop(kind, idx, alphas, feats), rtol=0, atol=1e-12)
    a = alphas.clone().requires_grad_()
    f = feats.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda a, f: fn(idx, a, f), (a, f))


def test_alpha_gradient_at_opaque_points():
    # An alpha of exactly 1 zeroes the transmittance behind it; its gradient must still be exact there.
    idx = torch.tensor([0, 1, 2]).view(1, 3, 1, 1)
    alphas = torch.tensor([0.5, 1.0, 0.3], dtype=torch.float64).view(1, 3, 1, 1).requires_grad_()
    feats = torch.tensor([[1.0, 2.0, 4.0]], dtype=torch.float64)
    out = alpha_composite(idx, alphas, feats)
    assert float(out.detach()) == 0.5 * 1 + 0.5 * 1.0 * 2
    out.sum().backward()
    # d/da0 = f0 - a1 f1 - (1 - a1) a2 f2 = 1 - 2; d/da1 = (1 - a0)(f1 - a2 f2); d/da2 = (1 - a0)(1 - a1) f2 = 0
    torch.testing.assert_close(alphas.grad.view(-1), torch.tensor([-1.0, 0.5 * (2 - 0.3 * 4), 0.0],
                                                                  dtype=torch.float64))


@pytest.mark.parametrize("cls", [AlphaCompositor, NormWeightedCompositor])
def test_background_color(cls):
    idx, alphas, feats = _inputs(C=4)
    plain = cls()(idx, alphas, feats)
    empty = idx[:, 0] < 0
    for bg, want in (([0.1, 0.2, 0.3], [0.1, 0.2, 0.3, 1.0]), ([0.1, 0.2, 0.3, 0.4], [0.1, 0.2, 0.3, 0.4]),
                     (0.5, [0.5] * 4)):
        for out in (cls(background_color=bg)(idx, alphas, feats), cls()(idx, alphas, feats, background_color=bg)):
            assert torch.equal(out.permute(0, 2, 3, 1)[empty], torch.tensor(want, dtype=out.dtype).expand(int(empty.sum()), 4))
            assert torch.equal(out.permute(0, 2, 3, 1)[~empty], plain.permute(0, 2, 3, 1)[~empty])
    with pytest.raises(ValueError, match="background_color: expected 4 or 3 values"):
        cls(background_color=[0.1, 0.2])(idx, alphas, feats)


def test_compositor_bad_input():
    idx, alphas, feats = _inputs()
    with pytest.raises(ValueError, match="pointsidx: expected indices in"):
        alpha_composite(idx.clamp(max=8) + 1, alphas, feats)
    with pytest.raises(ValueError, match="alphas"):
        alpha_composite(idx, alphas[:, :2], feats)
    with pytest.raises(TypeError, match="pointsidx: expected an integer"):
        alpha_composite(idx.double(), alphas, feats)
    with pytest.raises(TypeError, match="unexpected keyword"):
        AlphaCompositor()(idx, alphas, feats, gamma=1.0)


def _scene(dtype=torch.float64):
    # Orthographic camera at the origin looking down +Z: NDC x, y = world x, y (unit scale).
    pts = torch.tensor([[0.0, 0.0, 2.0], [0.3, 0.1, 1.0], [-0.5, -0.4, 3.0], [0.1, -0.2, 2.5]], dtype=dtype)
    cols = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [1.0, 1.0, 0]], dtype=dtype)
    return pts, cols


@pytest.mark.parametrize("compositor, kind", [(AlphaCompositor, "alpha"), (NormWeightedCompositor, "norm")])
def test_renderer_end_to_end(compositor, kind):
    pts, cols = _scene()
    cams = FoVOrthographicCameras().to(dtype=torch.float64)
    settings = PointsRasterizationSettings(image_size=(10, 12), radius=0.4, points_per_pixel=3)
    renderer = PointsRenderer(PointsRasterizer(cams, settings), compositor(background_color=(0.2, 0.2, 0.2)))
    pc = Pointclouds([pts], features=[cols])
    img = renderer(pc)
    assert img.shape == (1, 10, 12, 3)
    frags = PointsRasterizer(cams, settings)(pc)
    weights = 1 - frags.dists / 0.16
    want = _loop(kind, frags.idx.permute(0, 3, 1, 2), weights.permute(0, 3, 1, 2), cols.t()).permute(0, 2, 3, 1)
    want[frags.idx[..., 0] < 0] = 0.2
    torch.testing.assert_close(img, want, rtol=0, atol=1e-10)
    # By hand: the pixel nearest point 1 (NDC (0.3, 0.1), nearest, alone there) is mostly green.
    S = 10
    j, i = round((12 - 1 - 0.3 * S) / 2), round((10 - 1 - 0.1 * S) / 2)
    assert img[0, i, j].argmax() == 1
    # Per-call overrides: settings to the rasterizer, background colour to the compositor.
    small = renderer(pc, radius=0.1, background_color=(0.0, 0.0, 0.0))
    assert int((small.sum(-1) > 0).sum()) < int((img.sum(-1) != 0.6).sum())


def test_renderer_gradcheck_points_features_and_per_point_radius():
    pts, cols = _scene()
    cams = FoVOrthographicCameras().to(dtype=torch.float64)
    radius = torch.tensor([[0.35, 0.3, 0.5, 0.25]], dtype=torch.float64)
    settings = PointsRasterizationSettings(image_size=(6, 7), radius=radius, points_per_pixel=4)
    renderer = PointsRenderer(PointsRasterizer(cams, settings), AlphaCompositor())
    frags = renderer.rasterizer(Pointclouds([pts]))
    # Per-point radius: each fragment weighs with its own point's radius.
    r = radius[0][frags.idx.clamp(min=0)]
    pc = Pointclouds([pts], features=[cols])
    want = _loop("alpha", frags.idx.permute(0, 3, 1, 2), (1 - frags.dists / r**2).permute(0, 3, 1, 2), cols.t())
    torch.testing.assert_close(renderer(pc), want.permute(0, 2, 3, 1), rtol=0, atol=1e-12)
    g = torch.Generator().manual_seed(3)
    w = torch.randn(1, 6, 7, 3, generator=g, dtype=torch.float64)

    def f(p, c):
        assert torch.equal(renderer.rasterizer(Pointclouds([p])).idx, frags.idx)
        return (renderer(Pointclouds([p], features=[c])) * w).sum()

    assert torch.autograd.gradcheck(f, (pts.clone().requires_grad_(), cols.clone().requires_grad_()), eps=1e-7,
                                    atol=1e-6)


def test_renderer_image_gradient_matches_finite_differences_of_supersampled_render():
    # A point's disk weight falls to 0 at its edge, so the image is continuous in the point position:
    # the analytic gradient of a loss on a supersampled render matches central differences.
    cams = FoVOrthographicCameras().to(dtype=torch.float64)
    settings = PointsRasterizationSettings(image_size=64, radius=0.3, points_per_pixel=2)
    renderer = PointsRenderer(PointsRasterizer(cams, settings), AlphaCompositor())
    target = torch.zeros(1, 16, 16, 1, dtype=torch.float64)
    target[:, 4:9, 6:12] = 1.0

    def loss(p):
        img = renderer(Pointclouds([p], features=[torch.tensor([[1.0], [0.5]], dtype=torch.float64)]))
        img = torch.nn.functional.avg_pool2d(img.permute(0, 3, 1, 2), 4).permute(0, 2, 3, 1)  # 4 x 4 supersampling
        return ((img - target) ** 2).sum()

    p = torch.tensor([[0.1, 0.2, 1.0], [-0.3, 0.05, 2.0]], dtype=torch.float64, requires_grad=True)
    loss(p).backward()
    h = 1e-3
    for i in range(2):
        for c in range(2):
            e = torch.zeros_like(p)
            e[i, c] = h
            fd = (loss(p.detach() + e) - loss(p.detach() - e)) / (2 * h)
            torch.testing.assert_close(p.grad[i, c], fd, rtol=0.05, atol=0.05)
    assert float(p.grad[:, :2].abs().sum()) > 0.5


def test_renderer_needs_features():
    renderer = PointsRenderer(PointsRasterizer(FoVOrthographicCameras()), AlphaCompositor())
    with pytest.raises(ValueError, match="features"):
        renderer(Pointclouds([torch.rand(3, 3)]))
