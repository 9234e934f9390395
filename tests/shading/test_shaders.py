"""Shaders on hand-built fragments: closed forms (plane under a directional light, ambient only, Phong
highlight), composition with the blending functions, depth/normal/silhouette shaders, gradients, bad input.

The cameras here are a minimal stand-in (the lit shaders only call ``get_camera_center()`` and, for the
view-space normal shader, read ``R``); end-to-end tests with the real cameras are in tests/test_render.py.
"""
import math

import numpy as np
import pytest
import torch

from diffras.raster.fragments import Fragments
from diffras.shading import (AmbientLights, BlendParams, DirectionalLights, Materials, PointLights,
                             hard_rgb_blend, sigmoid_alpha_blend, softmax_rgb_blend)
from diffras.shading.shade import phong_shading
from diffras.shading.shaders import (HardDepthShader, HardFlatShader, HardGouraudShader, HardPhongShader,
                                     NormalShader, SoftDepthShader, SoftGouraudShader, SoftPhongShader,
                                     SoftSilhouetteShader)
from diffras.textures import TexturesVertex
from diffras.structures import Meshes

D = torch.float64


class StandInCameras:
    def __init__(self, center, R=None, znear=None, zfar=None):
        # as_tensor keeps a tensor's autograd history (gradcheck w.r.t. the camera position)
        self.center = torch.as_tensor(center, dtype=D).reshape(-1, 3)
        self.R = torch.eye(3, dtype=D)[None] if R is None else R
        if znear is not None:
            self.znear, self.zfar = znear, zfar

    def get_camera_center(self):
        return self.center

    def __len__(self):
        return self.center.shape[0]


def plane_mesh(z=2.0, colors=None, batch=1):
    """Square x, y in [-1, 1] at depth z, both faces with normal -z (towards a camera at the origin)."""
    v = torch.tensor([[-1, -1, z], [-1, 1, z], [1, 1, z], [1, -1, z]], dtype=D)
    f = torch.tensor([[0, 1, 2], [0, 2, 3]])
    tex = None
    if colors is not None:
        tex = TexturesVertex([c for c in colors])
    return Meshes([v] * batch, [f] * batch, textures=tex)


def plane_fragments(N=1, H=4, W=5, K=1, seed=0, empty=True):
    """Random fragments on the plane: face 0/1 (or -1), random positive barycentrics summing to 1."""
    g = torch.Generator().manual_seed(seed)
    p2f = torch.randint(0, 2, (N, H, W, K), generator=g)
    if empty:
        p2f[:, 0, 0] = -1
    # packed face indices of mesh n are 2n, 2n+1
    p2f = torch.where(p2f >= 0, p2f + 2 * torch.arange(N).view(N, 1, 1, 1), p2f)
    bary = torch.rand(N, H, W, K, 3, generator=g, dtype=D) + 0.05
    bary = bary / bary.sum(-1, keepdim=True)
    zbuf = torch.full((N, H, W, K), 2.0, dtype=D)
    dists = -torch.rand(N, H, W, K, generator=g, dtype=D) * 1e-3
    m = p2f >= 0
    return Fragments(p2f, torch.where(m, zbuf, -1.0), torch.where(m[..., None], bary, -1.0),
                     torch.where(m, dists, -1.0))


def diffuse_only(direction, color=(1.0, 1.0, 1.0)):
    return DirectionalLights(ambient_color=(0.0, 0.0, 0.0), diffuse_color=color, specular_color=(0.0, 0.0, 0.0),
                             direction=direction, dtype=D)


