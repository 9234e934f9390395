"""Supersampling antialiasing of ``diffras render``: box_downsample against a brute-force per-pixel loop."""
import pytest
import torch

from diffras.workflows.scene import box_downsample


def _brute(images, f):
    n, h, w, c = images.shape
    out = torch.zeros(n, -(-h // f), -(-w // f), c, dtype=images.dtype)
    for b in range(n):
        for y in range(out.shape[1]):
            for x in range(out.shape[2]):
                block = images[b, y * f : (y + 1) * f, x * f : (x + 1) * f].reshape(-1, c)
                if c == 4:
                    a = block[:, 3]
                    cov = a.mean()
                    rgb = (block[:, :3] * a[:, None]).sum(0) / a.sum() if a.sum() > 0 else block[:, :3].mean(0)
                    out[b, y, x] = torch.cat([rgb, cov[None]])
                else:
                    out[b, y, x] = block.mean(0)
    return out


@pytest.mark.parametrize("shape, f", [((2, 6, 9, 4), 3), ((1, 7, 5, 4), 2), ((1, 6, 6, 3), 2), ((1, 4, 4, 1), 4)])
def test_box_downsample_matches_brute_force(shape, f):
    g = torch.Generator().manual_seed(0)
    images = torch.rand(shape, generator=g, dtype=torch.float64)
    if shape[-1] == 4:
        images[..., 3] = (torch.rand(shape[:-1], generator=g) > 0.5).double()  # hard coverage
        images[0, :f, :f, 3] = 0  # one fully empty output pixel
    torch.testing.assert_close(box_downsample(images, f), _brute(images, f))


def test_premultiplied_average_composites_like_the_samples():
    # Compositing the filtered RGBA over any background equals filtering the composited samples.
    g = torch.Generator().manual_seed(1)
    images = torch.rand(1, 6, 6, 4, generator=g, dtype=torch.float64)
    images[..., 3] = (images[..., 3] > 0.4).double()
    bg = torch.tensor([0.1, 0.7, 0.3], dtype=torch.float64)
    over = lambda x: x[..., :3] * x[..., 3:] + bg * (1 - x[..., 3:])  # noqa: E731
    small = box_downsample(images, 3)
    want = over(images).reshape(1, 2, 3, 2, 3, 3).mean(dim=(2, 4))
    torch.testing.assert_close(over(small), want)


def test_factor_one_is_identity():
    x = torch.rand(1, 3, 3, 4)
    assert box_downsample(x, 1) is x
