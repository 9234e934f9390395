"""silhouette_iou and psnr against loop-based numpy versions of their stated definitions."""
import math

import numpy as np
import pytest
import torch

from diffras.losses import psnr, silhouette_iou


def _np_hard_iou(p, t, thr):
    out = []
    for n in range(p.shape[0]):
        inter = union = 0
        for i in range(p.shape[1]):
            for j in range(p.shape[2]):
                a, b = p[n, i, j] > thr, t[n, i, j] > thr
                inter += a and b
                union += a or b
        out.append(inter / union if union else 1.0)
    return np.array(out)


def _np_soft_iou(p, t):
    out = []
    for n in range(p.shape[0]):
        inter = (p[n] * t[n]).sum()
        union = (p[n] + t[n] - p[n] * t[n]).sum()
        out.append(inter / union if union > 0 else 1.0)
    return np.array(out)


def test_hard_iou_matches_bruteforce():
    g = torch.Generator().manual_seed(0)
    p = torch.rand(3, 7, 5, generator=g, dtype=torch.float64)
    t = torch.rand(3, 7, 5, generator=g, dtype=torch.float64)
    p[2] = 0.0
    t[2] = 0.1  # both empty after thresholding: IoU 1
    ref = _np_hard_iou(p.numpy(), t.numpy(), 0.5)
    np.testing.assert_allclose(silhouette_iou(p, t, reduction="none").numpy(), ref)
    np.testing.assert_allclose(silhouette_iou(p, t).item(), ref.mean())
    np.testing.assert_allclose(silhouette_iou(p, t, reduction="sum").item(), ref.sum())
    ref3 = _np_hard_iou(p.numpy(), t.numpy(), 0.3)
    np.testing.assert_allclose(silhouette_iou(p, t, threshold=0.3, reduction="none").numpy(), ref3)
    # bool masks are used as they are
    np.testing.assert_allclose(silhouette_iou(p > 0.5, t > 0.5, reduction="none").numpy(), ref)
    assert silhouette_iou(p, t, reduction="none").dtype == torch.float64


def test_hard_iou_closed_form():
    a = torch.zeros(1, 4, 4)
    b = torch.zeros(1, 4, 4)
    a[0, :2] = 1  # 8 pixels
    b[0, 1:3] = 1  # 8 pixels, 4 shared
    assert silhouette_iou(a, b).item() == pytest.approx(4 / 12)
    assert silhouette_iou(a, a).item() == 1.0


def test_soft_iou_matches_bruteforce_and_hard_on_binary():
    g = torch.Generator().manual_seed(1)
    p = torch.rand(2, 6, 4, generator=g, dtype=torch.float64)
    t = torch.rand(2, 6, 4, generator=g, dtype=torch.float64)
    np.testing.assert_allclose(silhouette_iou(p, t, threshold=None, reduction="none").numpy(),
                               _np_soft_iou(p.numpy(), t.numpy()))
    pb, tb = (p > 0.5).double(), (t > 0.5).double()
    torch.testing.assert_close(silhouette_iou(pb, tb, threshold=None), silhouette_iou(pb, tb))


def test_soft_iou_gradcheck_and_empty_pair():
    g = torch.Generator().manual_seed(2)
    p = torch.rand(2, 5, 4, generator=g, dtype=torch.float64).mul(0.8).add(0.1).requires_grad_(True)
    t = torch.rand(2, 5, 4, generator=g, dtype=torch.float64).mul(0.8).add(0.1).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: silhouette_iou(a, b, threshold=None), (p, t))
    z = torch.zeros(1, 3, 3, dtype=torch.float64, requires_grad=True)
    v = silhouette_iou(z, torch.zeros(1, 3, 3, dtype=torch.float64), threshold=None)
    assert v.item() == 1.0
    v.backward()
    assert torch.isfinite(z.grad).all()


def test_psnr_matches_definition():
    g = torch.Generator().manual_seed(3)
    a = torch.rand(3, 4, 5, 3, generator=g, dtype=torch.float64)
    b = torch.rand(3, 4, 5, 3, generator=g, dtype=torch.float64)
    ref = []
    for n in range(3):
        mse = float(((a[n].numpy() - b[n].numpy()) ** 2).mean())
        ref.append(10 * math.log10(1.0 / mse))
    np.testing.assert_allclose(psnr(a, b, reduction="none").numpy(), ref)
    np.testing.assert_allclose(psnr(a, b).item(), np.mean(ref))
    np.testing.assert_allclose(psnr(a * 255, b * 255, max_val=255.0, reduction="none").numpy(), ref)
    # a uniform error of 0.1 is 20 dB for unit images
    c = torch.full((1, 2, 2), 0.5, dtype=torch.float64)
    assert psnr(c, c + 0.1).item() == pytest.approx(20.0)
    assert psnr(c, c).item() == math.inf


def test_psnr_gradcheck():
    g = torch.Generator().manual_seed(4)
    a = torch.rand(2, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.rand(2, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(psnr, (a, b))


def test_bad_input_named():
    m = torch.rand(2, 4, 4)
    with pytest.raises(ValueError, match="pred"):
        silhouette_iou(m[0], m[0])
    with pytest.raises(ValueError, match="target"):
        silhouette_iou(m, torch.rand(2, 4, 5))
    with pytest.raises(TypeError, match="pred"):
        silhouette_iou(m.long(), m)
    with pytest.raises(TypeError, match="target"):
        silhouette_iou(m, [[0.0]])
    bad = m.clone()
    bad[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="target"):
        silhouette_iou(m, bad)
    with pytest.raises(ValueError, match="pred"):
        silhouette_iou(m * 2, m, threshold=None)
    with pytest.raises(TypeError, match="threshold"):
        silhouette_iou(m, m, threshold="0.5")
    with pytest.raises(ValueError, match="reduction"):
        silhouette_iou(m, m, reduction="max")
    with pytest.raises(ValueError, match="target"):
        psnr(m, m[:1])
    with pytest.raises(TypeError, match="target"):
        psnr(m, m.double())
    with pytest.raises(TypeError, match="pred"):
        psnr(m.long(), m)
    with pytest.raises(ValueError, match="pred"):
        psnr(bad, m)
    with pytest.raises(ValueError, match="max_val"):
        psnr(m, m, max_val=0.0)
    with pytest.raises(ValueError, match="pred"):
        psnr(torch.rand(0, 3), torch.rand(0, 3))


def test_device_mismatch_named():
    m = torch.rand(2, 4, 4)
    with pytest.raises(ValueError, match="target"):
        silhouette_iou(m, torch.rand(2, 4, 4, device="meta"))
    with pytest.raises(ValueError, match="target"):
        psnr(m, torch.rand(2, 4, 4, device="meta"))