@pytest.mark.parametrize("shader_cls", [HardPhongShader, HardFlatShader, HardGouraudShader])
@pytest.mark.parametrize("direction", [(0.0, 0.0, -1.0), (0.3, -0.5, -1.0), (1.0, 0.0, 0.2)])
def test_plane_under_directional_light_is_albedo_times_cos(shader_cls, direction):
    albedo = torch.tensor([0.9, 0.5, 0.2], dtype=D)
    mesh = plane_mesh(colors=[albedo.expand(4, 3)])
    frag = plane_fragments()
    shader = shader_cls(cameras=StandInCameras([0.0, 0.0, 0.0]), lights=diffuse_only(direction),
                        materials=Materials(dtype=D), blend_params=BlendParams(background_color=(0.0, 0.0, 1.0)))
    img = shader(frag, mesh)
    d = torch.tensor(direction, dtype=D)
    cos = max(0.0, float(-d[2] / d.norm()))
    covered = frag.pix_to_face[..., 0] >= 0
    torch.testing.assert_close(img[covered][:, :3], (albedo * cos).expand(int(covered.sum()), 3))
    torch.testing.assert_close(img[~covered][:, :3], torch.tensor([[0.0, 0.0, 1.0]], dtype=D))
    assert torch.equal(img[..., 3], covered.to(D))


@pytest.mark.parametrize("shader_cls", [HardPhongShader, HardFlatShader, HardGouraudShader])
def test_ambient_only_is_ambient_times_albedo(shader_cls):
    g = torch.Generator().manual_seed(3)
    colors = torch.rand(4, 3, generator=g, dtype=D)
    mesh = plane_mesh(colors=[colors])
    frag = plane_fragments(seed=1)
    amb = torch.tensor([0.3, 0.5, 0.7], dtype=D)
    mat_amb = torch.tensor([0.9, 0.8, 0.5], dtype=D)
    shader = shader_cls(cameras=StandInCameras([0.0, 0.0, 0.0]), lights=AmbientLights(amb),
                        materials=Materials(ambient_color=mat_amb, dtype=D))
    img = shader(frag, mesh)
    # texel = barycentric interpolation of the vertex colours
    faces = mesh.faces_packed()
    p2f, bary = frag.pix_to_face[..., 0], frag.bary_coords[..., 0, :]
    covered = p2f >= 0
    tex = (bary[covered][:, :, None] * colors[faces[p2f[covered]]]).sum(1)
    torch.testing.assert_close(img[covered][:, :3], tex * amb * mat_amb)


def test_untextured_mesh_renders_white_albedo():
    mesh = plane_mesh()
    frag = plane_fragments()
    img = HardPhongShader(cameras=StandInCameras([0.0, 0.0, 0.0]), lights=AmbientLights((0.25, 0.5, 0.75)))(frag, mesh)
    covered = frag.pix_to_face[..., 0] >= 0
    torch.testing.assert_close(img[covered][:, :3], torch.tensor([[0.25, 0.5, 0.75]], dtype=D).expand(int(covered.sum()), 3))


def test_phong_highlight_where_reflection_meets_camera():
    # One big triangle in the plane z = 2 (normal -z); fragments at a grid of known world points.
    v = torch.tensor([[-10.0, -10.0, 2.0], [-10.0, 30.0, 2.0], [30.0, -10.0, 2.0]], dtype=D)
    mesh = Meshes([v], [torch.tensor([[0, 1, 2]])])
    xs = torch.linspace(-1.5, 1.5, 121, dtype=D)
    X, Y = torch.meshgrid(xs, xs, indexing="xy")
    # barycentrics of (X, Y) in the triangle: P = v0 + b1 (v1 - v0) + b2 (v2 - v0)
    b1 = (Y + 10.0) / 40.0
    b2 = (X + 10.0) / 40.0
    bary = torch.stack([1 - b1 - b2, b1, b2], -1)[None, :, :, None]
    H = W = xs.numel()
    frag = Fragments(torch.zeros(1, H, W, 1, dtype=torch.long), torch.full((1, H, W, 1), 2.0, dtype=D), bary,
                     torch.full((1, H, W, 1), -1.0, dtype=D))
    light_pos = torch.tensor([0.8, 0.4, 0.0], dtype=D)
    cam = torch.tensor([-0.6, 0.2, 0.5], dtype=D)
    lights = PointLights(ambient_color=(0.0, 0.0, 0.0), diffuse_color=(0.0, 0.0, 0.0),
                         specular_color=(1.0, 1.0, 1.0), location=light_pos)
    img = HardPhongShader(cameras=StandInCameras(cam), lights=lights,
                          materials=Materials(shininess=400.0, dtype=D))(frag, mesh)
    iy, ix = divmod(int(img[0, ..., 0].argmax()), W)
    peak = torch.stack([X[iy, ix], Y[iy, ix]])
    # Mirror the camera in the plane z = 2; the highlight is where the light -> mirrored-camera line meets it.
    cam_m = cam.clone()
    cam_m[2] = 4.0 - cam[2]
    t = (2.0 - light_pos[2]) / (cam_m[2] - light_pos[2])
    want = (light_pos + t * (cam_m - light_pos))[:2]
    assert torch.allclose(peak, want, atol=1.5 * float(xs[1] - xs[0]))
    assert img[0, iy, ix, 0] > 0.95  # the grid point nearest the exact peak


