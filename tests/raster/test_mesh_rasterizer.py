"""rasterize_meshes / MeshRasterizer / RasterSettings with Meshes and cameras."""
import math

import pytest
import torch

from diffras.cameras import FoVOrthographicCameras, FoVPerspectiveCameras, PerspectiveCameras, look_at_view_transform
from diffras.ops.ico_sphere import ico_sphere
from diffras.raster import MeshRasterizer, RasterSettings, rasterize, rasterize_meshes
from diffras.structures import Meshes


def _camera(n=1, dist=2.7, **kw):
    R, T = look_at_view_transform(dist, 0.0, torch.linspace(0, 90, n))
    return FoVPerspectiveCameras(R=R, T=T, fov=60.0, **kw)


def test_sphere_silhouette_area_and_depth_closed_form():
    H = 64
    frags = rasterize_meshes(ico_sphere(4), _camera(), RasterSettings(H, faces_per_pixel=1))
    count = int((frags.pix_to_face[..., 0] >= 0).sum())
    # The unit sphere at distance d subtends asin(1/d); its silhouette radius in NDC is
    # tan(asin(1/d)) / tan(fov/2).
    r_ndc = math.tan(math.asin(1 / 2.7)) / math.tan(math.radians(30))
    expected = math.pi * (r_ndc * H / 2) ** 2
    assert abs(count - expected) / expected < 0.03
    # Nearest point of the sphere is at depth d - 1 (slightly more on the polyhedron).
    zmin = frags.zbuf[frags.pix_to_face >= 0].min().item()
    assert 1.7 <= zmin < 1.71


def test_perspective_correct_default_follows_camera_and_orthographic_is_affine():
    sphere = ico_sphere(2)
    cam = FoVOrthographicCameras(R=_camera().R, T=_camera().T)
    frags = rasterize_meshes(sphere, cam, RasterSettings(16))
    ref = rasterize_meshes(sphere, cam, RasterSettings(16, perspective_correct=False))
    for a, b in zip(frags, ref):
        torch.testing.assert_close(a, b)
    p1 = rasterize_meshes(sphere, _camera(), RasterSettings(16))
    p2 = rasterize_meshes(sphere, _camera(), RasterSettings(16, perspective_correct=True))
    for a, b in zip(p1, p2):
        torch.testing.assert_close(a, b)


def test_heterogeneous_batch_matches_each_mesh_alone_and_camera_broadcast():
    a, b = ico_sphere(1), ico_sphere(2)
    b = b.scale_verts(0.8)
    both = Meshes([a.verts_packed(), b.verts_packed()], [a.faces_packed(), b.faces_packed()])
    settings = RasterSettings((12, 10), faces_per_pixel=3, blur_radius=1e-3)
    cams = _camera(2)
    frags = rasterize_meshes(both, cams, settings)
    fa = rasterize_meshes(a, cams[0], settings)
    fb = rasterize_meshes(b, cams[1], settings)
    Fa = a.faces_packed().shape[0]
    torch.testing.assert_close(frags.pix_to_face[0:1], fa.pix_to_face)
    torch.testing.assert_close(frags.pix_to_face[1:2], torch.where(fb.pix_to_face >= 0, fb.pix_to_face + Fa, -1))
    for x, y, z in zip(list(frags)[1:], list(fa)[1:], list(fb)[1:]):
        torch.testing.assert_close(x, torch.cat([y, z]))
    # One camera broadcasts over the batch.
    one = rasterize_meshes(both, cams[0], settings)
    torch.testing.assert_close(one.pix_to_face[0], frags.pix_to_face[0])


def test_empty_mesh_in_batch_and_all_empty():
    a = ico_sphere(1)
    empty_v, empty_f = torch.zeros(0, 3), torch.zeros(0, 3, dtype=torch.int64)
    m = Meshes([a.verts_packed(), empty_v], [a.faces_packed(), empty_f])
    frags = rasterize_meshes(m, _camera(), RasterSettings(8, faces_per_pixel=2))
    assert frags.pix_to_face.shape == (2, 8, 8, 2)
    assert (frags.pix_to_face[1] == -1).all() and (frags.pix_to_face[0] >= 0).any()
    m = Meshes([empty_v], [empty_f])
    frags = rasterize_meshes(m, _camera(), RasterSettings(8))
    assert (frags.pix_to_face == -1).all() and (frags.zbuf == -1).all()


