"""Ray samplers: rays land on the mesh renderer's pixel centres, lengths are view depths, and the
random samplers draw from where they should."""
import pytest
import torch

from diffras.cameras import FoVOrthographicCameras, FoVPerspectiveCameras, PerspectiveCameras, look_at_view_transform
from diffras.implicit import (
    HeterogeneousRayBundle,
    MonteCarloRaysampler,
    MultinomialRaysampler,
    NDCMultinomialRaysampler,
    RayBundle,
    ray_bundle_to_ray_points,
)
from diffras.raster import pixel_centers_ndc


def _cameras(kind, n=2):
    R, T = look_at_view_transform(dist=torch.tensor([2.5, 3.0][:n]), elev=torch.tensor([10.0, -30.0][:n]),
                                  azim=torch.tensor([20.0, 140.0][:n]))
    R, T = R.double(), T.double()
    if kind == "fov":
        return FoVPerspectiveCameras(R=R, T=T, fov=50.0)
    if kind == "ortho":
        return FoVOrthographicCameras(R=R, T=T, min_x=-1.5, max_x=1.5, min_y=-1.5, max_y=1.5)
    return PerspectiveCameras(R=R, T=T, focal_length=((1.7, 1.9),), principal_point=((0.1, -0.05),))


@pytest.mark.parametrize("kind", ["fov", "ortho", "sfm"])
@pytest.mark.parametrize("hw", [(6, 9), (8, 5)])
def test_grid_rays_hit_pixel_centres_at_their_depths(kind, hw):
    cams = _cameras(kind)
    H, W = hw
    sampler = NDCMultinomialRaysampler(image_width=W, image_height=H, n_pts_per_ray=4, min_depth=0.5, max_depth=3.0)
    bundle = sampler(cams)
    assert isinstance(bundle, RayBundle)
    assert bundle.origins.shape == (2, H, W, 3) and bundle.lengths.shape == (2, H, W, 4) and bundle.xys.shape == (2, H, W, 2)
    pts = ray_bundle_to_ray_points(bundle)  # (2, H, W, 4, 3)
    ndc = cams.transform_points(pts.reshape(2, -1, 3)).reshape(2, H, W, 4, 3)
    centres = pixel_centers_ndc((H, W), dtype=torch.float64)
    assert torch.allclose(ndc[..., :2], centres[None, :, :, None].expand_as(ndc[..., :2]), atol=1e-9)
    view = cams.get_world_to_view_transform().transform_points(pts.reshape(2, -1, 3)).reshape(2, H, W, 4, 3)
    assert torch.allclose(view[..., 2], bundle.lengths, atol=1e-9)
    assert torch.allclose(bundle.lengths[0, 0, 0], torch.linspace(0.5, 3.0, 4, dtype=torch.float64))
    if kind != "ortho":  # perspective rays start at the camera centre
        centre = cams.get_camera_center()[:, None, None]
        assert torch.allclose(bundle.origins, centre.expand_as(bundle.origins), atol=1e-9)


def test_multinomial_custom_grid_and_overrides():
    cams = _cameras("fov", 1)
    s = MultinomialRaysampler(min_x=0.5, max_x=-0.5, min_y=0.25, max_y=-0.25, image_width=3, image_height=2,
                              n_pts_per_ray=5, min_depth=1.0, max_depth=2.0)
    b = s(cams, n_pts_per_ray=2, min_depth=3.0, max_depth=4.0)
    assert torch.allclose(b.xys[0, :, :, 0], torch.tensor([[0.5, 0.0, -0.5]] * 2, dtype=torch.float64))
    assert torch.allclose(b.xys[0, :, 0, 1], torch.tensor([0.25, -0.25], dtype=torch.float64))
    assert torch.allclose(b.lengths[0, 1, 2], torch.tensor([3.0, 4.0], dtype=torch.float64))


def test_unit_directions_and_stratified():
    cams = _cameras("fov")
    s = NDCMultinomialRaysampler(image_width=4, image_height=4, n_pts_per_ray=6, min_depth=1.0, max_depth=2.0,
                                 unit_directions=True, stratified_sampling=True)
    b = s(cams)
    assert torch.allclose(b.directions.norm(dim=-1), torch.ones(2, 4, 4, dtype=torch.float64))
    centres = torch.linspace(1.0, 2.0, 6, dtype=torch.float64)
    mids = 0.5 * (centres[1:] + centres[:-1])
    lo, hi = torch.cat((centres[:1], mids)), torch.cat((mids, centres[-1:]))
    assert bool(((b.lengths >= lo) & (b.lengths <= hi)).all())
    assert not torch.allclose(b.lengths, centres.expand_as(b.lengths))
    assert torch.equal(s(cams, stratified_sampling=False).lengths, centres.expand_as(b.lengths))


