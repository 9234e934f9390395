"""The fused CPU Phong lighting kernel against the torch path it replaces (shade._light_torch): values and
gradients to every input (points, normals, texels, light and material properties, camera), float64 and
float32, and gradcheck in float64."""
import pytest
import torch
from torch.autograd import gradcheck

from diffras.shading import DirectionalLights, Materials, PointLights
from diffras.shading._lighting_numba import fused_phong_faces
from diffras.shading.shade import _fusable, _light_torch

D = torch.float64


def fused_phong(points, normals, texels, image_idx, lights, materials, camera_position):
    """The fused kernel at given (P, 3) points and normals: one attribute row per fragment, weight 1."""
    rows = torch.arange(points.shape[0])
    attr = torch.cat([points, normals.to(points.dtype)], dim=-1)
    return fused_phong_faces(attr, rows[:, None], rows, attr.new_zeros((points.shape[0], 0)), image_idx, 1, texels,
                             lights, materials, camera_position)


def _scene(point: bool, dtype=D, P=50, seed=0, shininess=(64.0, 3.5)):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.rand(*s, generator=g, dtype=dtype)  # noqa: E731
    points = (r(P, 3) * 2 - 1).requires_grad_(True)
    normals = (r(P, 3) * 2 - 1).requires_grad_(True)  # many face away from the light: cos < 0 cases
    texels = r(P, 3).requires_grad_(True)
    image_idx = torch.randint(0, 2, (P,), generator=g)
    pos = (r(2, 3) * 4 - 2).requires_grad_(True)
    colors = [r(2, 3).requires_grad_(True) for _ in range(3)]
    lights = (PointLights(*colors, location=pos) if point else DirectionalLights(*colors, direction=pos))
    mats = Materials(r(1, 3).requires_grad_(True), r(2, 3).requires_grad_(True), r(1, 3).requires_grad_(True),
                     shininess=torch.tensor(shininess, dtype=dtype, requires_grad=True))
    cam = (r(2, 3) * 6 - 3).requires_grad_(True)
    leaves = [points, normals, texels, pos, *colors, mats.ambient_color, mats.diffuse_color, mats.specular_color,
              mats.shininess, cam]
    return (points, normals, texels, image_idx, lights, cam, mats), leaves


def _grads(out, leaves, seed=1):
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed), dtype=out.dtype)
    return torch.autograd.grad((out * g).sum(), leaves)


@pytest.mark.parametrize("point", [True, False])
@pytest.mark.parametrize("dtype,tol", [(D, 1e-10), (torch.float32, 2e-4)])
def test_fused_phong_matches_torch_values_and_gradients(point, dtype, tol):
    (points, normals, texels, idx, lights, cam, mats), leaves = _scene(point, dtype)
    assert _fusable(points, normals, texels, lights, cam, mats)
    a = fused_phong(points, normals, texels, idx, lights, mats, cam)
    b = _light_torch(points, normals, texels, idx, lights, cam, mats)
    torch.testing.assert_close(a, b, rtol=tol, atol=tol)
    for name, x, y in zip(range(len(leaves)), _grads(a, leaves), _grads(b, leaves)):
        torch.testing.assert_close(x, y, rtol=tol, atol=tol * 10, msg=f"gradient {name}")
    assert a.abs().sum() > 0


def test_fused_phong_shininess_zero_and_gradcheck():
    (points, normals, texels, idx, lights, cam, mats), leaves = _scene(True, P=8, shininess=(0.0, 2.5))
    a = fused_phong(points, normals, texels, idx, lights, mats, cam)
    b = _light_torch(points, normals, texels, idx, lights, cam, mats)
    torch.testing.assert_close(a, b)
    for x, y in zip(_grads(a, leaves), _grads(b, leaves)):
        torch.testing.assert_close(x, y)

    # gradcheck away from shininess 0 (its finite differences would step below the allowed range).
    _, leaves = _scene(True, P=8, seed=2, shininess=(3.0, 2.5))

    def run(*xs):
        p, n, t, pos, ca, cd, cs, ma, md, ms, sh, c = xs
        lt = PointLights(ca, cd, cs, location=pos)
        m = Materials(ma, md, ms, shininess=sh)
        return fused_phong(p, n, t, idx, lt, m, c)

    assert gradcheck(run, tuple(leaves))