def test_cull_backfaces_leaves_one_layer_of_a_closed_sphere():
    settings = RasterSettings(16, faces_per_pixel=2)
    frags = rasterize_meshes(ico_sphere(2), _camera(), settings)
    culled = rasterize_meshes(ico_sphere(2), _camera(), RasterSettings(16, faces_per_pixel=2, cull_backfaces=True))
    assert (frags.pix_to_face[0, 8, 8] >= 0).all()
    assert (culled.pix_to_face[..., 1] == -1).all()
    torch.testing.assert_close(culled.pix_to_face[..., 0], frags.pix_to_face[..., 0])


def test_mesh_through_the_camera_is_clipped_by_default_and_stays_finite():
    sphere = ico_sphere(3)
    verts = sphere.verts_packed().clone().requires_grad_(True)
    m = Meshes([verts], [sphere.faces_packed()])
    R, T = look_at_view_transform(0.9, 0.0, 0.0)
    cam = FoVPerspectiveCameras(R=R, T=T, znear=0.1)
    frags = rasterize_meshes(m, cam, RasterSettings(24, faces_per_pixel=2, blur_radius=1e-3))
    assert (frags.pix_to_face >= 0).sum() > 100
    hit = frags.pix_to_face >= 0
    assert (frags.zbuf[hit] >= 0.05 - 1e-6).all()
    loss = frags.zbuf.sum() + frags.bary_coords.sum() + frags.dists.sum()
    loss.backward()
    assert torch.isfinite(verts.grad).all()
    # Without a znear (PerspectiveCameras) nothing is clipped: faces crossing z = 0 are dropped.
    cam2 = PerspectiveCameras(focal_length=1.7, R=R, T=T)
    frags2 = rasterize_meshes(m, cam2, RasterSettings(24))
    view_z = cam2.get_world_to_view_transform().transform_points(verts.detach())[..., 2]
    crossing = (view_z[sphere.faces_packed()] < 1e-8).any(1)
    used = frags2.pix_to_face[frags2.pix_to_face >= 0].unique()
    assert crossing.any() and not crossing[used].any()


def test_mesh_rasterizer_module_and_overrides():
    sphere = ico_sphere(2)
    settings = RasterSettings(16, faces_per_pixel=1)
    rast = MeshRasterizer(_camera(), settings)
    a = rast(sphere)
    b = rasterize_meshes(sphere, _camera(), settings)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y)
    far = _camera(dist=5.0)
    c = rast(sphere, cameras=far)
    assert (c.pix_to_face >= 0).sum() < (a.pix_to_face >= 0).sum()
    d = rast(sphere, faces_per_pixel=3)
    assert d.pix_to_face.shape[-1] == 3 and rast.raster_settings.faces_per_pixel == 1
    e = rast(sphere, raster_settings=RasterSettings((8, 12)))
    assert e.pix_to_face.shape == (1, 8, 12, 1)
    verts = rast.transform(sphere)
    assert verts.shape == (1, sphere.verts_packed().shape[0], 3)
    with pytest.raises(TypeError, match="forward"):
        rast(sphere, not_a_setting=1)
    with pytest.raises(ValueError, match="cameras"):
        MeshRasterizer(raster_settings=settings)(sphere)
    with pytest.raises(ValueError, match="raster_settings"):
        MeshRasterizer(_camera())(sphere)
    with pytest.raises(TypeError, match="raster_settings"):
        MeshRasterizer(_camera(), {"image_size": 8})


def test_rasterize_meshes_bad_input():
    sphere = ico_sphere(1)
    two = sphere.extend(2)
    settings = RasterSettings(8)
    with pytest.raises(ValueError, match="cameras"):
        rasterize_meshes(ico_sphere(1).extend(3), _camera(2), settings)
    with pytest.raises(TypeError, match="meshes"):
        rasterize_meshes(sphere.verts_packed(), _camera(), settings)
    with pytest.raises(TypeError, match="cameras"):
        rasterize_meshes(two, "camera", settings)
    with pytest.raises(TypeError, match="settings"):
        rasterize_meshes(two, _camera(), {"image_size": 8})
    with pytest.raises(ValueError, match="cameras"):
        rasterize_meshes(two, _CameraOn("meta"), settings)


