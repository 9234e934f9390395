"""The fused CPU volume kernel (trilinear sampling + emission-absorption) against the torch path:
values, gradients (also through broadcast volumes and into the rays), gradcheck."""
import pytest
import torch

from diffras.cameras import FoVPerspectiveCameras, look_at_view_transform
from diffras.implicit import EmissionAbsorptionRaymarcher, NDCMultinomialRaysampler, VolumeRenderer
from diffras.implicit._compositing import emission_absorption_torch
from diffras.implicit._volume_ea_numba import volume_emission_absorption
from diffras.implicit.renderer import sample_volumes
from diffras.structures import Volumes


def _torch_reference(dens, feats, orig, dirs, lengths, shift, eps, align):
    vol = Volumes(dens, feats, align_corners=align)
    pts = orig[..., None, :] + lengths[..., None] * dirs[..., None, :]
    d, f = sample_volumes(vol, pts, "bilinear", "zeros")
    return emission_absorption_torch(d[..., 0], f, shift, eps)


def _inputs(dtype, broadcast, B=3, R=7, P=9, C=3):
    g = torch.Generator().manual_seed(3)
    base_d = torch.rand(1 if broadcast else B, 1, 4, 5, 6, generator=g, dtype=dtype)
    base_f = torch.rand(1 if broadcast else B, C, 4, 5, 6, generator=g, dtype=dtype)
    orig = (torch.rand(B, R, 3, generator=g, dtype=dtype) - 0.5) * 2.4   # some rays start outside [-1, 1]
    dirs = torch.randn(B, R, 3, generator=g, dtype=dtype) * 0.4
    lengths = torch.sort(torch.rand(B, R, P, generator=g, dtype=dtype) * 3, dim=-1).values
    return base_d, base_f, orig, dirs, lengths


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("broadcast", [False, True])
@pytest.mark.parametrize("align,shift", [(True, 1), (False, 3)])
def test_values_and_gradients_match_torch(dtype, broadcast, align, shift):
    base_d, base_f, orig, dirs, lengths = _inputs(dtype, broadcast)
    B = orig.shape[0]
    leaves = [t.clone().requires_grad_() for t in (base_d, base_f, orig, dirs, lengths)]
    results = []
    for fused in (True, False):
        xs = [t.detach().clone().requires_grad_() for t in leaves]
        d, f = (x.expand(B, -1, -1, -1, -1) for x in xs[:2])
        if fused:
            out, dmm = volume_emission_absorption(d, f, *xs[2:], shift, 1e-4, align)
        else:
            out = _torch_reference(d, f, *xs[2:], shift, 1e-4, align)
        g = torch.linspace(-1, 1, out.numel(), dtype=dtype).reshape(out.shape)
        (out * g).sum().backward()
        results.append((out.detach(), [x.grad for x in xs]))
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-9, atol=1e-11)
    assert torch.allclose(results[0][0], results[1][0], **tol)
    for name, a, b in zip(("densities", "features", "origins", "directions", "lengths"), results[0][1], results[1][1]):
        assert torch.allclose(a, b, **tol), name


def test_gradcheck():
    base_d, base_f, orig, dirs, lengths = _inputs(torch.float64, False, B=2, R=3, P=5, C=2)
    base_d = 0.1 + 0.8 * base_d
    args = [t.requires_grad_() for t in (base_d, base_f, orig, dirs, lengths)]
    assert torch.autograd.gradcheck(lambda *a: volume_emission_absorption(*a, 2, 1e-3, True)[0], args)


def test_volume_renderer_fused_equals_torch_path():
    R, T = look_at_view_transform(dist=2.5, azim=torch.tensor([10.0, 130.0]))
    cams = FoVPerspectiveCameras(R=R, T=T, fov=50.0)
    grid_d = torch.rand(1, 1, 6, 7, 8, requires_grad=True)
    grid_f = torch.rand(1, 3, 6, 7, 8, requires_grad=True)
    renderer = VolumeRenderer(NDCMultinomialRaysampler(image_width=10, image_height=9, n_pts_per_ray=20, min_depth=1.0,
                                                       max_depth=4.0), EmissionAbsorptionRaymarcher())
    outs = []
    for fused in (True, False):
        renderer.use_fused = fused
        vol = Volumes(grid_d.expand(2, -1, -1, -1, -1), grid_f.expand(2, -1, -1, -1, -1), voxel_size=0.25)
        images, bundle = renderer(cameras=cams, volumes=vol)
        grads = torch.autograd.grad(images.square().sum(), (grid_d, grid_f))
        outs.append((images.detach(), grads))
    assert outs[0][0].shape == (2, 9, 10, 4)
    assert torch.allclose(outs[0][0], outs[1][0], atol=1e-5)
    for a, b in zip(outs[0][1], outs[1][1]):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)
