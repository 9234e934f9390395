"""sample_texture, the plain-tensor sampling verb: grid_sample reference, explicit lod, gradients, bad input."""
import pytest
import torch
import torch.nn.functional as F

from diffras.textures.mipmap import sample_texture


def grid_sample_batch(maps, uv, padding_mode="border", align_corners=True):
    img = maps.flip(1).permute(0, 3, 1, 2)
    grid = (uv * 2 - 1).reshape(uv.shape[0], 1, -1, 2)
    out = F.grid_sample(img, grid, padding_mode=padding_mode, align_corners=align_corners)
    return out[:, :, 0].permute(0, 2, 1).reshape(uv.shape[:-1] + (maps.shape[-1],))


@pytest.mark.parametrize("align_corners", [True, False])
def test_batch_matches_grid_sample(align_corners):
    g = torch.Generator().manual_seed(0)
    maps = torch.rand(2, 5, 6, 3, generator=g, dtype=torch.float64)
    uv = torch.rand(2, 3, 4, 2, generator=g, dtype=torch.float64) * 1.6 - 0.3
    got = sample_texture(maps, uv, align_corners=align_corners)
    assert got.shape == (2, 3, 4, 3)
    assert torch.allclose(got, grid_sample_batch(maps, uv, "border", align_corners), atol=1e-12)
    got = sample_texture(maps, uv, align_corners=align_corners, padding_mode="mirror")
    assert torch.allclose(got, grid_sample_batch(maps, uv, "reflection", align_corners), atol=1e-12)


def test_explicit_lod_selects_and_blends_levels():
    g = torch.Generator().manual_seed(1)
    maps = torch.rand(1, 8, 8, 2, generator=g, dtype=torch.float64)
    uv = torch.rand(1, 20, 2, generator=g, dtype=torch.float64)
    level1 = F.avg_pool2d(maps.permute(0, 3, 1, 2), 2).permute(0, 2, 3, 1)
    level0 = grid_sample_batch(maps, uv, align_corners=False)
    want1 = grid_sample_batch(level1, uv, align_corners=False)
    lod = torch.ones(1, 20, dtype=torch.float64)
    assert torch.allclose(sample_texture(maps, uv, lod=lod, align_corners=False), want1, atol=1e-12)
    got = sample_texture(maps, uv, lod=lod * 0.25, align_corners=False)
    assert torch.allclose(got, 0.75 * level0 + 0.25 * want1, atol=1e-12)
    # Magnification (lod <= 0, or -inf) is level 0; huge lod is the 1 x 1 mean.
    assert torch.allclose(sample_texture(maps, uv, lod=-lod * float("inf"), align_corners=False), level0)
    top = sample_texture(maps, uv, lod=lod * 50, align_corners=False)
    assert torch.allclose(top, maps.mean(dim=(1, 2))[:, None].expand_as(top))


def test_gradcheck():
    maps = torch.rand(2, 3, 4, 2, dtype=torch.float64, requires_grad=True)
    uv = (torch.rand(2, 5, 2, dtype=torch.float64) * 1.4 - 0.2).requires_grad_(True)
    lod = torch.rand(2, 5, dtype=torch.float64) * 2
    assert torch.autograd.gradcheck(lambda m, u: sample_texture(m, u, padding_mode="wrap"), (maps, uv))
    assert torch.autograd.gradcheck(lambda m: sample_texture(m, uv.detach(), lod=lod), (maps,))


def test_bad_input():
    maps, uv = torch.rand(2, 4, 4, 3), torch.rand(2, 5, 2)
    with pytest.raises(ValueError, match="maps"):
        sample_texture(maps[0], uv)
    with pytest.raises(TypeError, match="maps"):
        sample_texture(maps.long(), uv)
    with pytest.raises(ValueError, match="maps.*finite"):
        sample_texture(maps * float("nan"), uv)
    with pytest.raises(ValueError, match="uv"):
        sample_texture(maps, uv[:1])
    with pytest.raises(ValueError, match="uv"):
        sample_texture(maps, uv[..., :1])
    with pytest.raises(ValueError, match="uv.*finite"):
        sample_texture(maps, uv / 0)
    with pytest.raises(ValueError, match="lod"):
        sample_texture(maps, uv, lod=torch.zeros(2, 4))
    with pytest.raises(ValueError, match="padding_mode"):
        sample_texture(maps, uv, padding_mode="edge")
    with pytest.raises(ValueError, match="sampling_mode"):
        sample_texture(maps, uv, sampling_mode="cubic")
    with pytest.raises(ValueError, match="device"):
        sample_texture(maps, uv.to("meta"))
    with pytest.raises(ValueError, match="maps"):
        sample_texture(torch.rand(2, 0, 4, 3), uv)
