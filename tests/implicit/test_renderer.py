"""VolumeSampler against a brute-force trilinear loop; renderers against the mesh renderer and
analytic shapes; gradients."""
import math

import pytest
import torch

from diffras.cameras import FoVPerspectiveCameras, look_at_view_transform
from diffras.implicit import (
    AbsorptionOnlyRaymarcher,
    EmissionAbsorptionRaymarcher,
    ImplicitRenderer,
    MonteCarloRaysampler,
    NDCMultinomialRaysampler,
    RayBundle,
    VolumeRenderer,
    VolumeSampler,
    ray_bundle_to_ray_points,
)
from diffras.structures import Volumes


def _trilinear_brute(vol, p_local, align_corners, padding):
    """vol (C, D, H, W); p_local (3,) = (x along W, y along H, z along D) -> (C,)."""
    C, D, H, W = vol.shape
    idx = []
    for coord, size in zip(p_local.tolist(), (W, H, D)):
        u = (coord + 1) / 2 * (size - 1) if align_corners else ((coord + 1) * size - 1) / 2
        if padding == "border":
            u = min(max(u, 0.0), size - 1.0)
        idx.append(u)
    out = torch.zeros(C, dtype=vol.dtype)
    x0, y0, z0 = (math.floor(u) for u in idx)
    for dz in (0, 1):
        for dy in (0, 1):
            for dx in (0, 1):
                xi, yi, zi = x0 + dx, y0 + dy, z0 + dz
                w = (1 - abs(idx[0] - xi)) * (1 - abs(idx[1] - yi)) * (1 - abs(idx[2] - zi))
                if 0 <= xi < W and 0 <= yi < H and 0 <= zi < D:
                    out += w * vol[:, zi, yi, xi]
    return out


@pytest.mark.parametrize("align_corners", [True, False])
@pytest.mark.parametrize("padding", ["zeros", "border"])
def test_volume_sampler_matches_brute_force(align_corners, padding):
    dens = torch.rand(2, 1, 4, 5, 6, dtype=torch.float64)
    feats = torch.rand(2, 3, 4, 5, 6, dtype=torch.float64)
    vs = torch.tensor([[0.3, 0.4, 0.5], [0.2, 0.2, 0.2]], dtype=torch.float64)
    tr = torch.tensor([[0.1, -0.2, 0.05], [0.0, 0.3, -0.1]], dtype=torch.float64)
    vol = Volumes(dens, feats, voxel_size=vs, volume_translation=tr, align_corners=align_corners)
    bundle = RayBundle(origins=torch.randn(2, 3, 3, dtype=torch.float64) * 0.3,
                       directions=torch.randn(2, 3, 3, dtype=torch.float64),
                       lengths=torch.rand(2, 3, 4, dtype=torch.float64), xys=None)
    d, f = VolumeSampler(vol, padding_mode=padding)(bundle)
    assert d.shape == (2, 3, 4, 1) and f.shape == (2, 3, 4, 3)
    pts = ray_bundle_to_ray_points(bundle)
    for n in range(2):
        half = (torch.tensor([6.0, 5.0, 4.0], dtype=torch.float64) - 1) * 0.5 * vs[n]
        for r in range(3):
            for k in range(4):
                local = (pts[n, r, k] + tr[n]) / half
                want = _trilinear_brute(torch.cat((dens[n], feats[n])), local, align_corners, padding)
                assert torch.allclose(torch.cat((d[n, r, k], f[n, r, k])), want, atol=1e-10)


def _cube_volume(n, size=32, half_side=0.5, extent=2.0, dtype=torch.float32):
    """An opaque axis-aligned cube of side 2 * half_side in a grid spanning [-extent/2, extent/2]^3."""
    vs = extent / (size - 1)
    axis = torch.linspace(-extent / 2, extent / 2, size, dtype=dtype)
    inside = (axis.abs() <= half_side)
    dens = (inside[:, None, None] & inside[None, :, None] & inside[None, None, :]).to(dtype)
    return Volumes(densities=dens[None, None].expand(n, 1, -1, -1, -1),
                   features=torch.ones(n, 3, size, size, size, dtype=dtype), voxel_size=vs)


