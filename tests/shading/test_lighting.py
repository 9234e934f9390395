"""Lights and materials: PyTorch3D's reflection formulas against independent numpy versions."""
import math

import numpy as np
import pytest
import torch

from diffras.shading.lighting import AmbientLights, DirectionalLights, PointLights, SpotLights, diffuse, specular
from diffras.shading.materials import Materials


def _unit(v, eps=1e-6):
    return v / max(np.linalg.norm(v), eps)


def diffuse_np(n, color, d):
    return color * max(0.0, float(_unit(n) @ _unit(d)))


def specular_np(p, n, d, color, cam, shininess):
    n, l = _unit(n), _unit(d)
    c = float(n @ l)
    if c <= 0:
        return color * (0.0 ** shininess)
    v = _unit(cam - p)
    r = -l + 2 * c * n
    return color * max(0.0, float(v @ r)) ** shininess


def test_diffuse_closed_form():
    n = torch.tensor([[0.0, 0.0, -1.0]], dtype=torch.float64)
    for theta in (0.0, 0.3, 1.2, 2.0):
        d = torch.tensor([[math.sin(theta), 0.0, -math.cos(theta)]], dtype=torch.float64) * 3.0  # not unit
        out = diffuse(n, torch.tensor([[0.2, 0.4, 0.8]], dtype=torch.float64), d)
        want = torch.tensor([0.2, 0.4, 0.8], dtype=torch.float64) * max(0.0, math.cos(theta))
        torch.testing.assert_close(out[0], want)


def test_diffuse_specular_match_numpy_on_random_inputs():
    g = torch.Generator().manual_seed(1)
    B, P = 2, 50
    pts = torch.randn(B, P, 3, generator=g, dtype=torch.float64)
    nrm = torch.randn(B, P, 3, generator=g, dtype=torch.float64) * 0.3  # interpolated: not unit
    nrm[0, 0] = 0.0  # a zero normal (empty fragment) must give 0, not NaN
    loc = torch.randn(B, 3, generator=g, dtype=torch.float64) * 3
    col = torch.rand(B, 3, generator=g, dtype=torch.float64)
    cam = torch.randn(B, 3, generator=g, dtype=torch.float64) * 4
    shin = torch.tensor([10.0, 64.0], dtype=torch.float64)
    lights = PointLights(diffuse_color=col, specular_color=col * 0.5, location=loc)
    dif = lights.diffuse(nrm, pts)
    spec = lights.specular(nrm, pts, cam, shin)
    for b in range(B):
        for i in range(P):
            d = (loc[b] - pts[b, i]).numpy()
            np.testing.assert_allclose(dif[b, i].numpy(), diffuse_np(nrm[b, i].numpy(), col[b].numpy(), d), atol=1e-12)
            np.testing.assert_allclose(
                spec[b, i].numpy(),
                specular_np(pts[b, i].numpy(), nrm[b, i].numpy(), d, col[b].numpy() * 0.5, cam[b].numpy(), shin[b].item()),
                atol=1e-12)
    assert torch.isfinite(dif).all() and torch.isfinite(spec).all()
    assert (dif[0, 0] == 0).all()


def test_specular_peak_where_reflection_meets_camera():
    # Plane z = 0 with normal -z (towards a camera at z < 0), light direction l; the highlight is where the
    # mirror direction of l points at the camera, i.e. at the point on the plane seen along that mirror ray.
    l = torch.tensor([0.3, 0.2, -1.0], dtype=torch.float64)
    cam = torch.tensor([[0.0, 0.0, -2.0]], dtype=torch.float64)
    xs = torch.linspace(-2, 2, 401, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(xs, xs, indexing="xy"), -1).reshape(1, -1, 2)
    pts = torch.cat([grid, torch.zeros(1, grid.shape[1], 1, dtype=torch.float64)], -1)
    nrm = torch.tensor([0.0, 0.0, -1.0], dtype=torch.float64).expand_as(pts)
    lights = DirectionalLights(specular_color=(1.0, 1.0, 1.0), direction=l)
    s = lights.specular(nrm, pts, cam, torch.tensor([200.0], dtype=torch.float64))[0, :, 0]
    peak = pts[0, s.argmax()]
    # r = mirror of l = (-lx, -ly, lz)... the view ray from the peak must be parallel to r: peak = cam - t * r.
    lu = l / l.norm()
    r = -lu + 2 * (lu @ torch.tensor([0.0, 0.0, -1.0], dtype=torch.float64)) * torch.tensor([0.0, 0.0, -1.0], dtype=torch.float64)
    t = cam[0, 2] / r[2]
    want = cam[0] - t * r
    assert torch.allclose(peak[:2], want[:2], atol=0.011)
    assert s.max() > 0.999