def test_soft_shaders_compose_phong_and_softmax():
    mesh = plane_mesh(colors=[torch.rand(4, 3, dtype=D)])
    frag = plane_fragments(K=2, seed=4)
    cams = StandInCameras([0.1, 0.2, -0.5], znear=0.5, zfar=torch.tensor([20.0], dtype=D))
    lights, mats = PointLights(dtype=D, location=(0.0, 0.5, -1.0)), Materials(dtype=D)
    bp = BlendParams(sigma=1e-3, gamma=0.1)
    img = SoftPhongShader(cameras=cams, lights=lights, materials=mats, blend_params=bp)(frag, mesh)
    colors = phong_shading(mesh, frag, lights, cams, mats, mesh.textures.sample_textures(frag, mesh))
    torch.testing.assert_close(img, softmax_rgb_blend(colors, frag, bp, znear=0.5, zfar=torch.tensor([20.0], dtype=D)))
    # keyword overrides win over the cameras' planes
    img2 = SoftPhongShader(cameras=cams, lights=lights, materials=mats, blend_params=bp)(frag, mesh, znear=1.0, zfar=5.0)
    torch.testing.assert_close(img2, softmax_rgb_blend(colors, frag, bp, znear=1.0, zfar=5.0))
    g = SoftGouraudShader(cameras=cams, lights=lights, materials=mats, blend_params=bp)(frag, mesh)
    hg = HardGouraudShader(cameras=cams, lights=lights, materials=mats)(frag, mesh)
    assert g.shape == hg.shape == (1, 4, 5, 4)


def test_batched_lights_materials_cameras_per_mesh():
    colors = [torch.rand(4, 3, dtype=D), torch.rand(4, 3, dtype=D)]
    mesh = plane_mesh(colors=colors, batch=2)
    frag = plane_fragments(N=2, seed=5)
    lights = PointLights(location=torch.tensor([[0.0, 0.0, 0.0], [0.5, 0.5, -1.0]], dtype=D))
    mats = Materials(diffuse_color=torch.tensor([[1.0, 1.0, 1.0], [0.5, 0.2, 0.1]], dtype=D),
                     shininess=torch.tensor([10.0, 30.0], dtype=D))
    cams = StandInCameras([[0.0, 0.0, 0.0], [0.2, -0.1, 0.1]])
    for cls in (HardPhongShader, HardGouraudShader, HardFlatShader):
        both = cls(cameras=cams, lights=lights, materials=mats)(frag, mesh)
        for n in range(2):
            frag_n = Fragments(frag.pix_to_face[n:n + 1] - 2 * n * (frag.pix_to_face[n:n + 1] >= 0),
                               frag.zbuf[n:n + 1], frag.bary_coords[n:n + 1], frag.dists[n:n + 1])
            single = cls(cameras=StandInCameras(cams.center[n]), lights=lights[n], materials=mats[n])(frag_n, mesh[n])
            torch.testing.assert_close(both[n:n + 1], single)


