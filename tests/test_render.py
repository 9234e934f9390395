"""MeshRenderer end to end: real Meshes, cameras and rasterizer; closed forms, batching, gradients."""
import math

import pytest
import torch

from diffras.cameras import FoVPerspectiveCameras, look_at_view_transform
from diffras.raster import MeshRasterizer, RasterSettings
from diffras.render import MeshRenderer, MeshRendererWithFragments
from diffras.shading import (AmbientLights, BlendParams, DirectionalLights, HardFlatShader, HardGouraudShader,
                             HardPhongShader, Materials, PointLights, SoftPhongShader, SoftSilhouetteShader,
                             TexturesUV, TexturesVertex)
from diffras.structures import Meshes

D = torch.float64


def quad(z=0.0, size=1.0, dtype=D, colors=None):
    """Square in the plane z (x, y in [-size, size]), normal +z: towards a camera on the +z axis."""
    v = torch.tensor([[-size, -size, z], [size, -size, z], [size, size, z], [-size, size, z]], dtype=dtype)
    f = torch.tensor([[0, 1, 2], [0, 2, 3]])
    tex = TexturesVertex([colors]) if colors is not None else None
    return Meshes([v], [f], textures=tex)


def front_cameras(n=1, dist=3.0, dtype=D, **kw):
    R, T = look_at_view_transform(dist, 0.0, torch.zeros(n, dtype=dtype))
    return FoVPerspectiveCameras(R=R.to(dtype), T=T.to(dtype), **kw)


def test_quad_faces_camera_convention():
    # The quad's normal (+z) must point at a camera at (0, 0, 3) (else the closed forms below are vacuous).
    m = quad()
    assert torch.allclose(m.faces_normals_packed(), torch.tensor([0.0, 0.0, 1.0], dtype=D))
    assert torch.allclose(front_cameras().get_camera_center(), torch.tensor([[0.0, 0.0, 3.0]], dtype=D))


@pytest.mark.parametrize("shader_cls", [HardPhongShader, HardFlatShader, HardGouraudShader])
def test_plane_directional_light_closed_form(shader_cls):
    albedo = torch.tensor([0.8, 0.6, 0.3], dtype=D)
    mesh = quad(colors=albedo.expand(4, 3))
    cams = front_cameras()
    d = torch.tensor([0.4, -0.3, 1.0], dtype=D)
    lights = DirectionalLights(ambient_color=(0.0, 0.0, 0.0), diffuse_color=(1.0, 1.0, 1.0),
                               specular_color=(0.0, 0.0, 0.0), direction=d)
    renderer = MeshRenderer(MeshRasterizer(cams, RasterSettings(image_size=24)),
                            shader_cls(cameras=cams, lights=lights, blend_params=BlendParams(background_color=(0.0, 0.0, 0.0))))
    img = renderer(mesh)
    covered = img[..., 3] > 0
    assert 0.2 < covered.float().mean() < 0.9  # the quad fills part of the image
    want = albedo * float(d[2] / d.norm())
    torch.testing.assert_close(img[covered][:, :3], want.expand(int(covered.sum()), 3))
    assert (img[~covered] == 0).all()


def test_ambient_only_full_pipeline():
    g = torch.Generator().manual_seed(0)
    colors = torch.rand(4, 3, generator=g, dtype=D)
    mesh = quad(colors=colors)
    cams = front_cameras()
    amb = torch.tensor([0.2, 0.5, 0.9], dtype=D)
    renderer = MeshRendererWithFragments(MeshRasterizer(cams, RasterSettings(image_size=16)),
                                         HardPhongShader(cameras=cams, lights=AmbientLights(amb)))
    img, frag = renderer(mesh)
    texels = mesh.textures.sample_textures(frag, mesh)[..., 0, :]
    covered = frag.pix_to_face[..., 0] >= 0
    torch.testing.assert_close(img[covered][:, :3], (texels * amb)[covered])