def test_volume_silhouette_matches_mesh_renderer():
    from diffras.raster import MeshRasterizer, RasterSettings
    from diffras.structures import Meshes

    R, T = look_at_view_transform(dist=3.0, elev=torch.tensor([25.0, -40.0]), azim=torch.tensor([30.0, 200.0]))
    cams = FoVPerspectiveCameras(R=R, T=T, fov=45.0)
    H, W = 40, 48
    sampler = NDCMultinomialRaysampler(image_width=W, image_height=H, n_pts_per_ray=300, min_depth=1.0, max_depth=5.0)
    images, bundle = VolumeRenderer(sampler, AbsorptionOnlyRaymarcher())(cameras=cams, volumes=_cube_volume(2, size=65))
    assert images.shape == (2, H, W, 1) and bundle.lengths.shape == (2, H, W, 300)
    # the same cube as a mesh
    v = torch.tensor([[x, y, z] for x in (-.5, .5) for y in (-.5, .5) for z in (-.5, .5)])
    f = torch.tensor([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                      [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])
    frags = MeshRasterizer(cams, RasterSettings(image_size=(H, W)))(Meshes([v], [f]).extend(2))
    mesh_sil = (frags.pix_to_face[..., 0] >= 0)
    vol_sil = images[..., 0] > 0.5
    disagree = (mesh_sil != vol_sil).float().mean()
    assert mesh_sil.float().mean() > 0.1
    assert disagree < 0.02, f"{disagree:.3f} of pixels disagree"


def test_implicit_renderer_sphere_and_kwargs():
    R, T = look_at_view_transform(dist=3.0, azim=torch.tensor([0.0, 90.0]))
    cams = FoVPerspectiveCameras(R=R, T=T, fov=40.0)
    seen = {}

    def sphere(ray_bundle, cameras, radius, **kwargs):
        seen["radius"] = radius
        p = ray_bundle_to_ray_points(ray_bundle)
        dens = torch.sigmoid(-200.0 * (p.norm(dim=-1, keepdim=True) - radius))
        return dens, (p * 0.5 + 0.5).clamp(0, 1)

    H = W = 24
    renderer = ImplicitRenderer(NDCMultinomialRaysampler(image_width=W, image_height=H, n_pts_per_ray=200,
                                                         min_depth=1.5, max_depth=4.5), EmissionAbsorptionRaymarcher())
    images, _ = renderer(cameras=cams, volumetric_function=sphere, radius=0.6)
    assert seen["radius"] == 0.6 and images.shape == (2, H, W, 4)
    # the projected disc: radius in NDC of a sphere of radius r at distance d, fov f
    r_ndc = 0.6 / math.sqrt(3.0**2 - 0.6**2) / math.tan(math.radians(20.0))
    ys, xs = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    ndc_r = torch.sqrt(((W - 2 * xs - 1) / W) ** 2 + ((H - 2 * ys - 1) / H) ** 2)
    inside, outside = ndc_r < r_ndc - 0.1, ndc_r > r_ndc + 0.1
    assert bool((images[:, inside, 3] > 0.99).all()) and bool((images[:, outside, 3] < 0.01).all())
    # colours are the surface points' coordinates: front view (azim 0, camera at +z) sees z > 0
    assert images[0, H // 2, W // 2, 2] > 0.75


def test_volume_renderer_gradcheck():
    torch.manual_seed(1)
    R, T = look_at_view_transform(dist=2.0, azim=torch.tensor([15.0]))
    cams = FoVPerspectiveCameras(R=R.double(), T=T.double(), fov=60.0)
    sampler = MonteCarloRaysampler(-0.8, 0.8, -0.8, 0.8, n_rays_per_image=4, n_pts_per_ray=6, min_depth=1.0, max_depth=3.0)
    dens = (0.2 + 0.6 * torch.rand(1, 1, 3, 3, 3, dtype=torch.float64)).requires_grad_()
    feats = torch.rand(1, 2, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    state = torch.get_rng_state()

    def render(d, f):
        torch.set_rng_state(state)  # the same random rays every call
        return VolumeRenderer(sampler, EmissionAbsorptionRaymarcher())(cameras=cams, volumes=Volumes(d, f, voxel_size=0.5))[0]

    assert torch.autograd.gradcheck(render, (dens, feats))


def test_bad_input():
    vol = _cube_volume(2, size=4)
    with pytest.raises(ValueError, match="ray_bundle: expected 2 batch entries"):
        VolumeSampler(vol)(RayBundle(torch.zeros(3, 4, 3), torch.ones(3, 4, 3), torch.ones(3, 4, 2), None))
    with pytest.raises(ValueError, match="ray_bundle"):
        VolumeSampler(vol)(RayBundle(torch.zeros(2, 4, 3), torch.ones(2, 5, 3), torch.ones(2, 4, 2), None))
    with pytest.raises(TypeError, match="volumes"):
        VolumeSampler(torch.zeros(2, 1, 3, 3, 3))
    with pytest.raises(ValueError, match="sample_mode"):
        VolumeRenderer(lambda **k: None, lambda **k: None, sample_mode="bicubic")
    with pytest.raises(TypeError, match="raysampler"):
        ImplicitRenderer(3, EmissionAbsorptionRaymarcher())
    huge = torch.zeros(2, 1, 1).expand(2, 2**20, 2**11)  # 4G points: refused before any allocation
    with pytest.raises(ValueError, match="GiB"):
        VolumeSampler(vol)(RayBundle(torch.zeros(2, 2**20, 3), torch.ones(2, 2**20, 3), huge, None))