def test_light_behind_surface_gives_no_specular_or_diffuse():
    nrm = torch.tensor([[[0.0, 0.0, -1.0]]])
    pts = torch.zeros(1, 1, 3)
    lights = DirectionalLights(direction=(0.0, 0.0, 1.0))  # from behind
    assert (lights.diffuse(nrm, pts) == 0).all()
    assert (lights.specular(nrm, pts, torch.tensor([[0.0, 0.0, 1.0]]), torch.tensor([1.0])) == 0).all()


def test_batch_broadcast_and_5d_points():
    pts = torch.randn(3, 2, 2, 4, 3)
    nrm = torch.randn(3, 2, 2, 4, 3)
    one = PointLights(location=(1.0, 2.0, -3.0))
    many = PointLights(location=torch.tensor([[1.0, 2.0, -3.0]]).expand(3, 3))
    assert len(one) == 1 and len(many) == 3
    torch.testing.assert_close(one.diffuse(nrm, pts), many.diffuse(nrm, pts))
    with pytest.raises(ValueError, match="location: expected a batch of 1 or 2"):
        many.diffuse(nrm[:2], pts[:2])
    # Per-batch light differs per image.
    two = DirectionalLights(direction=torch.tensor([[0.0, 1.0, 0.0], [0.0, -1.0, 0.0]]))
    n = torch.tensor([0.0, 1.0, 0.0]).expand(2, 5, 3)
    out = two.diffuse(n, torch.zeros(2, 5, 3))
    assert torch.allclose(out[0], torch.tensor(0.3)) and (out[1] == 0).all()


def test_packed_points_via_gather_props():
    lights = PointLights(location=torch.tensor([[0.0, 1.0, 0.0], [0.0, -1.0, 0.0]]))
    idx = torch.tensor([0, 0, 1, 1, 1])
    pts = torch.zeros(5, 3)
    n = torch.tensor([0.0, 1.0, 0.0]).expand(5, 3)
    out = lights.gather_props(idx).diffuse(n, pts)
    assert torch.allclose(out[:2], torch.tensor(0.3)) and (out[2:] == 0).all()


def test_spot_light_cone():
    spot = SpotLights(location=(0.0, 2.0, 0.0), direction=(0.0, -1.0, 0.0), inner_angle=20.0, outer_angle=30.0,
                      dtype=torch.float64)
    point = PointLights(location=(0.0, 2.0, 0.0), dtype=torch.float64)
    n = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64).expand(1, 4, 3)
    # angles from the axis: 0, 15 (inside inner), 25 (between), 45 (outside) degrees
    ang = torch.tensor([0.0, 15.0, 25.0, 45.0], dtype=torch.float64)
    pts = torch.stack([2 * torch.tan(torch.deg2rad(ang)), torch.zeros(4, dtype=torch.float64),
                       torch.zeros(4, dtype=torch.float64)], -1)[None]
    s, p = spot.diffuse(n, pts), point.diffuse(n, pts)
    torch.testing.assert_close(s[0, :2], p[0, :2])
    assert (s[0, 3] == 0).all()
    c = math.cos(math.radians(25))
    t = (c - math.cos(math.radians(30))) / (math.cos(math.radians(20)) - math.cos(math.radians(30)))
    torch.testing.assert_close(s[0, 2], p[0, 2] * (t * t * (3 - 2 * t)))


def test_ambient_lights_any_channels():
    amb = AmbientLights(ambient_color=(0.2, 0.4, 0.6, 0.8))
    out = amb.diffuse(torch.randn(2, 3, 3), torch.randn(2, 3, 3))
    assert out.shape == (2, 3, 4) and (out == 0).all()
    assert amb.specular(torch.randn(2, 3, 3), torch.randn(2, 3, 3), None, None).shape == (2, 3, 4)