def test_phong_highlight_lands_where_reflection_meets_camera():
    mesh = quad(size=2.0)
    cams = front_cameras(dist=3.0)
    light = torch.tensor([1.0, 0.6, 2.0], dtype=D)
    lights = PointLights(ambient_color=(0.0, 0.0, 0.0), diffuse_color=(0.0, 0.0, 0.0),
                         specular_color=(1.0, 1.0, 1.0), location=light)
    S = 96
    renderer = MeshRenderer(MeshRasterizer(cams, RasterSettings(image_size=S)),
                            HardPhongShader(cameras=cams, lights=lights, materials=Materials(shininess=300.0),
                                            blend_params=BlendParams(background_color=(0.0, 0.0, 0.0))))
    img = renderer(mesh)[0, ..., 0]
    iy, ix = divmod(int(img.argmax()), S)
    # Mirror the camera through the plane z = 0; the light -> mirrored camera segment crosses the plane at the peak.
    c = cams.get_camera_center()[0]
    c_m = c * torch.tensor([1.0, 1.0, -1.0], dtype=D)
    t = light[2] / (light[2] - c_m[2])
    peak = light + t * (c_m - light)
    xy = cams.transform_points_screen(peak.view(1, 1, 3), image_size=(S, S))[0, 0, :2]
    # screen coordinates: pixel (row i, col j) has centre (j + 0.5, i + 0.5)
    assert abs(float(xy[0]) - (ix + 0.5)) <= 1.5 and abs(float(xy[1]) - (iy + 0.5)) <= 1.5
    assert img.max() > 0.95


def test_one_mesh_many_cameras_is_extended():
    mesh = quad(colors=torch.rand(4, 3, dtype=D))
    R, T = look_at_view_transform(3.0, torch.tensor([0.0, 20.0, -15.0]), torch.tensor([0.0, 30.0, -40.0]))
    cams = FoVPerspectiveCameras(R=R.to(D), T=T.to(D))
    renderer = MeshRenderer(MeshRasterizer(cams, RasterSettings(image_size=12)), HardPhongShader(cameras=cams))
    img = renderer(mesh)
    assert img.shape == (3, 12, 12, 4)
    torch.testing.assert_close(img, renderer(mesh.extend(3)))
    one = MeshRenderer(MeshRasterizer(cams[1], RasterSettings(image_size=12)), HardPhongShader(cameras=cams[1]))(mesh)
    torch.testing.assert_close(img[1:2], one)
    # the shader without cameras of its own receives the rasterizer's
    img2 = MeshRenderer(MeshRasterizer(cams, RasterSettings(image_size=12)), HardPhongShader())(mesh)
    torch.testing.assert_close(img2, img)


def test_per_call_overrides_reach_rasterizer_and_shader():
    mesh = quad(colors=torch.rand(4, 3, dtype=D))
    cams = front_cameras()
    r = MeshRenderer(MeshRasterizer(cams, RasterSettings(image_size=10)), HardPhongShader(cameras=cams))
    dark = r(mesh, lights=AmbientLights((0.0, 0.0, 0.0)))
    assert (dark[..., :3][dark[..., 3] > 0] == 0).all()
    small = r(mesh, image_size=6)
    assert small.shape == (1, 6, 6, 4)
    _, frag = MeshRendererWithFragments(r.rasterizer, r.shader)(mesh, faces_per_pixel=2)
    assert frag.pix_to_face.shape == (1, 10, 10, 2)


def _tiny_scene(verts, colors, loc, fov, T, maps=None, axis_angle=None):
    f = torch.tensor([[0, 1, 2], [0, 2, 3]])
    if maps is None:
        tex = TexturesVertex([colors])
    else:
        tex = TexturesUV([maps], [f], [torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]], dtype=D)])
    mesh = Meshes([verts], [f], textures=tex)
    R = torch.eye(3, dtype=D)[None] * torch.tensor([-1.0, 1.0, -1.0], dtype=D)  # looking down -z from +z
    if axis_angle is not None:
        from diffras.transforms import axis_angle_to_matrix

        R = R @ axis_angle_to_matrix(axis_angle)
    cams = FoVPerspectiveCameras(R=R, T=T, fov=fov)
    sigma = 2e-2
    rs = RasterSettings(image_size=6, faces_per_pixel=2, blur_radius=math.log(1 / 1e-4 - 1) * sigma)
    shader = SoftPhongShader(cameras=cams, lights=PointLights(location=loc),
                             blend_params=BlendParams(sigma=sigma, gamma=0.5))
    return MeshRenderer(MeshRasterizer(cams, rs), shader)(mesh)


def test_gradcheck_full_pipeline():
    # fast_mode: checks the Jacobian along random directions (one backward per output direction
    # instead of one forward per input), cheap enough for a rasterizing pipeline.
    verts = torch.tensor([[-0.7, -0.6, 0.1], [0.8, -0.7, 0.0], [0.6, 0.75, -0.1], [-0.75, 0.7, 0.05]], dtype=D,
                         requires_grad=True)
    colors = torch.rand(4, 3, dtype=D, requires_grad=True)
    loc = torch.tensor([[0.3, 0.4, 2.0]], dtype=D, requires_grad=True)
    fov = torch.tensor([50.0], dtype=D, requires_grad=True)
    T = torch.tensor([[0.05, -0.02, 2.5]], dtype=D, requires_grad=True)
    aa = torch.tensor([[0.05, -0.04, 0.1]], dtype=D, requires_grad=True)  # camera rotation (axis-angle)
    img = _tiny_scene(verts, colors, loc, fov, T, axis_angle=aa)
    assert img.shape == (1, 6, 6, 4) and (img[..., 3] > 0.5).any()
    assert torch.autograd.gradcheck(lambda v, c, l, f, t, a: _tiny_scene(v, c, l, f, t, axis_angle=a),
                                    (verts, colors, loc, fov, T, aa), atol=1e-6, fast_mode=True)
    # every input really influences the image (else the check above would be vacuous for it)
    img.sum().backward()
    for t in (verts, colors, loc, fov, T, aa):
        assert t.grad is not None and t.grad.abs().sum() > 0


