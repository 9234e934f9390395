"""HarmonicEmbedding: PyTorch3D's output layout, written out element by element."""
import math

import pytest
import torch

from diffras.implicit import HarmonicEmbedding


@pytest.mark.parametrize("logspace", [True, False])
@pytest.mark.parametrize("append_input", [True, False])
def test_layout_matches_loop(logspace, append_input):
    n, omega = 4, 0.7
    emb = HarmonicEmbedding(n_harmonic_functions=n, omega_0=omega, logspace=logspace, append_input=append_input)
    x = torch.randn(5, 3, dtype=torch.float64)
    freqs = [omega * (2.0**k if logspace else 1.0 + k * (2.0 ** (n - 1) - 1.0) / (n - 1)) for k in range(n)]
    for row in range(5):
        want = [math.sin(f * float(x[row, i])) for i in range(3) for f in freqs]
        want += [math.cos(f * float(x[row, i])) for i in range(3) for f in freqs]
        if append_input:
            want += x[row].tolist()
        assert torch.allclose(emb(x)[row], torch.tensor(want, dtype=torch.float64), atol=1e-6)
    assert emb(x).shape[-1] == emb.get_output_dim(3) == HarmonicEmbedding.get_output_dim_static(3, n, append_input)


def test_diag_cov_damps_each_harmonic():
    emb = HarmonicEmbedding(3, append_input=False)
    x, cov = torch.randn(2, 3), torch.rand(2, 3)
    plain = emb(x).reshape(2, 2, 3, 3)
    damped = emb(x, diag_cov=cov).reshape(2, 2, 3, 3)
    f = torch.tensor([1.0, 2.0, 4.0])
    assert torch.allclose(damped, plain * torch.exp(-0.5 * cov[:, None, :, None] * f**2))


def test_bad_input():
    with pytest.raises(ValueError, match="n_harmonic_functions"):
        HarmonicEmbedding(-1)
    with pytest.raises(TypeError, match="x: expected"):
        HarmonicEmbedding()(torch.ones(3, dtype=torch.long))
