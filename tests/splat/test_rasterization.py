"""diffras.splat.rasterization against the brute-force reference: images, radii, edge rules."""
import pytest
import torch

from diffras.splat import rasterization

from .reference import reference_rasterization
from .scenes import intrinsics, look_at_viewmat, random_scene

BACKENDS = ["numba", "torch"]


def _compare(scene, backend, atol=1e-9, **kw):
    out, alpha, meta = rasterization(**scene, packed=False, backend=backend, **kw)
    ref, ref_alpha, ref_radii = reference_rasterization(**scene, **kw)
    assert out.shape == ref.shape and alpha.shape == ref_alpha.shape
    assert torch.equal(meta["radii"], ref_radii)
    torch.testing.assert_close(alpha, ref_alpha, atol=atol, rtol=0)
    torch.testing.assert_close(out, ref, atol=atol, rtol=0)
    return out, alpha, meta


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kw", [
    {},
    {"rasterize_mode": "antialiased", "eps2d": 0.5},
    {"render_mode": "RGB+ED", "backgrounds": torch.tensor([[0.2, 0.3, 0.4], [1.0, 0.0, 0.5]], dtype=torch.float64)},
    {"render_mode": "D"},
    {"render_mode": "ED", "backgrounds": torch.ones(2, 3, dtype=torch.float64)},
    {"render_mode": "RGB+D"},
])
def test_matches_reference(backend, kw):
    scene = random_scene(7, seed=1)
    out, alpha, _ = _compare(scene, backend, **kw)
    assert alpha.max() > 0.5  # the scene is seen, not a blank image


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_sh_colours_match_reference(backend, degree):
    scene = random_scene(5, seed=2, sh_degree=degree)
    _compare(scene, backend, sh_degree=degree)


@pytest.mark.parametrize("backend", BACKENDS)
def test_many_layers_hit_the_stopping_threshold(backend):
    """Opaque Gaussians stacked in depth: T falls below 1e-4 and later layers must not be composited."""
    n = 6
    means = torch.tensor([[0.0, 0.0, 0.2 * i] for i in range(n)], dtype=torch.float64)
    scene = dict(means=means, quats=torch.tensor([[1.0, 0, 0, 0]] * n, dtype=torch.float64),
                 scales=torch.full((n, 3), 0.4, dtype=torch.float64),
                 opacities=torch.tensor([0.999, 0.97, 0.95, 0.9, 0.99, 0.9], dtype=torch.float64),
                 colors=torch.eye(3, dtype=torch.float64).repeat(2, 1),
                 viewmats=look_at_viewmat((0.0, 0.0, -3.0))[None], Ks=intrinsics(20, 20, shift=(0.5, 0.5))[None],
                 width=20, height=20)
    out, alpha, _ = _compare(scene, backend)
    # The means project onto the centre of pixel (10, 10): alphas there are the opacities. After the first
    # layer T = 1e-3; the second would leave 3e-5 <= 1e-4, so it is not composited and the pixel ends.
    torch.testing.assert_close(out[0, 10, 10], torch.tensor([0.999, 0.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(alpha[0, 10, 10, 0], torch.tensor(0.999, dtype=torch.float64))
    assert (alpha < 1 - 1e-4).all()  # exclusive stop: T never reaches 1e-4


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", ["classic", "antialiased"])
def test_opacity_near_the_cull_threshold(backend, mode):
    """Opacities just above and below 1/255 (after compensation): culled exactly as gsplat."""
    thr = 1.0 / 255.0
    ops = torch.tensor([thr * 0.999, thr * 1.001, thr * 1.5, thr * 3.0, 0.5], dtype=torch.float64)
    n = len(ops)
    scene = dict(means=torch.tensor([[0.3 * (i - 2), 0.0, 0.0] for i in range(n)], dtype=torch.float64),
                 quats=torch.tensor([[1.0, 0.1, 0, 0]] * n, dtype=torch.float64),
                 scales=torch.full((n, 3), 0.1, dtype=torch.float64), opacities=ops,
                 colors=torch.rand(n, 3, dtype=torch.float64),
                 viewmats=look_at_viewmat((0.0, 0.0, -2.0))[None], Ks=intrinsics(40, 24)[None], width=40, height=24)
    _, _, meta = _compare(scene, backend, rasterize_mode=mode)
    radii = meta["radii"][0]
    assert radii[0].eq(0).all()  # below 1/255: dropped
    if mode == "classic":
        assert radii[1:].gt(0).all()
        assert radii[1, 0] < radii[3, 0] < radii[4, 0]  # opacity-aware footprint, not a flat 3 sigma


@pytest.mark.parametrize("backend", BACKENDS)
def test_big_gaussians_off_screen_and_behind(backend):
    """Big Gaussians centred off screen still cover the image; ones behind the camera or past far are culled;
    one far off-axis exercises the Jacobian clamp."""
    means = torch.tensor([[2.2, 0.0, 0.5], [0.0, -1.9, 1.0], [0.0, 0.0, -4.0], [9.0, 0.5, 1.0], [0.0, 0.0, 60.0]],
                         dtype=torch.float64)
    n = len(means)
    scene = dict(means=means, quats=torch.randn(n, 4, dtype=torch.float64),
                 scales=torch.tensor([[1.0, 0.6, 0.8], [0.9, 0.9, 0.2], [1, 1, 1], [2.5, 0.5, 0.5], [1, 1, 1]], dtype=torch.float64),
                 opacities=torch.full((n,), 0.8, dtype=torch.float64), colors=torch.rand(n, 3, dtype=torch.float64),
                 viewmats=look_at_viewmat((0.0, 0.0, -3.0))[None], Ks=intrinsics(33, 21)[None], width=33, height=21)
    out, alpha, meta = _compare(scene, backend, far_plane=50.0)
    assert meta["radii"][0, 2].eq(0).all() and meta["radii"][0, 4].eq(0).all()
    assert meta["radii"][0, 0].gt(0).all() and meta["radii"][0, 3].gt(0).all()
    assert alpha[0, :, -1].max() > 0.1  # the off-screen Gaussian reaches into the right edge


def test_backends_agree_float32_on_a_busier_scene():
    scene = random_scene(300, n_cameras=2, width=70, height=50, dtype=torch.float32, seed=3, scale=(0.02, 0.15))
    a = rasterization(**scene, backend="numba", render_mode="RGB+ED")
    b = rasterization(**scene, backend="torch", render_mode="RGB+ED")
    torch.testing.assert_close(a[0], b[0], atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(a[1], b[1], atol=2e-5, rtol=1e-4)
    assert a[1].mean() > 0.3


def test_packed_and_unpacked_meta_agree():
    scene = random_scene(12, seed=4)
    p = rasterization(**scene, packed=True)
    u = rasterization(**scene, packed=False)
    assert torch.equal(p[0], u[0])
    mp, mu = p[2], u[2]
    vis = (mu["radii"] > 0).all(-1)
    assert torch.equal(mp["radii"], mu["radii"][vis])
    assert torch.equal(mp["means2d"], mu["means2d"][vis])
    assert torch.equal(mp["camera_ids"] * 12 + mp["gaussian_ids"], torch.nonzero(vis.reshape(-1))[:, 0])
    for m in (mp, mu):
        assert m["n_cameras"] == 2 and m["width"] == 37 and m["height"] == 29 and m["tile_size"] == 16
        assert m["isect_offsets"].shape == (2, 2, 3)
