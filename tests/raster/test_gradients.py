"""gradcheck (float64) of zbuf, bary_coords and dists w.r.t. vertices and camera R, T, fov."""
import pytest
import torch
from torch.autograd import gradcheck

from diffras.cameras import FoVPerspectiveCameras, PerspectiveCameras, look_at_view_transform
from diffras.raster import RasterSettings, rasterize, rasterize_meshes
from diffras.structures import Meshes

D = torch.float64


def _outputs(frags):
    return frags.zbuf, frags.bary_coords, frags.dists


def _scene():
    g = torch.Generator().manual_seed(11)
    xy = torch.rand(4, 3, 2, generator=g, dtype=D) * 1.6 - 0.8
    z = torch.rand(4, 3, 1, generator=g, dtype=D) * 2 + 1
    return torch.cat([xy, z], -1).reshape(-1, 3)


@pytest.mark.parametrize(
    "kw",
    [
        dict(perspective_correct=False),
        dict(perspective_correct=True),
        dict(perspective_correct=True, blur_radius=0.02, faces_per_pixel=3),  # clipped barycentrics
        dict(perspective_correct=False, blur_radius=0.02, faces_per_pixel=2, clip_barycentric_coords=False),
    ],
)
def test_gradcheck_verts(kw):
    verts = _scene().requires_grad_(True)
    faces = torch.arange(12).view(4, 3)
    kw = dict(kw, faces_per_pixel=kw.get("faces_per_pixel", 2))
    kw["fragments"] = "torch"  # the plain autograd path (the fused kernel: tests/raster/test_fused_fragments.py)
    fn = lambda v: _outputs(rasterize(v, faces, (6, 7), backend="reference", **kw))  # noqa: E731
    frags = rasterize(verts, faces, (6, 7), backend="reference", **kw)
    assert (frags.pix_to_face >= 0).sum() > 10
    assert gradcheck(fn, (verts,), eps=1e-6, atol=1e-5, rtol=1e-4)


def test_gradcheck_through_near_plane_clipping():
    view = torch.tensor([[0.2, 0.1, -0.5], [0.9, 0.2, 2.0], [-0.6, 0.7, 2.5],
                         [0.4, -0.3, -0.5], [-0.3, 0.1, 0.2], [-0.2, 0.6, 1.5]], dtype=D, requires_grad=True)
    faces = torch.tensor([[0, 1, 2], [3, 4, 5]])

    def fn(v):
        proj = torch.cat([1.3 * v[:, :2] / v[:, 2:3], v[:, 2:3]], -1)
        return _outputs(rasterize(proj, faces, (7, 6), faces_per_pixel=2, blur_radius=0.01,
                                  perspective_correct=True, z_clip_value=0.4, backend="reference",
                                  fragments="torch"))

    assert gradcheck(fn, (view,), eps=1e-6, atol=1e-5, rtol=1e-4)


def _meshes():
    verts = torch.tensor([[0.6, 0.5, 0.1], [-0.7, 0.4, -0.2], [0.1, -0.6, 0.3], [0.5, -0.4, -0.4], [-0.3, -0.2, 0.5]], dtype=D)
    faces = torch.tensor([[0, 1, 2], [0, 2, 3], [1, 4, 2]])
    return verts, faces


@pytest.mark.parametrize("fragments", ["torch", "fused"])
def test_gradcheck_camera_R_T_fov_and_mesh_verts(fragments):
    verts, faces = _meshes()
    R0, T0 = look_at_view_transform(1.8, 10.0, 20.0)
    R0, T0 = R0.to(D), T0.to(D)
    settings = RasterSettings((7, 8), faces_per_pixel=2, blur_radius=0.01, backend="reference", fragments=fragments)

    def fn(v, R, T, fov):
        cam = FoVPerspectiveCameras(R=R, T=T, fov=fov, znear=0.1)
        return _outputs(rasterize_meshes(Meshes([v], [faces]), cam, settings))

    inputs = (verts.clone().requires_grad_(True), R0.clone().requires_grad_(True),
              T0.clone().requires_grad_(True), torch.tensor([55.0], dtype=D, requires_grad=True))
    frags = rasterize_meshes(Meshes([verts], [faces]), FoVPerspectiveCameras(R=R0, T=T0, fov=55.0, znear=0.1), settings)
    assert (frags.pix_to_face >= 0).sum() > 10
    assert gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-4)


def test_gradcheck_focal_length_of_perspective_camera():
    verts, faces = _meshes()
    R0, T0 = look_at_view_transform(1.8, 0.0, 30.0)
    settings = RasterSettings(6, faces_per_pixel=1, backend="reference", fragments="torch")

    def fn(focal):
        cam = PerspectiveCameras(focal_length=focal, R=R0.to(D), T=T0.to(D))
        return _outputs(rasterize_meshes(Meshes([verts], [faces]), cam, settings))

    assert gradcheck(fn, (torch.tensor([[1.7, 1.6]], dtype=D, requires_grad=True),), eps=1e-6, atol=1e-5, rtol=1e-4)
