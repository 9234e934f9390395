"""interpolate_face_attributes against a per-fragment Python loop; gradients; bad input."""
import pytest
import torch

from diffras.textures.interpolate import interpolate_face_attributes


def random_inputs(N=2, H=3, W=4, K=2, F=7, D=5, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    p2f = torch.randint(-1, F, (N, H, W, K), generator=g)
    bary = torch.rand(N, H, W, K, 3, generator=g, dtype=dtype)
    bary = torch.where(p2f[..., None] >= 0, bary, torch.full_like(bary, -1.0))
    attrs = torch.randn(F, 3, D, generator=g, dtype=dtype)
    return p2f, bary, attrs


def loop_reference(p2f, bary, attrs):
    N, H, W, K = p2f.shape
    out = torch.zeros(N, H, W, K, attrs.shape[-1], dtype=attrs.dtype)
    for n in range(N):
        for y in range(H):
            for x in range(W):
                for k in range(K):
                    f = int(p2f[n, y, x, k])
                    if f >= 0:
                        for i in range(3):
                            out[n, y, x, k] += float(bary[n, y, x, k, i]) * attrs[f, i]
    return out


def test_matches_loop_and_zero_where_empty():
    p2f, bary, attrs = random_inputs()
    out = interpolate_face_attributes(p2f, bary, attrs)
    assert out.shape == (2, 3, 4, 2, 5)
    assert torch.allclose(out, loop_reference(p2f, bary, attrs), atol=1e-12)
    assert torch.equal(out[p2f < 0], torch.zeros_like(out[p2f < 0]))
    assert (p2f < 0).any() and (p2f >= 0).any()


def test_constant_attribute_and_vertex_corners():
    # Barycentrics summing to 1 reproduce a constant; one-hot barycentrics pick the corner.
    p2f, bary, attrs = random_inputs()
    bary = bary / bary.sum(-1, keepdim=True)
    const = torch.full_like(attrs, 2.5)
    out = interpolate_face_attributes(p2f, bary, const)
    assert torch.allclose(out[p2f >= 0], torch.full_like(out[p2f >= 0], 2.5))
    onehot = torch.zeros_like(bary)
    onehot[..., 1] = 1
    out = interpolate_face_attributes(p2f.clamp(min=0), onehot, attrs)
    assert torch.equal(out, attrs[p2f.clamp(min=0), 1])


def test_all_empty_and_dtype_promotion():
    p2f = torch.full((1, 2, 2, 1), -1)
    out = interpolate_face_attributes(p2f, torch.zeros(1, 2, 2, 1, 3), torch.rand(3, 3, 2, dtype=torch.float64))
    assert out.dtype == torch.float64 and torch.equal(out, torch.zeros(1, 2, 2, 1, 2, dtype=torch.float64))


def test_gradcheck():
    p2f, bary, attrs = random_inputs(N=1, H=2, W=3, K=2, F=4, D=2)
    bary.requires_grad_(True)
    attrs.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda b, a: interpolate_face_attributes(p2f, b, a), (bary, attrs))
    # Empty slots get no gradient.
    interpolate_face_attributes(p2f, bary, attrs).sum().backward()
    assert torch.equal(bary.grad[p2f < 0], torch.zeros_like(bary.grad[p2f < 0]))


def test_bad_input():
    p2f, bary, attrs = random_inputs(dtype=torch.float32)
    with pytest.raises(TypeError, match="pix_to_face"):
        interpolate_face_attributes(p2f.float(), bary, attrs)
    with pytest.raises(TypeError, match="bary_coords"):
        interpolate_face_attributes(p2f, bary.long(), attrs)
    with pytest.raises(TypeError, match="face_attributes"):
        interpolate_face_attributes(p2f, bary, attrs.long())
    with pytest.raises(ValueError, match="pix_to_face"):
        interpolate_face_attributes(p2f[0], bary, attrs)
    with pytest.raises(ValueError, match="bary_coords"):
        interpolate_face_attributes(p2f, bary[..., :2], attrs)
    with pytest.raises(ValueError, match="bary_coords"):
        interpolate_face_attributes(p2f, bary[:, :2], attrs)  # H mismatch
    with pytest.raises(ValueError, match="face_attributes"):
        interpolate_face_attributes(p2f, bary, attrs[:, :2])
    with pytest.raises(ValueError, match="pix_to_face.*out of range"):
        interpolate_face_attributes(p2f, bary, attrs[:3])
    with pytest.raises(ValueError, match="pix_to_face"):
        interpolate_face_attributes(p2f.clamp(max=-2), bary, attrs)
    with pytest.raises(ValueError, match="face_attributes.*finite"):
        interpolate_face_attributes(p2f, bary, attrs.clone().fill_(float("nan")))
    bad = bary.clone()
    bad[p2f >= 0] = float("inf")
    with pytest.raises(ValueError, match="bary_coords.*finite"):
        interpolate_face_attributes(p2f, bad, attrs)
    # NaN in *empty* slots is ignored (those slots are never read).
    ok = bary.clone()
    ok[p2f < 0] = float("nan")
    assert torch.isfinite(interpolate_face_attributes(p2f, ok, attrs)).all()
    with pytest.raises(ValueError, match="device"):
        interpolate_face_attributes(p2f, bary, attrs.to("meta"))