def test_depth_shaders():
    frag = plane_fragments(N=1, K=3, seed=6)
    z = torch.where(frag.pix_to_face >= 0, torch.rand(frag.zbuf.shape, dtype=D) * 5 + 1, -1.0)
    frag = Fragments(frag.pix_to_face, z, frag.bary_coords, frag.dists * 0.2)
    hard = HardDepthShader()(frag, None, zfar=50.0)
    covered = frag.pix_to_face[..., 0] >= 0
    assert hard.shape == (1, 4, 5, 1)
    torch.testing.assert_close(hard[..., 0][covered], z[..., 0][covered])
    assert (hard[..., 0][~covered] == 50.0).all()
    # SoftDepthShader against a per-pixel loop of PyTorch3D's rule
    sigma = 1e-4
    soft = SoftDepthShader(blend_params=BlendParams(sigma=sigma, zfar=30.0))(frag, None)
    p2f, d = frag.pix_to_face.numpy(), frag.dists.numpy()
    for y in range(4):
        for x in range(5):
            probs = [1 / (1 + math.exp(d[0, y, x, k] / sigma)) if p2f[0, y, x, k] >= 0 else 0.0 for k in range(3)]
            probs.append(1.0)
            depths = list(z[0, y, x].numpy()) + [30.0]
            cum, prev, acc = 0.0, 0.0, 0.0
            for p, dep in zip(probs, depths):
                cum = min(1.0, cum + p)
                acc += (cum - prev) * dep
                prev = cum
            assert soft[0, y, x, 0].item() == pytest.approx(acc, rel=1e-12)
    # zfar from the cameras when they have one
    cams = StandInCameras([0.0, 0.0, 0.0], znear=1.0, zfar=torch.tensor([7.0], dtype=D))
    assert (HardDepthShader(cameras=cams)(frag, None)[..., 0][~covered] == 7.0).all()


def test_normal_shader_world_and_view():
    mesh = plane_mesh()
    frag = plane_fragments()
    covered = frag.pix_to_face[..., 0] >= 0
    img = NormalShader(blend_params=BlendParams(background_color=(0.0, 0.0, 0.0)))(frag, mesh)
    torch.testing.assert_close(img[covered][:, :3], torch.tensor([[0.5, 0.5, 0.0]], dtype=D).expand(int(covered.sum()), 3))
    assert (img[~covered] == 0).all()
    # a camera rotated 90 degrees about y sees the normal (0, 0, -1) as n @ R
    c, s = 0.0, 1.0
    R = torch.tensor([[[c, 0.0, -s], [0.0, 1.0, 0.0], [s, 0.0, c]]], dtype=D)
    img_v = NormalShader(cameras=StandInCameras([0.0, 0.0, 0.0], R=R), space="view")(frag, mesh)
    want = (torch.tensor([0.0, 0.0, -1.0], dtype=D) @ R[0] + 1) / 2
    torch.testing.assert_close(img_v[covered][:, :3], want.expand(int(covered.sum()), 3))


def test_silhouette_shader():
    frag = plane_fragments(K=2, seed=7)
    img = SoftSilhouetteShader(BlendParams(sigma=1e-3))(frag, None)
    torch.testing.assert_close(img, sigmoid_alpha_blend(torch.ones_like(frag.bary_coords), frag, BlendParams(sigma=1e-3)))


