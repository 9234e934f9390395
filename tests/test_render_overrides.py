"""PyTorch3D's per-call overrides: ``renderer(meshes_world=mesh, R=R, T=T)`` (the camera-pose tutorial's loop)."""
import pytest
import torch

from diffras.cameras import FoVPerspectiveCameras, look_at_rotation, look_at_view_transform
from diffras.ops import ico_sphere
from diffras.raster import MeshRasterizer, RasterSettings
from diffras.render import MeshRenderer
from diffras.shading import BlendParams, HardPhongShader, PointLights, SoftSilhouetteShader, TexturesVertex

D = torch.float64


def _sphere():
    m = ico_sphere(2).to(dtype=D)
    m.textures = TexturesVertex([torch.rand(m.verts_packed().shape, dtype=D, generator=torch.Generator().manual_seed(0))])
    return m


def _renderers(cameras):
    blend = BlendParams(sigma=1e-4, gamma=1e-4)
    sil = MeshRenderer(MeshRasterizer(cameras, RasterSettings(48, blur_radius=9.2e-4, faces_per_pixel=20)),
                       SoftSilhouetteShader(blend_params=blend))
    phong = MeshRenderer(MeshRasterizer(cameras, RasterSettings(48)),
                         HardPhongShader(cameras=cameras, lights=PointLights(location=[[2.0, 2.0, -2.0]])))
    return sil, phong


def test_R_T_keywords_equal_cameras_built_with_them():
    mesh = _sphere()
    R, T = look_at_view_transform(3.0, 50.0, 30.0)
    R, T = R.to(D), T.to(D)
    default = FoVPerspectiveCameras(R=torch.eye(3, dtype=D)[None], T=torch.tensor([[0.0, 0.0, 5.0]], dtype=D))
    for over, ref in zip(_renderers(default), _renderers(FoVPerspectiveCameras(R=R, T=T))):
        torch.testing.assert_close(over(meshes_world=mesh, R=R, T=T, eps=1e-8), ref(mesh))
    # The override is per call: the renderer's own cameras are unchanged afterwards.
    torch.testing.assert_close(default.R, torch.eye(3, dtype=D)[None])


def test_camera_position_gradient_flows_through_R_T():
    mesh = _sphere()
    sil, _ = _renderers(FoVPerspectiveCameras(R=torch.eye(3, dtype=D)[None]))
    position = torch.tensor([3.0, 2.0, 2.5], dtype=D, requires_grad=True)
    R = look_at_rotation(position[None])
    T = -torch.bmm(R.transpose(1, 2), position[None, :, None])[:, :, 0]
    image = sil(meshes_world=mesh.clone(), R=R, T=T)
    image[..., 3].sum().backward()
    assert position.grad is not None and torch.isfinite(position.grad).all() and position.grad.abs().sum() > 0


def test_R_T_batch_broadcasts_over_one_camera():
    mesh = _sphere()
    R, T = look_at_view_transform(3.0, 0.0, torch.tensor([0.0, 90.0, 180.0]))
    _, phong = _renderers(FoVPerspectiveCameras(R=torch.eye(3, dtype=D)[None]))
    images = phong(mesh, R=R.to(D), T=T.to(D))
    assert images.shape == (3, 48, 48, 4)
    _, ref = _renderers(FoVPerspectiveCameras(R=R.to(D), T=T.to(D)))
    torch.testing.assert_close(images, ref(mesh))


def test_R_T_bad_input():
    mesh = _sphere()
    cams = FoVPerspectiveCameras(R=look_at_view_transform(3.0, 0.0, torch.zeros(2))[0].to(D), T=torch.zeros(2, 3, dtype=D))
    _, phong = _renderers(cams)
    with pytest.raises(ValueError, match="R"):
        phong(mesh, R=torch.eye(3, dtype=D).expand(3, 3, 3))
    with pytest.raises(ValueError, match="T"):
        phong(mesh, T=torch.zeros(2, 4, dtype=D))


def test_rasterizer_takes_R_T_per_call_too():
    mesh = _sphere()
    R, T = look_at_view_transform(3.0, 20.0, 40.0)
    R, T = R.to(D), T.to(D)
    rast = MeshRasterizer(FoVPerspectiveCameras(R=torch.eye(3, dtype=D)[None]), RasterSettings(32))
    ref = MeshRasterizer(FoVPerspectiveCameras(R=R, T=T), RasterSettings(32))(mesh)
    got = rast(mesh, R=R, T=T)
    torch.testing.assert_close(got.pix_to_face, ref.pix_to_face)
    torch.testing.assert_close(got.zbuf, ref.zbuf)


def test_points_rasterizer_takes_R_T_per_call():
    from diffras.points import PointsRasterizationSettings, PointsRasterizer
    from diffras.structures import Pointclouds

    cloud = Pointclouds([torch.rand(200, 3, dtype=D, generator=torch.Generator().manual_seed(1)) - 0.5])
    R, T = look_at_view_transform(2.5, 30.0, 60.0)
    R, T = R.to(D), T.to(D)
    settings = PointsRasterizationSettings(image_size=24, radius=0.05, points_per_pixel=3)
    ref = PointsRasterizer(FoVPerspectiveCameras(R=R, T=T), settings)(cloud)
    got = PointsRasterizer(FoVPerspectiveCameras(R=torch.eye(3, dtype=D)[None]), settings)(cloud, R=R, T=T)
    torch.testing.assert_close(got.idx, ref.idx)
    torch.testing.assert_close(got.zbuf, ref.zbuf)
