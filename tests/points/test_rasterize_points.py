"""rasterize_points and PointsRasterizer: PyTorch3D's outputs (values checked by hand and against a
brute-force loop), per-point radii, projection, gradients (gradcheck in float64), bad input."""
import doctest

import pytest
import torch

import diffras.points.rasterize as rp_module
from diffras.cameras import FoVOrthographicCameras, FoVPerspectiveCameras, PerspectiveCameras, look_at_view_transform
from diffras.points import PointFragments, PointsRasterizationSettings, PointsRasterizer, rasterize_points
from diffras.structures import Pointclouds


def _brute_force(points, radius, first, num, H, W, K):
    """PyTorch3D's rasterize_points_python, written again: a loop over pixels and points."""
    N = len(first)
    S = min(H, W)
    idx = torch.full((N, H, W, K), -1, dtype=torch.int64)
    zbuf = torch.full((N, H, W, K), -1.0, dtype=torch.float64)
    dists = torch.full((N, H, W, K), -1.0, dtype=torch.float64)
    for n in range(N):
        for i in range(H):
            yc = (H - 2 * i - 1) / S
            for j in range(W):
                xc = (W - 2 * j - 1) / S
                hits = []
                for p in range(first[n], first[n] + num[n]):
                    x, y, z = (float(v) for v in points[p])
                    d2 = (x - xc) ** 2 + (y - yc) ** 2
                    if z >= 0 and d2 < float(radius[p]) ** 2:
                        hits.append((z, p, d2))
                for k, (z, p, d2) in enumerate(sorted(hits)[:K]):
                    idx[n, i, j, k], zbuf[n, i, j, k], dists[n, i, j, k] = p, z, d2
    return idx, zbuf, dists