def test_gradcheck_phong_wrt_colors_lights_materials_verts_camera():
    frag = plane_fragments(H=2, W=3, K=2, seed=8)
    frag = Fragments(frag.pix_to_face, frag.zbuf, frag.bary_coords, frag.dists * 0 - 0.05)
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    v0 = torch.tensor([[-1, -1, 2.0], [-1, 1, 2.2], [1, 1, 2.1], [1, -1, 1.9]], dtype=D, requires_grad=True)
    col = torch.rand(4, 3, dtype=D, requires_grad=True)
    loc = torch.tensor([[0.3, 0.8, -1.0]], dtype=D, requires_grad=True)
    lcol = torch.tensor([[0.6, 0.7, 0.8]], dtype=D, requires_grad=True)
    shin = torch.tensor([4.0], dtype=D, requires_grad=True)
    mspec = torch.tensor([[0.5, 0.6, 0.7]], dtype=D, requires_grad=True)
    cam = torch.tensor([[0.1, -0.2, -0.3]], dtype=D, requires_grad=True)
    bp = BlendParams(sigma=0.1, gamma=0.3)

    def render(v, col, loc, lcol, shin, mspec, cam, cls):
        mesh = Meshes([v], [faces], textures=TexturesVertex([col]))
        lights = PointLights(diffuse_color=lcol, specular_color=lcol, location=loc)
        mats = Materials(specular_color=mspec, shininess=shin)
        return cls(cameras=StandInCameras(cam), lights=lights, materials=mats, blend_params=bp)(frag, mesh)

    for cls in (SoftPhongShader, SoftGouraudShader, HardFlatShader):
        assert torch.autograd.gradcheck(lambda *a: render(*a, cls=cls), (v0, col, loc, lcol, shin, mspec, cam))


