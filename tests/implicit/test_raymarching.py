"""Ray marchers against a literal float64 loop over the samples of each ray; gradients; bad input."""
import pytest
import torch

from diffras.implicit import AbsorptionOnlyRaymarcher, EmissionAbsorptionRaymarcher


def _ea_loop(d, f, s, eps):
    """d (R, P), f (R, P, C): the emission-absorption sum written out sample by sample."""
    R, P = d.shape
    out = torch.zeros(R, f.shape[-1] + 1, dtype=torch.float64)
    for r in range(R):
        for k in range(P):
            absorption = 1.0
            for j in range(0, k - s + 1):
                absorption *= 1.0 + eps - float(d[r, j])
            out[r, :-1] += float(d[r, k]) * absorption * f[r, k]
        transmission = 1.0
        for k in range(P):
            transmission *= 1.0 - float(d[r, k])
        out[r, -1] = 1.0 - transmission
    return out


@pytest.mark.parametrize("surface_thickness", [1, 2, 5])
def test_emission_absorption_matches_loop(surface_thickness):
    d = torch.rand(2, 3, 7, 1, dtype=torch.float64)
    d[0, 0, 2] = 1.0  # a fully opaque sample: later samples must still get (eps-sized) weights
    f = torch.rand(2, 3, 7, 4, dtype=torch.float64)
    out = EmissionAbsorptionRaymarcher(surface_thickness)(rays_densities=d, rays_features=f)
    assert out.shape == (2, 3, 5)
    ref = _ea_loop(d.reshape(6, 7), f.reshape(6, 7, 4), surface_thickness, 1e-10).reshape(2, 3, 5)
    assert torch.allclose(out, ref, rtol=1e-12, atol=1e-12)


def test_emission_absorption_eps_and_float32():
    d = torch.rand(5, 9, 1)
    f = torch.rand(5, 9, 3)
    out = EmissionAbsorptionRaymarcher()(d, f, eps=0.01)
    ref = _ea_loop(d[..., 0].double(), f.double(), 1, 0.01)
    assert out.dtype == torch.float32 and torch.allclose(out.double(), ref, atol=1e-6)


def test_absorption_only_matches_loop():
    d = torch.rand(4, 6, 1, dtype=torch.float64)
    out = AbsorptionOnlyRaymarcher()(rays_densities=d)
    assert out.shape == (4, 1)
    ref = _ea_loop(d[..., 0], torch.zeros(4, 6, 1, dtype=torch.float64), 1, 0.0)[:, -1:]
    assert torch.allclose(out, ref)


def test_gradcheck():
    d = (0.05 + 0.9 * torch.rand(2, 6, 1, dtype=torch.float64)).requires_grad_()
    f = torch.rand(2, 6, 3, dtype=torch.float64, requires_grad=True)
    for s in (1, 3):
        assert torch.autograd.gradcheck(lambda d, f: EmissionAbsorptionRaymarcher(s)(d, f, eps=1e-3), (d, f))
    assert torch.autograd.gradcheck(lambda d: AbsorptionOnlyRaymarcher()(d), (d,))


def test_bad_input():
    m = EmissionAbsorptionRaymarcher()
    with pytest.raises(ValueError, match="rays_densities: expected shape"):
        m(torch.rand(3, 4, 2), torch.rand(3, 4, 3))
    with pytest.raises(ValueError, match="rays_features: expected shape"):
        m(torch.rand(3, 4, 1), torch.rand(3, 5, 3))
    with pytest.raises(TypeError, match="rays_features"):
        m(torch.rand(3, 4, 1), None)
    with pytest.raises(ValueError, match="NaN"):
        m(torch.full((3, 4, 1), float("nan")), torch.rand(3, 4, 3))
    with pytest.raises(ValueError, match="surface_thickness"):
        EmissionAbsorptionRaymarcher(0)
    with pytest.warns(UserWarning, match="outside the valid range"):
        m(torch.full((3, 4, 1), 1.5), torch.rand(3, 4, 3))
