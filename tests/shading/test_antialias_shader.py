"""The composed tier's antialiased hard shading: same kernel as diffras.nv.antialias, silhouette
gradients that match finite differences of a supersampled hard render (see tests/nv/test_antialias.py
for how close analytic antialiasing can be, and why)."""
import torch
import torch.nn.functional as F

from diffras.cameras import FoVPerspectiveCameras, look_at_view_transform
from diffras.raster import MeshRasterizer, RasterSettings
from diffras.render import MeshRenderer
from diffras.shading import (AmbientLights, AntialiasedHardPhongShader, AntialiasedShader, HardFlatShader,
                             HardPhongShader, TexturesVertex)
from diffras.structures import Meshes


def cube(offset):
    v = torch.tensor([[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)], dtype=torch.float64)
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    f = torch.tensor([t for a, b, c, d in quads for t in ((a, b, c), (a, c, d))])
    rot = torch.tensor([[0.8, -0.36, 0.48], [0.6, 0.48, -0.64], [0.0, 0.8, 0.6]], dtype=torch.float64)
    verts = v @ rot.T + offset
    return Meshes([verts], [f], textures=TexturesVertex([torch.ones_like(verts)]))


def render_alpha(offset, size, shader_cls):
    R, T = look_at_view_transform(3.0, 10.0, 20.0)
    cams = FoVPerspectiveCameras(R=R.double(), T=T.double(), fov=45.0)
    lights = AmbientLights(ambient_color=((1.0, 1.0, 1.0),), device="cpu")
    renderer = MeshRenderer(MeshRasterizer(cams, RasterSettings(size)), shader_cls(cameras=cams, lights=lights))
    return renderer(cube(offset))[0, ..., 3]


def test_interior_unchanged_and_outline_smoothed():
    z = torch.zeros(3, dtype=torch.float64)
    hard = render_alpha(z, 48, HardPhongShader)
    aa = render_alpha(z, 48, AntialiasedHardPhongShader)
    interior = (-F.max_pool2d(-hard[None, None], 3, 1, 1))[0, 0] == 1
    assert torch.equal(aa[interior], hard[interior])
    changed = aa != hard
    assert 20 < changed.sum() < 200 and ((aa > 0) & (aa < 1)).sum() > 20


def test_silhouette_gradient_matches_supersampled_finite_differences():
    size, ss = 32, 8
    gy, gx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    w = (gx + 0.5 * gy + 0.3 * gx * gy).double()
    p = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    (render_alpha(p, size, AntialiasedHardPhongShader) * w).sum().backward()

    @torch.no_grad()
    def loss(q):
        big = render_alpha(q, size * ss, HardPhongShader)
        return float((F.avg_pool2d(big[None, None], ss)[0, 0] * w).sum())

    h = 0.02  # world units: about 0.3 pixel at this distance
    fd = torch.tensor([(loss(e) - loss(-e)) / (2 * h) for e in torch.eye(3, dtype=torch.float64) * h], dtype=torch.float64)
    cos = float(torch.dot(p.grad, fd) / (p.grad.norm() * fd.norm()))
    print("cos", cos, "ratio", float(p.grad.norm() / fd.norm()))
    assert cos > 0.97 and 0.85 < float(p.grad.norm() / fd.norm()) < 1.15, (p.grad, fd)


def test_wrapper_equals_subclass_and_has_no_gradient_without_it():
    z = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    R, T = look_at_view_transform(3.0, 10.0, 20.0)
    cams = FoVPerspectiveCameras(R=R.double(), T=T.double(), fov=45.0)
    raster = MeshRasterizer(cams, RasterSettings(24))
    a = MeshRenderer(raster, AntialiasedShader(HardFlatShader(cameras=cams)))(cube(z))
    b = MeshRenderer(raster, AntialiasedShader(HardFlatShader()))(cube(z), cameras=cams)
    assert torch.equal(a, b)
    wts = torch.rand(24, 24, dtype=torch.float64)

    def grad_of(alpha):
        if not alpha.requires_grad:
            return torch.zeros(3, dtype=torch.float64)
        g = torch.autograd.grad((alpha * wts).sum(), z, allow_unused=True)[0]
        return torch.zeros(3, dtype=torch.float64) if g is None else g

    hard_alpha = MeshRenderer(raster, HardFlatShader(cameras=cams))(cube(z))[0, ..., 3]
    assert (grad_of(hard_alpha) == 0).all()  # a hard alpha has no silhouette gradient at all
    assert grad_of(a[0, ..., 3]).abs().sum() > 0