# ---- bad input ---------------------------------------------------------------------------------
def test_missing_cameras_and_batch_mismatch():
    mesh = plane_mesh(batch=2)
    frag = plane_fragments(N=2)
    with pytest.raises(ValueError, match="cameras"):
        HardPhongShader()(frag, mesh)
    cams = StandInCameras([0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="lights: expected a batch of 1 or 2"):
        HardPhongShader(cameras=cams, lights=PointLights(location=torch.zeros(3, 3)))(frag, mesh)
    with pytest.raises(ValueError, match="materials: expected a batch of 1 or 2"):
        HardGouraudShader(cameras=cams, materials=Materials(shininess=torch.ones(3)))(frag, mesh)
    with pytest.raises(ValueError, match="cameras: expected a batch of 1 or 2"):
        HardFlatShader(cameras=StandInCameras(torch.zeros(3, 3)))(frag, mesh)
    with pytest.raises(TypeError, match="blend_params"):
        HardPhongShader(blend_params=(1e-4, 1e-4))
    with pytest.raises(ValueError, match="space"):
        NormalShader(space="screen")
    with pytest.raises(ValueError, match="zfar"):
        HardDepthShader()(frag, mesh, zfar=torch.ones(3))


def test_hard_shaders_equal_shading_all_k_then_hard_blend():
    from diffras.shading.shade import flat_shading, gouraud_shading

    mesh = plane_mesh(colors=[torch.rand(4, 3, dtype=D)])
    frag = plane_fragments(K=3, seed=9)
    cams = StandInCameras([0.2, -0.1, -0.4])
    lights, mats = PointLights(location=(0.3, 0.2, -1.0), dtype=D), Materials(shininess=8.0, dtype=D)
    bp = BlendParams(background_color=(0.1, 0.2, 0.3))
    tex = mesh.textures.sample_textures(frag, mesh)
    for cls, colors in ((HardPhongShader, phong_shading(mesh, frag, lights, cams, mats, tex)),
                        (HardFlatShader, flat_shading(mesh, frag, lights, cams, mats, tex)),
                        (HardGouraudShader, gouraud_shading(mesh, frag, lights, cams, mats))):
        got = cls(cameras=cams, lights=lights, materials=mats, blend_params=bp)(frag, mesh)
        torch.testing.assert_close(got, hard_rgb_blend(colors, frag, bp))


def _unit(v):
    return v / max(np.linalg.norm(v), 1e-6)


def test_phong_shading_matches_per_fragment_bruteforce():
    g = torch.Generator().manual_seed(11)
    N = 2
    verts = [torch.randn(4, 3, generator=g, dtype=D) * 0.5 + torch.tensor([0.0, 0.0, 3.0], dtype=D) for _ in range(N)]
    faces = torch.tensor([[0, 1, 2], [0, 2, 3], [1, 3, 2]])
    cols = [torch.rand(4, 3, generator=g, dtype=D) for _ in range(N)]
    mesh = Meshes(verts, [faces] * N, textures=TexturesVertex(cols))
    frag = plane_fragments(N=N, K=2, seed=12)
    frag = Fragments(torch.where(frag.pix_to_face >= 0, frag.pix_to_face + (frag.pix_to_face // 2), frag.pix_to_face),
                     frag.zbuf, frag.bary_coords, frag.dists)  # faces 0..2 of mesh 0, 3..5 of mesh 1
    loc = torch.tensor([[0.5, 1.0, 0.0], [-1.0, 0.3, 0.5]], dtype=D)
    lights = PointLights(ambient_color=((0.1, 0.2, 0.3),), diffuse_color=torch.tensor([[0.7, 0.6, 0.5], [0.4, 0.5, 0.9]], dtype=D),
                         specular_color=((0.3, 0.3, 0.2),), location=loc)
    mats = Materials(ambient_color=((0.9, 1.0, 0.8),), diffuse_color=((1.0, 0.9, 0.7),), specular_color=((0.5, 0.6, 0.7),),
                     shininess=torch.tensor([5.0, 12.0], dtype=D))
    cam = torch.tensor([[0.1, 0.2, -1.0], [0.0, -0.3, -0.5]], dtype=D)
    out = phong_shading(mesh, frag, lights, StandInCameras(cam), mats, mesh.textures.sample_textures(frag, mesh))
    V, F, VN = mesh.verts_packed().numpy(), mesh.faces_packed().numpy(), mesh.verts_normals_packed().numpy()
    C = torch.cat(cols).numpy()
    p2f, bary = frag.pix_to_face.numpy(), frag.bary_coords.numpy()
    for idx in np.ndindex(*p2f.shape):
        f = p2f[idx]
        if f < 0:
            assert (out[idx] == 0).all()
            continue
        n = idx[0]
        b = bary[idx]
        p = b @ V[F[f]]
        nrm = _unit(b @ VN[F[f]])
        tex = b @ C[F[f]]
        l = _unit(loc[n].numpy() - p)
        cos = float(nrm @ l)
        dif = lights.diffuse_color[n].numpy() * max(cos, 0.0)
        r = -l + 2 * cos * nrm
        v = _unit(cam[n].numpy() - p)
        spec = lights.specular_color[0].numpy() * ((max(float(v @ r), 0.0) if cos > 0 else 0.0) ** mats.shininess[n].item())
        want = (mats.ambient_color[0].numpy() * lights.ambient_color[0].numpy() + mats.diffuse_color[0].numpy() * dif) * tex \
            + mats.specular_color[0].numpy() * spec
        np.testing.assert_allclose(out[idx].numpy(), want, rtol=1e-10, atol=1e-12)


def test_duck_typed_lights_without_fused_terms():
    class MyLights:  # PyTorch3D's light interface only
        def __init__(self, inner):
            self.inner = inner
            self.ambient_color = inner.ambient_color

        def __len__(self):
            return len(self.inner)

        def diffuse(self, normals, points):
            return self.inner.diffuse(normals, points)

        def specular(self, normals, points, camera_position, shininess):
            return self.inner.specular(normals, points, camera_position, shininess)

    mesh = plane_mesh(colors=[torch.rand(4, 3, dtype=D)])
    frag = plane_fragments(seed=13)
    cams = StandInCameras([0.1, 0.0, -0.5])
    lights = PointLights(location=(0.2, 0.3, -1.0), dtype=D)
    torch.testing.assert_close(HardPhongShader(cameras=cams, lights=MyLights(lights))(frag, mesh),
                               HardPhongShader(cameras=cams, lights=lights)(frag, mesh))


def test_fragments_from_another_mesh_are_rejected():
    mesh = plane_mesh()
    frag = plane_fragments()
    bad = Fragments(torch.where(frag.pix_to_face >= 0, frag.pix_to_face + 5, -1), frag.zbuf, frag.bary_coords,
                    frag.dists)
    cams = StandInCameras([0.0, 0.0, 0.0])
    for cls in (HardPhongShader, HardFlatShader, HardGouraudShader):
        with pytest.raises(ValueError, match="pix_to_face"):
            cls(cameras=cams)(bad, mesh)