def _faces_scene(dtype, P=60, V=12, F=10, seed=3):
    """Fragments on faces of a small vertex set, sorted by image (runs of 3 images, as slot order gives)."""
    g = torch.Generator().manual_seed(seed)
    attr = (torch.rand(V, 6, generator=g, dtype=dtype) * 2 - 1).requires_grad_(True)
    corner = torch.randint(0, V, (F, 3), generator=g)
    face = torch.randint(0, F, (P,), generator=g)
    bary = torch.rand(P, 3, generator=g, dtype=dtype)
    bary = (bary / bary.sum(1, keepdim=True)).requires_grad_(True)
    div = 7
    slot = torch.sort(torch.randint(0, 3 * div, (P,), generator=g)).values
    return attr, corner, face, bary, slot, div


@pytest.mark.parametrize("point", [True, False])
@pytest.mark.parametrize("dtype,tol", [(D, 1e-10), (torch.float32, 2e-4)])
def test_fused_phong_faces_matches_interpolation_then_torch(point, dtype, tol):
    """The interpolating kernel (what phong_packed runs) against interpolate_packed + _light_torch, with
    per-image cameras and lights (three images, fragments in runs) and gradients to every input."""
    from diffras.textures.interpolate import interpolate_packed

    attr, corner, face, bary, slot, div = _faces_scene(dtype)
    (_, _, texels, _, lights, cam, mats), leaves = _scene(point, dtype, P=face.shape[0])
    image = slot // div
    # Three images: batch-3 camera and light position (the scene's have 2 rows; extend them).
    cam3 = torch.cat([cam, cam[:1] * 0.5])
    pos = lights.location if point else lights.direction
    pos3 = torch.cat([pos, pos[1:] * -1.0])
    lights3 = (PointLights(lights.ambient_color[:1], lights.diffuse_color[:1], lights.specular_color[:1], location=pos3)
               if point else DirectionalLights(lights.ambient_color[:1], lights.diffuse_color[:1],
                                               lights.specular_color[:1], direction=pos3))
    mats1 = Materials(mats.ambient_color, mats.diffuse_color[:1], mats.specular_color, shininess=mats.shininess[:1])
    ins = [attr, bary, texels, pos, lights.ambient_color, lights.diffuse_color, lights.specular_color,
           mats.ambient_color, mats.diffuse_color, mats.specular_color, mats.shininess, cam]
    a = fused_phong_faces(attr, corner, face, bary, slot, div, texels, lights3, mats1, cam3)
    pix = interpolate_packed(face, bary, attr[corner], fused=False)
    b = _light_torch(pix[:, :3], pix[:, 3:], texels, image, lights3, cam3, mats1)
    torch.testing.assert_close(a, b, rtol=tol, atol=tol)
    g = torch.randn(a.shape, generator=torch.Generator().manual_seed(1), dtype=dtype)
    ga = torch.autograd.grad((a * g).sum(), ins, retain_graph=True)  # the cat-ed props are shared by a and b
    for i, (x, y) in enumerate(zip(ga, torch.autograd.grad((b * g).sum(), ins))):
        torch.testing.assert_close(x, y, rtol=tol, atol=tol * 10, msg=f"gradient {i}")
    assert a.abs().sum() > 0 and image.unique().numel() == 3


def test_fused_phong_faces_gradcheck():
    attr, corner, face, bary, slot, div = _faces_scene(D, P=9, V=5, F=4, seed=5)
    (_, _, texels, _, lights, cam, mats), _ = _scene(True, P=9, seed=6, shininess=(3.0, 2.5))

    def run(at, b, t, c, loc, sh):
        lt = PointLights(lights.ambient_color[:1], lights.diffuse_color[:1], lights.specular_color[:1], location=loc)
        m = Materials(mats.ambient_color, mats.diffuse_color[:1], mats.specular_color, shininess=sh)
        return fused_phong_faces(at, corner, face, b, slot, div, t, lt, m, c)

    cam3 = torch.cat([cam, cam[:1] * 0.5]).detach().requires_grad_(True)
    loc3 = torch.cat([lights.location, lights.location[:1] * 0.3]).detach().requires_grad_(True)
    sh = torch.tensor([3.0, 2.5, 4.0], dtype=D, requires_grad=True)
    assert gradcheck(run, (attr, bary, texels, cam3, loc3, sh))
