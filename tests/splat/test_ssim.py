"""The training loss's SSIM against a literal per-window computation, and its gradient."""
import math

import torch

from diffras.splat.trainer import ssim


def _ssim_brute(a, b, window=11, sigma=1.5):
    """Per output pixel and channel: Gaussian-weighted means, variances and covariance over its window."""
    B, H, W, C = a.shape
    r = window // 2
    w = torch.tensor([[math.exp(-((i - r) ** 2 + (j - r) ** 2) / (2 * sigma ** 2)) for j in range(window)]
                      for i in range(window)], dtype=torch.float64)
    w = w / w.sum()
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    vals = []
    for n in range(B):
        for i in range(H - window + 1):
            for j in range(W - window + 1):
                for c in range(C):
                    x, y = a[n, i:i + window, j:j + window, c], b[n, i:i + window, j:j + window, c]
                    mx, my = (w * x).sum(), (w * y).sum()
                    vx, vy = (w * x * x).sum() - mx * mx, (w * y * y).sum() - my * my
                    cxy = (w * x * y).sum() - mx * my
                    vals.append((2 * mx * my + c1) * (2 * cxy + c2) / ((mx * mx + my * my + c1) * (vx + vy + c2)))
    return torch.stack(vals).mean()


def test_ssim_matches_per_window_reference():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(2, 14, 13, 3, generator=g, dtype=torch.float64)
    b = (a + 0.2 * torch.randn(a.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    torch.testing.assert_close(ssim(a, b), _ssim_brute(a, b), rtol=1e-12, atol=1e-12)
    assert abs(float(ssim(a, a)) - 1.0) < 1e-12


def test_ssim_gradient():
    g = torch.Generator().manual_seed(1)
    a = torch.rand(1, 13, 12, 1, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.rand(1, 13, 12, 1, generator=g, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda t: ssim(t, b), (a,))