def test_ray_subsets_and_mask():
    cams = _cameras("fov")
    s = NDCMultinomialRaysampler(image_width=5, image_height=4, n_pts_per_ray=3, min_depth=1.0, max_depth=2.0)
    full = s(cams).xys
    b = s(cams, n_rays_per_image=7)
    assert b.xys.shape == (2, 7, 1, 2) and b.origins.shape == (2, 7, 1, 3)
    for n in range(2):  # distinct grid points (sampled without replacement)
        d = (b.xys[n, :, 0, None] - full[n].reshape(1, -1, 2)).norm(dim=-1)
        hits = (d < 1e-9).nonzero()[:, 1]
        assert hits.numel() == 7 and hits.unique().numel() == 7
    mask = torch.zeros(2, 4, 5)
    mask[0, 1, 2] = mask[0, 3, 4] = mask[1, 0, 0] = mask[1, 2, 1] = mask[1, 2, 2] = 1.0
    m = s(cams, mask=mask)  # n defaults to the smallest mask's count: 2
    assert m.xys.shape == (2, 2, 1, 2)
    for n in range(2):
        allowed = full[n][mask[n] > 0]
        assert bool(((m.xys[n, :, 0, None] - allowed[None]).norm(dim=-1).min(dim=1).values < 1e-9).all())


def test_heterogeneous_bundle():
    cams = _cameras("fov")
    s = NDCMultinomialRaysampler(image_width=4, image_height=3, n_pts_per_ray=2, min_depth=1.0, max_depth=2.0, n_rays_total=9)
    b = s(cams)
    assert isinstance(b, HeterogeneousRayBundle)
    # (n_rays_total, 1) + the (1, ...) of a ray subset of the grid, as PyTorch3D
    assert b.origins.shape == (9, 1, 1, 3) and b.lengths.shape == (9, 1, 1, 2) and b.xys.shape == (9, 1, 1, 2)
    assert int(b.camera_counts.sum()) == 9
    centres = cams.get_camera_center()[b.camera_ids].repeat_interleave(b.camera_counts, 0)
    assert torch.allclose(b.origins[:, 0, 0], centres)
    mc = MonteCarloRaysampler(-1.0, 1.0, -1.0, 1.0, None, 3, 1.0, 2.0, n_rays_total=5)(cams)
    assert mc.origins.shape == (5, 1, 3) and int(mc.camera_counts.sum()) == 5


def test_monte_carlo_rays():
    cams = _cameras("sfm")
    s = MonteCarloRaysampler(min_x=-0.5, max_x=0.25, min_y=-1.0, max_y=0.0, n_rays_per_image=50, n_pts_per_ray=3,
                             min_depth=1.0, max_depth=2.0)
    b = s(cams)
    assert b.xys.shape == (2, 50, 2) and b.lengths.shape == (2, 50, 3)
    assert bool((b.xys[..., 0] >= -0.5).all() and (b.xys[..., 0] <= 0.25).all())
    assert bool((b.xys[..., 1] >= -1.0).all() and (b.xys[..., 1] <= 0.0).all())
    pts = ray_bundle_to_ray_points(b)
    ndc = cams.transform_points(pts.reshape(2, -1, 3)).reshape(2, 50, 3, 3)
    assert torch.allclose(ndc[..., :2], b.xys[:, :, None].expand(-1, -1, 3, -1), atol=1e-9)


def test_bad_input():
    with pytest.raises(ValueError, match="max_depth"):
        NDCMultinomialRaysampler(image_width=4, image_height=4, n_pts_per_ray=2, min_depth=2.0, max_depth=1.0)
    with pytest.raises(ValueError, match="image_width"):
        NDCMultinomialRaysampler(image_width=0, image_height=4, n_pts_per_ray=2, min_depth=1.0, max_depth=2.0)
    with pytest.raises(ValueError, match="n_rays_per_image"):
        MonteCarloRaysampler(-1.0, 1.0, -1.0, 1.0, None, 3, 1.0, 2.0)
    s = NDCMultinomialRaysampler(image_width=4, image_height=4, n_pts_per_ray=2, min_depth=1.0, max_depth=2.0)
    with pytest.raises(TypeError, match="cameras"):
        s(torch.eye(3))
    with pytest.raises(ValueError, match="mask"):
        s(_cameras("fov"), mask=torch.ones(2, 3, 3))
    with pytest.raises(ValueError, match="n_rays_total"):
        s(_cameras("fov"), n_rays_total=3, n_rays_per_image=2)