def _random_clouds(counts, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    pts = []
    for k in counts:
        xy = torch.rand(k, 2, generator=g, dtype=dtype) * 2.4 - 1.2
        z = torch.rand(k, 1, generator=g, dtype=dtype) * 3 - 0.3
        pts.append(torch.cat([xy, z], 1))
    return pts


@pytest.mark.parametrize("backend", ["numba", "torch", "reference"])
@pytest.mark.parametrize("size", [(9, 9), (7, 11), (12, 5)])
def test_outputs_match_brute_force(backend, size):
    pts = _random_clouds([20, 0, 15])
    pc = Pointclouds(pts)
    g = torch.Generator().manual_seed(1)
    radius = torch.rand(35, generator=g, dtype=torch.float64) * 0.4  # packed per-point radii
    H, W = size
    frags = rasterize_points(pc, image_size=size, radius=radius, points_per_pixel=3, backend=backend)
    assert isinstance(frags, PointFragments)
    want = _brute_force(pc.points_packed(), radius, [0, 20, 20], [20, 0, 15], H, W, 3)
    assert frags.idx.dtype == torch.int64 and torch.equal(frags.idx, want[0])
    torch.testing.assert_close(frags.zbuf, want[1], rtol=0, atol=1e-12)
    torch.testing.assert_close(frags.dists, want[2], rtol=0, atol=1e-12)
    assert int((frags.idx >= 0).sum()) > 20


def test_radius_forms_agree():
    pts = _random_clouds([6, 4], seed=3, dtype=torch.float32)
    pc = Pointclouds(pts)
    base = rasterize_points(pc, image_size=8, radius=0.3, points_per_pixel=2)
    for r in (torch.tensor(0.3), torch.full((2, 6), 0.3), [[0.3] * 6] * 2, torch.full((10,), 0.3)):
        out = rasterize_points(pc, image_size=8, radius=r, points_per_pixel=2)
        assert all(torch.equal(a, b) for a, b in zip(out, base))
    # Padded (N, max P) radii: entries past P_i are ignored; a single cloud takes a (P,) vector.
    padded = torch.rand(2, 6)
    packed = torch.cat([padded[0], padded[1, :4]])
    assert torch.equal(rasterize_points(pc, 8, padded, 2).idx, rasterize_points(pc, 8, packed, 2).idx)
    one = Pointclouds(pts[:1])
    assert torch.equal(rasterize_points(one, 8, padded[0], 2).idx, rasterize_points(pc, 8, padded, 2).idx[:1])
    assert bool((rasterize_points(pc, 8, 0.0, 2).idx == -1).all())  # radius 0 touches nothing


def test_pytorch3d_defaults_and_docstring():
    pc = Pointclouds([torch.tensor([[0.0, 0.0, 1.0]])])
    frags = rasterize_points(pc)  # image_size=256, radius=0.01, points_per_pixel=8
    assert frags.idx.shape == (1, 256, 256, 8)
    # radius 0.01 NDC = 1.28 pixels: the 2 x 2 pixels around the centre (at 1/256 from it) only.
    assert torch.nonzero(frags.idx[0, :, :, 0] == 0).tolist() == [[127, 127], [127, 128], [128, 127], [128, 128]]
    s = PointsRasterizationSettings()
    assert (s.image_size, s.radius, s.points_per_pixel, s.bin_size, s.max_points_per_bin) == ((256, 256), 0.01, 8,
                                                                                                None, None)
    assert doctest.testmod(rp_module, raise_on_error=True).failed == 0


def test_gradcheck_zbuf_dists():
    pts = _random_clouds([7, 5], seed=5)
    pc = Pointclouds(pts)
    idx = rasterize_points(pc, (6, 7), 0.35, 3).idx
    g = torch.Generator().manual_seed(6)
    wz, wd = torch.randn(idx.shape, generator=g, dtype=torch.float64), torch.randn(idx.shape, generator=g,
                                                                                   dtype=torch.float64)

    def f(p):
        out = rasterize_points(Pointclouds([p[:7], p[7:]]), (6, 7), 0.35, 3)
        assert torch.equal(out.idx, idx)  # the perturbation must not change visibility
        return (out.zbuf * wz).sum() + (out.dists * wd).sum()

    p = pc.points_packed().clone().requires_grad_()
    assert torch.autograd.gradcheck(f, (p,), eps=1e-7, atol=1e-6)


def _ndc_view(points, cameras, image_size):
    """World points -> (x_ndc, y_ndc, z_view) through the camera's public transforms."""
    ndc = cameras.transform_points_ndc(points, image_size=image_size)
    view = cameras.get_world_to_view_transform().transform_points(points)
    return torch.cat([ndc[..., :2], view[..., 2:]], -1)


@pytest.mark.parametrize("camera", ["fov", "ortho", "screen"])
def test_rasterizer_projects_then_rasterizes(camera):
    R, T = look_at_view_transform(dist=3.0, elev=torch.tensor([20.0, -10.0]), azim=torch.tensor([30.0, 200.0]))
    if camera == "fov":
        cams = FoVPerspectiveCameras(R=R, T=T, fov=50.0)
    elif camera == "ortho":
        cams = FoVOrthographicCameras(R=R, T=T)
    else:
        cams = PerspectiveCameras(focal_length=30.0, principal_point=((14.0, 9.0),), in_ndc=False, R=R, T=T)
    g = torch.Generator().manual_seed(7)
    pts = [torch.randn(30, 3, generator=g), torch.randn(25, 3, generator=g)]
    feats = [torch.rand(30, 3, generator=g), torch.rand(25, 3, generator=g)]
    pc = Pointclouds(pts, features=feats)
    settings = PointsRasterizationSettings(image_size=(20, 28), radius=0.15, points_per_pixel=4)
    rast = PointsRasterizer(cameras=cams, raster_settings=settings)
    frags = rast(pc)
    proj = _ndc_view(pc.points_padded(), cams, (20, 28))
    want = rasterize_points(Pointclouds([proj[0, :30], proj[1, :25]]), (20, 28), 0.15, 4)
    assert torch.equal(frags.idx, want.idx)
    torch.testing.assert_close(frags.zbuf, want.zbuf)
    torch.testing.assert_close(frags.dists, want.dists)
    assert int((frags.idx[1] >= 30).sum()) == int((frags.idx[1] >= 0).sum()) > 0  # image 1 sees cloud 1
    moved = rast.transform(pc)
    assert torch.equal(moved.features_packed(), pc.features_packed())
    # Per-call overrides, as PyTorch3D.
    assert rast(pc, radius=0.3).idx.ge(0).sum() > frags.idx.ge(0).sum()
    assert rast(pc, cameras=cams[0]).idx.shape == (2, 20, 28, 4)


def test_gradcheck_through_camera():
    g = torch.Generator().manual_seed(8)
    pts = torch.randn(1, 12, 3, generator=g, dtype=torch.float64) * 0.6
    R, T = look_at_view_transform(dist=2.5, elev=15.0, azim=40.0)
    R, T = R.double(), T.double()
    settings = PointsRasterizationSettings(image_size=(7, 8), radius=0.3, points_per_pixel=3)
    idx = PointsRasterizer(FoVPerspectiveCameras(R=R, T=T), settings)(Pointclouds(pts)).idx
    wz, wd = torch.randn(idx.shape, generator=g, dtype=torch.float64), torch.randn(idx.shape, generator=g,
                                                                                   dtype=torch.float64)

    def f(p, t):
        frags = PointsRasterizer(FoVPerspectiveCameras(R=R, T=t), settings)(Pointclouds(p))
        assert torch.equal(frags.idx, idx)
        return (frags.zbuf * wz).sum() + (frags.dists * wd).sum()

    assert torch.autograd.gradcheck(f, (pts.clone().requires_grad_(), T.clone().requires_grad_()), eps=1e-7,
                                    atol=1e-6)


def test_points_behind_and_on_camera_plane():
    cams = FoVPerspectiveCameras()  # at the origin looking down +Z
    pts = torch.tensor([[0.0, 0.0, -1.0], [0.0, 0.0, 0.0], [0.01, 0.0, 0.0], [0.0, 0.0, 2.0]], requires_grad=True)
    frags = PointsRasterizer(cams, PointsRasterizationSettings(image_size=9, radius=0.2, points_per_pixel=4))(
        Pointclouds([pts]))
    assert set(frags.idx.unique().tolist()) <= {-1, 1, 3}  # behind: skipped; on the plane: at the centre
    (frags.dists.clamp(min=0).sum() + frags.zbuf.sum()).backward()
    assert bool(torch.isfinite(pts.grad).all())


def test_bad_input():
    pc = Pointclouds([torch.rand(3, 3)])
    with pytest.raises(TypeError, match="pointclouds: expected a diffras.structures.Pointclouds"):
        rasterize_points(torch.rand(3, 3))
    with pytest.raises(ValueError, match="radius: expected a number, shape"):
        rasterize_points(pc, radius=torch.ones(2, 3))
    with pytest.raises(ValueError, match="radius: expected values >= 0"):
        rasterize_points(pc, radius=-0.1)
    with pytest.raises(TypeError, match="radius"):
        rasterize_points(pc, radius="big")
    with pytest.raises(ValueError, match="points_per_pixel"):
        rasterize_points(pc, points_per_pixel=0)
    with pytest.raises(ValueError, match="radius: expected a number >= 0"):
        PointsRasterizationSettings(radius=-1.0)
    with pytest.raises(ValueError, match="backend"):
        PointsRasterizationSettings(backend="gpu")
    with pytest.raises(ValueError, match="cameras: expected a camera"):
        PointsRasterizer()(pc)
    with pytest.raises(ValueError, match="cameras: expected a batch of 1 or N=1"):
        PointsRasterizer(FoVPerspectiveCameras(R=torch.eye(3).expand(2, 3, 3), T=torch.zeros(2, 3)))(pc)
    with pytest.raises(TypeError, match="unexpected keyword"):
        PointsRasterizer(FoVPerspectiveCameras())(pc, radiu=0.1)
    with pytest.raises(TypeError, match="raster_settings"):
        PointsRasterizer(FoVPerspectiveCameras(), raster_settings=dict(radius=0.1))


def _grid(text):
    return torch.tensor([[float(v) for v in row.split()] for row in text.strip().splitlines()])


def test_pytorch3d_simple_scene_by_hand():
    # The scene of PyTorch3D's own simple rasterize_points test, expectations derived by hand: 5 x 5 pixels
    # with centres at x, y in {0.8, 0.4, 0, -0.4, -0.8} (column 0 at x = +0.8), radius 0.5 (r^2 = 0.25), so a
    # point covers its own pixel (d2 = 0) and its 4 neighbours (d2 = 0.16) but not the diagonals (0.32).
    pts = [torch.tensor([[0.0, 0.0, 0.0], [0.4, 0.0, 0.1], [0.0, 0.4, 0.2], [0.0, 0.0, -0.1]]),
           torch.tensor([[0.0, 0.0, 0.0], [0.4, 0.0, 0.1], [0.0, 0.4, 0.2], [0.0, 0.0, -0.1], [0.0, 0.0, -0.7]])]
    idx, zbuf, dists = rasterize_points(Pointclouds(pts), image_size=5, radius=0.5, points_per_pixel=2)
    want_idx = torch.stack([_grid("""
        -1 -1  2 -1 -1
        -1  1  0  2 -1
         1  0  0  0 -1
        -1  1  0 -1 -1
        -1 -1 -1 -1 -1"""), _grid("""
        -1 -1 -1 -1 -1
        -1  2  2 -1 -1
        -1  1  1 -1 -1
        -1 -1 -1 -1 -1
        -1 -1 -1 -1 -1""")], -1).long()
    z_of = torch.tensor([0.0, 0.1, 0.2])
    want_z = torch.where(want_idx >= 0, z_of[want_idx.clamp(min=0)], torch.tensor(-1.0))
    want_d = torch.stack([_grid("""
        -1   -1   0.16 -1   -1
        -1   0.16 0.16 0.16 -1
        0.16 0.16 0    0.16 -1
        -1   0.16 0.16 -1   -1
        -1   -1   -1   -1   -1"""), _grid("""
        -1 -1   -1   -1 -1
        -1 0.16 0    -1 -1
        -1 0    0.16 -1 -1
        -1 -1   -1   -1 -1
        -1 -1   -1   -1 -1""")], -1)
    for n, offset in ((0, 0), (1, 4)):
        assert torch.equal(idx[n], torch.where(want_idx >= 0, want_idx + offset, want_idx))
        assert torch.equal(zbuf[n], want_z)
        torch.testing.assert_close(dists[n], want_d)
