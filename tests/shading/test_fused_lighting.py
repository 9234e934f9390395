"""The fused CPU Phong lighting kernel against the torch path it replaces (shade._light_torch): values and
gradients to every input (points, normals, texels, light and material properties, camera), float64 and
float32, and gradcheck in float64."""
import pytest
import torch
from torch.autograd import gradcheck

from diffras.shading import DirectionalLights, Materials, PointLights
from diffras.shading._lighting_numba import fused_phong
from diffras.shading.shade import _fusable, _light_torch

D = torch.float64


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