def test_gradcheck_texture_map():
    verts = torch.tensor([[-0.7, -0.6, 0.1], [0.8, -0.7, 0.0], [0.6, 0.75, -0.1], [-0.75, 0.7, 0.05]], dtype=D)
    maps = torch.rand(3, 3, 3, dtype=D, requires_grad=True)
    T = torch.tensor([[0.0, 0.0, 2.5]], dtype=D)
    assert torch.autograd.gradcheck(
        lambda m: _tiny_scene(verts, None, torch.tensor([[0.0, 0.0, 2.0]], dtype=D), torch.tensor([50.0], dtype=D), T, maps=m),
        (maps,), fast_mode=True)


def test_silhouette_gradient_reaches_vertices():
    v = quad(dtype=torch.float32).verts_packed().clone().requires_grad_(True)
    mesh = Meshes([v], [torch.tensor([[0, 1, 2], [0, 2, 3]])])
    cams = front_cameras(dtype=torch.float32)
    sigma = 1e-3
    rs = RasterSettings(image_size=32, faces_per_pixel=8, blur_radius=math.log(1 / 1e-4 - 1) * sigma)
    sil = MeshRenderer(MeshRasterizer(cams, rs), SoftSilhouetteShader(BlendParams(sigma=sigma)))(mesh)[..., 3]
    sil.sum().backward()
    # growing the square (moving corners outward) increases coverage: gradient points outward
    assert torch.isfinite(v.grad).all()
    assert ((v.grad[:, :2] * v.detach()[:, :2]).sum(-1) > 0).all()


def test_empty_mesh_in_batch_renders_background():
    from diffras.shading import HardDepthShader, NormalShader, SoftDepthShader

    full = quad(colors=torch.rand(4, 3, dtype=D))
    empty = Meshes([torch.zeros(0, 3, dtype=D)], [torch.zeros(0, 3, dtype=torch.long)],
                   textures=TexturesVertex([torch.zeros(0, 3, dtype=D)]))
    from diffras.structures import join_meshes_as_batch

    batch = join_meshes_as_batch([empty, full])
    cams = front_cameras()
    rs = RasterSettings(image_size=8, faces_per_pixel=2)
    for shader in (HardPhongShader(), SoftPhongShader(), HardGouraudShader(), HardFlatShader(),
                   SoftSilhouetteShader(), NormalShader()):
        img = MeshRenderer(MeshRasterizer(cams, rs), shader)(batch)
        assert img.shape == (2, 8, 8, 4) and torch.isfinite(img).all()
        assert (img[0, ..., 3] == 0).all() and (img[1, ..., 3] > 0).any()
    for shader in (HardDepthShader(), SoftDepthShader()):
        z = MeshRenderer(MeshRasterizer(cams, rs), shader)(batch)
        assert z.shape == (2, 8, 8, 1) and (z[0] == 100.0).all()


# ---- bad input ---------------------------------------------------------------------------------
def test_renderer_bad_input():
    mesh2 = quad().extend(2)
    R, T = look_at_view_transform(3.0, 0.0, torch.tensor([0.0, 10.0, 20.0]))
    cams3 = FoVPerspectiveCameras(R=R.to(D), T=T.to(D))
    r = MeshRenderer(MeshRasterizer(cams3, RasterSettings(image_size=8)), HardPhongShader(cameras=cams3))
    with pytest.raises(ValueError, match="cameras: expected a batch of 1 or 2"):
        r(mesh2)
    with pytest.raises(TypeError, match="rasterizer"):
        MeshRenderer(None, HardPhongShader())
    # an unknown keyword is an error, not silently ignored (R= and T= are PyTorch3D's per-call extrinsics)
    with pytest.raises(TypeError, match="rotation"):
        MeshRenderer(MeshRasterizer(cams3, RasterSettings(image_size=8)), HardPhongShader())(quad(), rotation=torch.eye(3)[None])
    with pytest.raises(TypeError, match="shader"):
        MeshRenderer(r.rasterizer, "phong")
