"""Whole renders through the fused CPU kernels (the default) against the plain-torch path (the reference,
``fused_kernels(False)``): same images and the same gradients to every input that gets one today: vertices,
vertex colours, texture maps, lights, materials, cameras and the background colour."""
import math

import pytest
import torch

from diffras.cameras import FoVPerspectiveCameras, look_at_view_transform
from diffras.ops import ico_sphere
from diffras.raster import MeshRasterizer, RasterSettings
from diffras.raster.fragments import fused_kernels
from diffras.render import MeshRenderer
from diffras.shading import (BlendParams, DirectionalLights, HardFlatShader, HardGouraudShader, HardPhongShader,
                             Materials, PointLights, SoftGouraudShader, SoftPhongShader, SoftSilhouetteShader,
                             TexturesUV, TexturesVertex)

D = torch.float64


def _render(shader_name: str, textured: bool, dtype, fused: bool):
    g = torch.Generator().manual_seed(0)
    sphere = ico_sphere(2)
    verts = sphere.verts_packed().to(dtype)
    faces = sphere.faces_packed()
    offset = torch.zeros_like(verts, requires_grad=True)
    if textured:
        maps = torch.rand(1, 40, 48, 3, generator=g, dtype=dtype, requires_grad=True)
        # Spherical UVs squeezed into part of the map: minified on some faces (mip levels in use).
        uv = torch.stack([torch.atan2(verts[:, 0], verts[:, 2]) / (2 * math.pi) + 0.5,
                          verts[:, 1] * 0.5 + 0.5], dim=1) * 2.5 - 0.2
        tex_leaves = [maps]
        tex = TexturesUV(maps, faces[None], uv[None], padding_mode="reflection")
    else:
        colors = torch.rand(1, verts.shape[0], 3, generator=g, dtype=dtype, requires_grad=True)
        tex_leaves = [colors]
        tex = TexturesVertex(colors)
    from diffras.structures import Meshes

    mesh = Meshes([verts + offset], [faces], textures=tex)
    R, T = look_at_view_transform(2.6, 20.0, torch.tensor([30.0, 200.0]))
    T = T.to(dtype).requires_grad_(True)
    cams = FoVPerspectiveCameras(R=R.to(dtype), T=T, fov=55.0)
    loc = torch.tensor([[0.5, 1.0, -2.5], [1.0, 0.2, 2.0]], dtype=dtype, requires_grad=True)
    dif = torch.tensor([[0.5, 0.4, 0.3]], dtype=dtype, requires_grad=True)
    lights = (PointLights(location=loc, diffuse_color=dif) if shader_name != "HardFlat" else
              DirectionalLights(direction=loc, diffuse_color=dif))
    spec = torch.tensor([[0.6, 0.7, 0.8]], dtype=dtype, requires_grad=True)
    shin = torch.tensor([20.0, 7.5], dtype=dtype, requires_grad=True)
    mats = Materials(specular_color=spec, shininess=shin, dtype=dtype)
    bg = torch.tensor([0.2, 0.3, 0.4], dtype=dtype, requires_grad=True)
    sigma = 1e-4
    soft = shader_name.startswith("Soft")
    settings = RasterSettings(32, faces_per_pixel=6 if soft else 1,
                              blur_radius=math.log(1 / sigma - 1) * sigma if soft else 0.0)
    bp = BlendParams(sigma=sigma, gamma=1e-2, background_color=bg)
    cls = {"SoftPhong": SoftPhongShader, "HardPhong": HardPhongShader, "SoftGouraud": SoftGouraudShader,
           "HardGouraud": HardGouraudShader, "HardFlat": HardFlatShader}.get(shader_name)
    shader = (SoftSilhouetteShader(bp) if cls is None else
              cls(cameras=cams, lights=lights, materials=mats, blend_params=bp))
    leaves = [offset, T, loc, dif, spec, shin, bg] + tex_leaves
    with fused_kernels(fused):
        img = MeshRenderer(MeshRasterizer(cams, settings), shader)(mesh)
        w = torch.rand(img.shape, generator=torch.Generator().manual_seed(1), dtype=dtype)
        grads = torch.autograd.grad((img * w).sum(), leaves, allow_unused=True)
    return img.detach(), grads


@pytest.mark.parametrize("shader_name,textured", [("SoftPhong", True), ("HardPhong", True), ("HardFlat", True),
                                                  ("SoftGouraud", False), ("HardGouraud", False),
                                                  ("SoftSilhouette", False)])
def test_fused_render_matches_torch_path(shader_name, textured):
    a, ga = _render(shader_name, textured, D, True)
    b, gb = _render(shader_name, textured, D, False)
    torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)
    names = ["verts", "camera T", "light location", "light diffuse", "material specular", "shininess",
             "background", "texture"]
    reached = 0
    for name, x, y in zip(names, ga, gb):
        assert (x is None) == (y is None), name
        if x is not None:
            torch.testing.assert_close(x, y, rtol=1e-7, atol=1e-9, msg=name)
            reached += bool(x.abs().sum() > 0)
    # Gradients do reach the inputs (not a comparison of zeros).
    assert reached >= (2 if shader_name == "SoftSilhouette" else 6)
    assert (a[..., 3] > 0).float().mean() > 0.2


def test_fused_render_float32_close_to_torch_path():
    a, ga = _render("SoftPhong", True, torch.float32, True)
    b, gb = _render("SoftPhong", True, torch.float32, False)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    for x, y in zip(ga, gb):
        scale = float(y.abs().max()) + 1e-6
        torch.testing.assert_close(x / scale, y / scale, rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("texture", ["uv", "vertex", "atlas"])
@pytest.mark.parametrize("shader_cls", [SoftPhongShader, HardPhongShader])
def test_shading_never_builds_dense_fragment_fields(texture, shader_cls):
    """The shaders read the packed fragment values only: the rasterizer's packed Fragments must come out of a
    whole render with no dense pix_to_face / zbuf / bary_coords / dists built (each is N H W K floats, x3 for bary; the
    texture samplers once built a dense bary_coords, 200 MiB for 8 views at 512^2, K = 8, read by nothing)."""
    from diffras.shading import TexturesAtlas
    from diffras.structures import Meshes

    sphere = ico_sphere(1)
    verts, faces = sphere.verts_packed(), sphere.faces_packed()
    if texture == "uv":
        tex = TexturesUV(torch.rand(1, 8, 8, 3), faces[None], verts[None, :, :2] * 0.5 + 0.5)
    elif texture == "vertex":
        tex = TexturesVertex(torch.rand(1, verts.shape[0], 3))
    else:
        tex = TexturesAtlas(torch.rand(1, faces.shape[0], 2, 2, 3))
    mesh = Meshes([verts], [faces], textures=tex)
    R, T = look_at_view_transform(2.6, 20.0, 30.0)
    cams = FoVPerspectiveCameras(R=R, T=T)
    raster = MeshRasterizer(cams, RasterSettings(16, faces_per_pixel=3, blur_radius=1e-3))
    frags = raster(mesh)
    img = shader_cls(cameras=cams)(frags, mesh)
    assert img[..., 3].sum() > 0
    assert frags._dense is None or all(t is None for t in frags._dense)
    assert frags._p2f is None  # nor the dense pix_to_face (the rasterizer keeps the packed lists only)
    # ... which is still there, equal to the packed lists, for whoever reads it.
    p2f = frags.pix_to_face
    assert p2f.shape == frags.shape and int((p2f >= 0).sum()) == frags.num_filled
    assert torch.equal(p2f.reshape(-1)[frags.slot_idx], frags.face_idx)
