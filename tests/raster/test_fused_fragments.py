"""The fused numba fragment kernel equals the torch autograd path: values and gradients."""
import pytest
import torch
from torch.autograd import gradcheck

from diffras.raster import compute_fragments, rasterize, rasterize_visibility

D = torch.float64


def _scene(F=30, seed=0, dtype=D):
    g = torch.Generator().manual_seed(seed)
    return torch.cat([torch.rand(F, 3, 2, generator=g) * 2.4 - 1.2, torch.rand(F, 3, 1, generator=g) * 2 + 0.5], -1).to(dtype)


def _weighted(frags, w):
    return sum((t * wt).sum() for t, wt in zip((frags.zbuf, frags.bary_coords, frags.dists), w))


@pytest.mark.parametrize("perspective_correct", [False, True])
@pytest.mark.parametrize("clip", [False, True])
def test_fused_equals_torch_path_values_and_gradients(perspective_correct, clip):
    fv = _scene()
    p2f = rasterize_visibility(fv, torch.tensor([0, 12]), torch.tensor([12, 18]), (17, 13), faces_per_pixel=4,
                               blur_radius=0.02, perspective_correct=perspective_correct,
                               clip_barycentric_coords=clip, backend="reference")
    assert (p2f >= 0).sum() > 100
    a, b = fv.clone().requires_grad_(True), fv.clone().requires_grad_(True)
    kw = dict(perspective_correct=perspective_correct, clip_barycentric_coords=clip)
    fa = compute_fragments(a, p2f, fused=True, **kw)
    fb = compute_fragments(b, p2f, fused=False, **kw)
    for x, y in zip(fa, fb):
        torch.testing.assert_close(x, y, rtol=1e-12, atol=1e-12)
    w = [torch.randn_like(t) for t in (fa.zbuf, fa.bary_coords, fa.dists)]
    (ga,) = torch.autograd.grad(_weighted(fa, w), a)
    (gb,) = torch.autograd.grad(_weighted(fb, w), b)
    torch.testing.assert_close(ga, gb, rtol=1e-9, atol=1e-9)


def test_fused_float32_close_to_torch_path():
    fv = _scene(dtype=torch.float32)
    p2f = rasterize_visibility(fv, torch.tensor([0]), torch.tensor([30]), (16, 16), faces_per_pixel=3,
                               blur_radius=0.01, clip_barycentric_coords=True)
    fa = compute_fragments(fv, p2f, fused=True, clip_barycentric_coords=True)
    fb = compute_fragments(fv, p2f, fused=False, clip_barycentric_coords=True)
    assert fa.zbuf.dtype == torch.float32
    for x, y in zip(fa, fb):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-5)


def test_rasterize_shared_topology_fused_vs_torch_gradients():
    g = torch.Generator().manual_seed(4)
    N, V = 2, 7
    verts = torch.cat([torch.rand(N, V, 2, generator=g, dtype=D) * 2 - 1, torch.rand(N, V, 1, generator=g, dtype=D) + 1], -1)
    faces = torch.tensor([[0, 1, 2], [2, 3, 4], [4, 5, 6], [0, 3, 6]])
    kw = dict(faces_per_pixel=3, blur_radius=0.01, perspective_correct=True)
    a, b = verts.clone().requires_grad_(True), verts.clone().requires_grad_(True)
    fa = rasterize(a, faces, (9, 11), backend="numba", **kw)    # fused kernel on (verts, faces)
    fb = rasterize(b, faces, (9, 11), backend="reference", **kw)  # torch autograd path
    for x, y in zip(fa, fb):
        torch.testing.assert_close(x, y, rtol=1e-12, atol=1e-12)
    w = [torch.randn_like(t) for t in (fa.zbuf, fa.bary_coords, fa.dists)]
    (ga,) = torch.autograd.grad(_weighted(fa, w), a)
    (gb,) = torch.autograd.grad(_weighted(fb, w), b)
    torch.testing.assert_close(ga, gb, rtol=1e-9, atol=1e-9)


def test_fused_gradcheck_and_unused_outputs():
    fv = _scene(F=4, seed=2)
    p2f = rasterize_visibility(fv, torch.tensor([0]), torch.tensor([4]), (6, 5), faces_per_pixel=2,
                               blur_radius=0.02, perspective_correct=True, backend="reference")
    fn = lambda x: tuple(compute_fragments(x, p2f, perspective_correct=True, fused=True))[1:]  # noqa: E731
    assert gradcheck(fn, (fv.clone().requires_grad_(True),), eps=1e-6, atol=1e-6, rtol=1e-5)
    # Only one output used: the others' gradients arrive as None.
    x = fv.clone().requires_grad_(True)
    compute_fragments(x, p2f, perspective_correct=True, fused=True).dists.sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("n,fill", [(0, 0.5), (1, 1.0), (1000, 0.0), (1000, 0.3), (70_001, 0.2), (200_000, 1.0)])
def test_filled_slots_matches_mask_and_nonzero(n, fill):
    """The parallel two-pass compaction (small inputs: one block; >= 2^16: 64 blocks, uneven last one)
    against torch's mask + nonzero + gather."""
    from diffras.raster._fragments_numba import filled_slots

    g = torch.Generator().manual_seed(n)
    flat = torch.randint(0, 50, (n,), generator=g)
    flat[torch.rand(n, generator=g) >= fill] = -1
    slot, face = filled_slots(flat)
    want = torch.nonzero(flat >= 0).squeeze(1)
    assert torch.equal(slot, want) and torch.equal(face, flat[want])
    assert slot.dtype == torch.int64 and face.dtype == torch.int64


def test_listed_slots_reads_only_each_pixels_list():
    """Packing from list lengths (the numba rasterizer's path) equals the mask + nonzero packing of the same
    lists, whatever the slots past each list hold."""
    from diffras.raster._fragments_numba import listed_slots

    g = torch.Generator().manual_seed(3)
    N, H, W, K = 2, 5, 7, 4
    counts = torch.randint(0, K + 1, (N, H, W), generator=g, dtype=torch.int32)
    lists = torch.randint(0, 100, (N, H, W, K), generator=g)
    listed = torch.arange(K) < counts[..., None].long()
    garbage = lists.masked_fill(~listed, 12345)  # what an uninitialised buffer might hold
    slot, face = listed_slots(garbage.reshape(-1), counts.reshape(-1), K)
    clean = lists.masked_fill(~listed, -1).reshape(-1)
    want = torch.nonzero(clean >= 0).squeeze(1)
    assert torch.equal(slot, want) and torch.equal(face, clean[want])
    empty = listed_slots(garbage.reshape(-1), torch.zeros(N * H * W, dtype=torch.int32), K)
    assert empty[0].numel() == 0 and empty[1].numel() == 0


def test_compute_fragments_refuses_bad_list_lengths():
    """Lengths that do not fit the lists (wrong shape, negative, above K) are a ValueError naming the argument,
    never an out-of-range read in the packing kernel."""
    fv = _scene(F=4)
    p2f = torch.full((1, 3, 4, 2), -1, dtype=torch.int64)
    for counts in (torch.zeros(1, 3, 5, dtype=torch.int32), torch.full((1, 3, 4), 3, dtype=torch.int32),
                   torch.full((1, 3, 4), -1, dtype=torch.int32)):
        with pytest.raises(ValueError, match="filled_per_pixel"):
            compute_fragments(fv, p2f, fused=True, filled_per_pixel=counts)
    ok = compute_fragments(fv, p2f, fused=True, filled_per_pixel=torch.zeros(1, 3, 4, dtype=torch.int32))
    assert ok.num_filled == 0
