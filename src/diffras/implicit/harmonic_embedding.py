"""NeRF's positional encoding (and MIP-NeRF's integrated variant), as PyTorch3D's ``HarmonicEmbedding``."""
from __future__ import annotations

import math
from typing import Optional

import torch

from .._validation import _describe, check_float, check_int

__all__ = ["HarmonicEmbedding"]


class HarmonicEmbedding(torch.nn.Module):
    """Map each coordinate ``x[..., i]`` to ``sin(f_k x_i)``, ``cos(f_k x_i)`` for frequencies ``f_k``.

    Output layout (PyTorch3D's), for input ``x`` (..., dim) and ``n = n_harmonic_functions``:
    ``[sin(f_0 x_0) .. sin(f_{n-1} x_0), sin(f_0 x_1) .., ..., cos(f_0 x_0) .., ..., x_0 .. x_{dim-1}]``,
    i.e. all sines (dim-major, frequency-minor), then all cosines, then ``x`` itself if ``append_input``:
    shape (..., dim * (2 n + append_input)).

    Frequencies: ``omega_0 * 2**k`` (``logspace=True``) or ``omega_0 * linspace(1, 2**(n-1), n)``.

    ``forward(x, diag_cov=None)``: with ``diag_cov`` (..., dim) (MIP-NeRF's Gaussian variances) each
    harmonic is damped by ``exp(-0.5 f_k^2 diag_cov_i)``.
    """

    def __init__(self, n_harmonic_functions: int = 6, omega_0: float = 1.0, logspace: bool = True, append_input: bool = True) -> None:
        super().__init__()
        n = check_int(n_harmonic_functions, "n_harmonic_functions", min=0)
        omega_0 = check_float(omega_0, "omega_0")
        if logspace:
            freqs = 2.0 ** torch.arange(n, dtype=torch.float32)
        else:
            freqs = torch.linspace(1.0, 2.0 ** (n - 1), n, dtype=torch.float32)
        self.register_buffer("_frequencies", freqs * omega_0, persistent=False)
        self.register_buffer("_zero_half_pi", torch.tensor([0.0, 0.5 * math.pi]), persistent=False)
        self.append_input = bool(append_input)

    def forward(self, x: torch.Tensor, diag_cov: Optional[torch.Tensor] = None, **kwargs) -> torch.Tensor:
        """x: (..., dim) float -> (..., dim * (2 n + append_input))."""
        if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() < 1:
            raise TypeError(f"x: expected a floating-point tensor of shape (..., dim), got {_describe(x)}")
        freqs = self._frequencies.to(x.dtype)
        # One sin call on [x f, x f + pi/2] (cos(a) = sin(a + pi/2)): (..., 2, dim, n).
        embed = (x[..., None] * freqs)[..., None, :, :] + self._zero_half_pi.to(x.dtype)[:, None, None]
        embed = embed.sin()
        if diag_cov is not None:
            if not isinstance(diag_cov, torch.Tensor) or diag_cov.shape != x.shape:
                raise ValueError(f"diag_cov: expected a tensor of the shape of x {tuple(x.shape)}, got {_describe(diag_cov)}")
            embed = embed * torch.exp(-0.5 * diag_cov[..., None] * freqs**2)[..., None, :, :]
        embed = embed.reshape(*x.shape[:-1], -1)
        return torch.cat((embed, x), dim=-1) if self.append_input else embed

    @staticmethod
    def get_output_dim_static(input_dims: int, n_harmonic_functions: int, append_input: bool) -> int:
        """Size of the output's last dimension."""
        return input_dims * (2 * n_harmonic_functions + int(append_input))

    def get_output_dim(self, input_dims: int = 3) -> int:
        return self.get_output_dim_static(input_dims, len(self._frequencies), self.append_input)