def test_dtype_follows_points_and_props_keep_tensors():
    loc = torch.tensor([[0.0, 1.0, 0.0]], dtype=torch.float64, requires_grad=True)
    lights = PointLights(location=loc)
    assert lights.location is loc or lights.location.requires_grad
    assert lights.dtype == torch.float64 and lights.ambient_color.dtype == torch.float64
    out = PointLights().diffuse(torch.randn(1, 2, 3, dtype=torch.float64), torch.randn(1, 2, 3, dtype=torch.float64))
    assert out.dtype == torch.float64
    m = Materials(dtype=torch.float64)
    assert m.shininess.dtype == torch.float64 and m.shininess.shape == (1,)


def test_clone_detach_to_getitem():
    lights = PointLights(location=torch.randn(4, 3, requires_grad=True))
    assert not lights.detach().location.requires_grad
    c = lights.clone()
    assert torch.equal(c.location, lights.location) and c.location is not lights.location
    sub = lights[1:3]
    assert len(sub) == 2 and torch.equal(sub.location, lights.location[1:3])
    assert len(lights[2]) == 1 and sub.ambient_color.shape == (1, 3)
    assert lights.to(dtype=torch.float64).location.dtype == torch.float64
    with pytest.raises(IndexError):
        lights[7]


def test_gradcheck_lights_and_materials():
    g = torch.Generator().manual_seed(2)
    pts = torch.randn(2, 6, 3, generator=g, dtype=torch.float64)
    nrm = torch.randn(2, 6, 3, generator=g, dtype=torch.float64)
    cam = torch.tensor([[0.0, 0.0, -5.0]], dtype=torch.float64, requires_grad=True)
    loc = torch.tensor([[1.0, 2.0, -3.0], [-1.0, 1.0, -2.0]], dtype=torch.float64, requires_grad=True)
    dcol = torch.tensor([[0.3, 0.5, 0.7]], dtype=torch.float64, requires_grad=True)
    scol = torch.tensor([[0.9, 0.8, 0.7]], dtype=torch.float64, requires_grad=True)
    shin = torch.tensor([3.0, 5.0], dtype=torch.float64, requires_grad=True)

    def f(loc, dcol, scol, shin, cam):
        lt = PointLights(diffuse_color=dcol, specular_color=scol, location=loc)
        return lt.diffuse(nrm, pts) + lt.specular(nrm, pts, cam, shin)

    assert torch.autograd.gradcheck(f, (loc, dcol, scol, shin, cam))

    d = torch.tensor([[0.2, 1.0, -0.5]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda d: DirectionalLights(direction=d).specular(nrm, pts, cam.detach(), shin.detach()) +
        DirectionalLights(direction=d).diffuse(nrm, pts), (d,))


# ---- bad input ---------------------------------------------------------------------------------
@pytest.mark.parametrize("cls,arg", [(PointLights, "location"), (DirectionalLights, "direction"),
                                     (PointLights, "diffuse_color"), (DirectionalLights, "ambient_color")])
def test_lights_reject_nonfinite(cls, arg):
    with pytest.raises(ValueError, match=f"{arg}: expected finite"):
        cls(**{arg: (0.0, float("nan"), 1.0)})
    with pytest.raises(ValueError, match=f"{arg}: expected finite"):
        cls(**{arg: torch.tensor([[0.0, float("inf"), 1.0]])})


def test_lights_reject_bad_shapes_and_types():
    with pytest.raises(ValueError, match="location: expected shape"):
        PointLights(location=(0.0, 1.0))
    with pytest.raises(ValueError, match="direction: expected shape"):
        DirectionalLights(direction=torch.zeros(2, 2, 3))
    with pytest.raises(ValueError, match="specular_color: expected shape \\(N, 3\\)"):
        PointLights(specular_color=(1.0, 1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="batch 1 or N"):
        PointLights(location=torch.zeros(2, 3), diffuse_color=torch.zeros(3, 3))
    with pytest.raises(TypeError, match="location"):
        PointLights(location="up")
    # integer tensors are converted (like Python ints), not rejected
    assert PointLights(location=torch.tensor([[0, 1, 0]])).location.is_floating_point()
    with pytest.raises(ValueError, match="device"):
        PointLights(location=torch.zeros(1, 3, device="meta"), diffuse_color=torch.zeros(1, 3))
    with pytest.raises(ValueError, match="inner_angle, outer_angle"):
        SpotLights(inner_angle=40.0, outer_angle=30.0)
    with pytest.raises(ValueError, match="normals: expected the shape of points"):
        specular(torch.zeros(1, 4, 3), torch.zeros(1, 5, 3), torch.zeros(1, 3), torch.zeros(1, 3),
                 torch.zeros(1, 3), torch.ones(1))


def test_materials_validation():
    m = Materials(shininess=torch.tensor([10.0, 20.0]), diffuse_color=torch.rand(2, 3))
    assert len(m) == 2
    with pytest.raises(ValueError, match="shininess: expected finite"):
        Materials(shininess=float("nan"))
    with pytest.raises(ValueError, match="shininess: expected values >= 0"):
        Materials(shininess=-1.0)
    with pytest.raises(ValueError, match="shininess: expected a number or shape"):
        Materials(shininess=torch.ones(2, 2))
    with pytest.raises(ValueError, match="diffuse_color: expected shape \\(N, 3\\)"):
        Materials(diffuse_color=(1.0, 1.0))
    with pytest.raises(ValueError, match="ambient_color: expected finite"):
        Materials(ambient_color=(1.0, float("inf"), 1.0))
    with pytest.raises(ValueError, match="batch 1 or N"):
        Materials(ambient_color=torch.ones(2, 3), shininess=torch.ones(3))


@pytest.mark.parametrize("lights", [
    PointLights(location=torch.tensor([[0.5, 1.0, -2.0], [1.0, -1.0, 0.5]], dtype=torch.float64)),
    DirectionalLights(direction=(0.3, -0.2, -1.0), specular_color=(0.5, 0.4, 0.3)),
    SpotLights(location=(0.0, 0.0, -3.0), direction=(0.0, 0.0, 1.0), inner_angle=5.0, outer_angle=40.0),
    AmbientLights(),
])
def test_fused_diffuse_specular_equals_separate_terms(lights):
    g = torch.Generator().manual_seed(4)
    pts = torch.randn(2, 3, 5, 3, generator=g, dtype=torch.float64)
    nrm = torch.randn(2, 3, 5, 3, generator=g, dtype=torch.float64)
    cam = torch.tensor([[0.0, 0.0, -4.0], [1.0, 0.5, -3.0]], dtype=torch.float64)
    shin = torch.tensor([7.0, 30.0], dtype=torch.float64)
    d, s = lights.diffuse_specular(nrm, pts, cam, shin)
    torch.testing.assert_close(d, lights.diffuse(nrm, pts))
    torch.testing.assert_close(s, lights.specular(nrm, pts, cam, shin))


def test_assigning_a_property_revalidates_and_keeps_copies_consistent():
    lights = PointLights()
    lights.location = torch.tensor([[0.0, 0.0, 1.0]])  # PyTorch3D tutorial idiom
    assert torch.equal(lights.clone().location, torch.tensor([[0.0, 0.0, 1.0]]))
    assert torch.equal(lights.to(dtype=torch.float64).location, torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64))
    lights.location = torch.zeros(3, 3)
    assert len(lights) == 3 and len(lights[1:]) == 2
    with pytest.raises(ValueError, match="location: expected finite"):
        lights.location = torch.tensor([[0.0, float("nan"), 1.0]])
    with pytest.raises(ValueError, match="location: expected shape"):
        lights.location = torch.zeros(1, 2)
    with pytest.raises(ValueError, match="batch 1 or N"):
        lights.diffuse_color = torch.zeros(2, 3)
    m = Materials()
    with pytest.raises(ValueError, match="shininess: expected values >= 0"):
        m.shininess = -3.0
    assert float(m.shininess) == 64.0  # a rejected value leaves the object unchanged
    with pytest.raises(ValueError, match="specular_color: expected shape \\(N, 3\\)"):
        DirectionalLights().specular_color = (1.0, 1.0)