class _CameraOn:
    """A camera stand-in on another device (real cameras cannot be built on the meta device)."""

    def __init__(self, device):
        self.device = torch.device(device)

    def __len__(self):
        return 1

    def transform_points_ndc(self, *a, **k):
        raise AssertionError("must be rejected before projecting")

    get_world_to_view_transform = is_perspective = transform_points_ndc


@pytest.mark.parametrize(
    "kwargs, exc, name",
    [
        (dict(image_size=0), ValueError, "image_size"),
        (dict(image_size=(8, 10**6)), ValueError, "image_size"),
        (dict(image_size=(8, 8, 8)), ValueError, "image_size"),
        (dict(image_size="8"), TypeError, "image_size"),
        (dict(blur_radius=-1e-3), ValueError, "blur_radius"),
        (dict(blur_radius=float("inf")), ValueError, "blur_radius"),
        (dict(faces_per_pixel=0), ValueError, "faces_per_pixel"),
        (dict(faces_per_pixel=2.0), TypeError, "faces_per_pixel"),
        (dict(bin_size=-1), ValueError, "bin_size"),
        (dict(max_faces_per_bin=0), ValueError, "max_faces_per_bin"),
        (dict(perspective_correct="yes"), TypeError, "perspective_correct"),
        (dict(clip_barycentric_coords=1), TypeError, "clip_barycentric_coords"),
        (dict(cull_backfaces=None), TypeError, "cull_backfaces"),
        (dict(cull_to_frustum=1), TypeError, "cull_to_frustum"),
        (dict(z_clip_value=-0.1), ValueError, "z_clip_value"),
        (dict(backend="opengl"), ValueError, "backend"),
        (dict(backend=None), TypeError, "backend"),
        (dict(keep_covering=1), TypeError, "keep_covering"),
        (dict(keep_covering=None), TypeError, "keep_covering"),
        (dict(fragments="numba"), ValueError, "fragments"),
        (dict(fragments=True), TypeError, "fragments"),
    ],
)
def test_raster_settings_validation(kwargs, exc, name):
    args = dict(image_size=8)
    args.update(kwargs)
    with pytest.raises(exc, match=name):
        RasterSettings(**args)


def test_raster_settings_normalises_and_resolves_defaults():
    s = RasterSettings(32)
    assert s.image_size == (32, 32) and s.faces_per_pixel == 1 and s.resolve_clip_barycentric_coords() is False
    s = RasterSettings([24, 40], blur_radius=1e-4)
    assert s.image_size == (24, 40) and s.resolve_clip_barycentric_coords() is True
    assert RasterSettings(8, blur_radius=1e-4, clip_barycentric_coords=False).resolve_clip_barycentric_coords() is False
    assert s.keep_covering is True and s.fragments == "auto" and s.backend == "auto"
    r = s.resolve(perspective_correct=True, znear=0.2)
    assert (r.perspective_correct, r.clip_barycentric_coords, r.z_clip_value) == (True, True, 0.1)
    r = RasterSettings(8, perspective_correct=False, z_clip_value=0.3).resolve(perspective_correct=True, znear=0.2)
    assert (r.perspective_correct, r.clip_barycentric_coords, r.z_clip_value) == (False, False, 0.3)
    assert RasterSettings(8).resolve(znear=0.2).z_clip_value is None  # not perspective-correct: no clipping


@pytest.mark.parametrize("kind", ["fov", "ortho", "screen"])
def test_projection_matches_camera_transforms(kind):
    from diffras.raster.mesh_rasterizer import project_verts_padded

    sphere = ico_sphere(1).extend(2)
    R, T = look_at_view_transform(2.5, torch.tensor([10.0, -20.0]), torch.tensor([30.0, 100.0]))
    if kind == "fov":
        cam = FoVPerspectiveCameras(R=R, T=T, fov=50.0)
    elif kind == "ortho":
        cam = FoVOrthographicCameras(R=R, T=T)
    else:
        cam = PerspectiveCameras(focal_length=300.0, principal_point=((120.0, 90.0),), in_ndc=False,
                                 image_size=((200, 260),), R=R, T=T)
    got = project_verts_padded(sphere, cam)
    verts = sphere.verts_padded()
    ndc = cam.transform_points_ndc(verts, eps=1e-8)
    z = cam.get_world_to_view_transform().transform_points(verts)[..., 2]
    torch.testing.assert_close(got[..., :2], ndc[..., :2])
    torch.testing.assert_close(got[..., 2], z)
