"""Fragment math (barycentrics, depth, signed distance) against independent float64 references."""

import numpy as np
import pytest
import torch

from diffras.raster import Fragments, compute_fragments, rasterize, rasterize_visibility


def _pixel_center(i, j, H, W):
    S = min(H, W)
    return (W - 2 * j - 1) / S, (H - 2 * i - 1) / S


def _seg_dist2(p, a, b):
    # Independent: closest point by projecting with numpy and clipping the parameter.
    p, a, b = map(np.asarray, (p, a, b))
    ab = b - a
    t = np.clip(np.dot(p - a, ab) / np.dot(ab, ab), 0.0, 1.0)
    d = p - (a + t * ab)
    return float(d @ d)


def _reference(face, p, perspective_correct):
    """bary (screen or perspective-correct), depth, signed squared distance by linear algebra."""
    face = np.asarray(face, dtype=np.float64)
    A = np.vstack([face[:, 0], face[:, 1], np.ones(3)])
    b = np.linalg.solve(A, np.array([p[0], p[1], 1.0]))
    z = face[:, 2]
    if perspective_correct:
        w = b / z
        depth = 1.0 / w.sum()
        b = w / w.sum()
    else:
        depth = float(b @ z)
    d = min(_seg_dist2(p, face[i, :2], face[(i + 1) % 3, :2]) for i in range(3))
    inside = (b > 0).all()
    return b, depth, -d if inside else d


@pytest.mark.parametrize("perspective_correct", [False, True])
def test_fragments_match_linear_algebra_reference(perspective_correct):
    g = torch.Generator().manual_seed(1)
    F = 6
    xy = torch.rand(F, 3, 2, generator=g, dtype=torch.float64) * 2.4 - 1.2
    z = torch.rand(F, 3, 1, generator=g, dtype=torch.float64) * 3 + 0.5
    fv = torch.cat([xy, z], -1)
    H, W = 9, 12
    frags = rasterize(fv.reshape(-1, 3), torch.arange(3 * F).view(F, 3), (H, W), faces_per_pixel=4,
                      blur_radius=0.01, perspective_correct=perspective_correct, clip_barycentric_coords=False,
                      backend="reference")
    filled = (frags.pix_to_face >= 0).nonzero().tolist()
    assert len(filled) > 30
    for n, i, j, k in filled:
        f = int(frags.pix_to_face[n, i, j, k])
        b, depth, sd = _reference(fv[f].numpy(), _pixel_center(i, j, H, W), perspective_correct)
        np.testing.assert_allclose(frags.bary_coords[n, i, j, k].numpy(), b, rtol=1e-6, atol=1e-6)
        assert frags.zbuf[n, i, j, k].item() == pytest.approx(depth, rel=1e-6, abs=1e-7)
        assert frags.dists[n, i, j, k].item() == pytest.approx(sd, rel=1e-6, abs=1e-9)
    empty = frags.pix_to_face < 0
    assert (frags.zbuf[empty] == -1).all() and (frags.dists[empty] == -1).all()
    assert (frags.bary_coords[empty] == -1).all()


def test_clipped_barycentrics_are_nonnegative_and_normalised():
    fv = torch.tensor([[[0.6, 0.6, 1.0], [-0.6, 0.6, 2.0], [0.0, -0.6, 3.0]]], dtype=torch.float64)
    frags = rasterize(fv.reshape(-1, 3), torch.arange(3).view(1, 3), 16, blur_radius=0.05,
                      perspective_correct=True, backend="reference")  # clip defaults to True: blur > 0
    m = frags.pix_to_face >= 0
    b = frags.bary_coords[m]
    assert (b >= 0).all()
    torch.testing.assert_close(b.sum(-1), torch.ones_like(b[:, 0]))
    outside = frags.dists[m] > 0
    assert outside.any() and (~outside).any()
    # zbuf is interpolated with the clipped barycentrics (PyTorch3D's order).
    z = fv[0, :, 2]
    torch.testing.assert_close(frags.zbuf[m], (b * z).sum(-1))


def test_compute_fragments_on_given_pix_to_face_matches_rasterize():
    fv = torch.tensor([[[0.9, 0.8, 1.0], [-0.7, 0.6, 1.5], [0.1, -0.9, 2.0]],
                       [[0.5, -0.2, 0.8], [-0.5, -0.1, 1.2], [0.0, 0.9, 0.9]]], dtype=torch.float64)
    first, num = torch.tensor([0]), torch.tensor([2])
    p2f = rasterize_visibility(fv, first, num, (10, 7), faces_per_pixel=2, backend="reference")
    frags = compute_fragments(fv, p2f, perspective_correct=True)
    ref = rasterize(fv.reshape(-1, 3), torch.arange(6).view(2, 3), (10, 7), faces_per_pixel=2,
                    perspective_correct=True, backend="reference")
    assert isinstance(frags, Fragments)
    for a, b in zip(frags, ref):
        torch.testing.assert_close(a, b)


def test_no_nan_for_degenerate_edge_on_and_behind_camera_faces():
    fv = torch.tensor([
        [[0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0]],        # point
        [[-1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 0.0, 1.0]],       # collinear (edge-on)
        [[0.5, 0.5, -1.0], [-0.5, 0.5, -1.0], [0.0, -0.5, -2.0]],   # behind the camera
        [[0.5, 0.5, 1.0], [-0.5, 0.5, -1.0], [0.0, -0.5, 2.0]],     # crossing z = 0
        [[1e-5, 0.0, 1.0], [-1e-5, 0.0, 1.0], [0.0, 2.0, 1.0]],     # sliver
        [[0.9, -0.9, 1.0], [-0.9, -0.9, 1.0], [0.0, -0.3, 1.0]],    # normal
    ], dtype=torch.float64, requires_grad=True)
    for blur in (0.0, 0.02):
        for pc in (False, True):
            frags = rasterize(fv.reshape(-1, 3), torch.arange(18).view(6, 3), 12, faces_per_pixel=3,
                              blur_radius=blur, perspective_correct=pc, backend="reference")
            for t in (frags.zbuf, frags.bary_coords, frags.dists):
                assert torch.isfinite(t).all()
            hit = set(frags.pix_to_face.unique().tolist())
            assert hit <= {-1, 4, 5} and 5 in hit
            loss = frags.zbuf.sum() + frags.bary_coords.sum() + frags.dists.sum()
            (g,) = torch.autograd.grad(loss, fv)
            assert torch.isfinite(g).all()
    # The fragment math itself is finite even on slots a visibility backend would never fill.
    p2f = torch.arange(6).view(1, 1, 6, 1).expand(1, 2, 6, 1).contiguous()
    for pc in (False, True):
        frags = compute_fragments(fv, p2f, perspective_correct=pc, clip_barycentric_coords=True)
        loss = sum(t.sum() for t in (frags.zbuf, frags.bary_coords, frags.dists))
        (g,) = torch.autograd.grad(loss, fv)
        assert all(torch.isfinite(t).all() for t in (frags.zbuf, frags.bary_coords, frags.dists, g))


def test_sparse_k50_only_filled_slots_hold_values():
    fv = torch.tensor([[[0.5, 0.5, 1.0], [-0.5, 0.5, 1.0], [0.0, -0.5, 1.0]]])
    frags = rasterize(fv.reshape(-1, 3), torch.arange(3).view(1, 3), 8, faces_per_pixel=50, backend="reference")
    assert frags.pix_to_face.shape == (1, 8, 8, 50)
    assert (frags.pix_to_face[..., 1:] == -1).all()
    assert (frags.zbuf[..., 1:] == -1).all()
    assert (frags.zbuf[..., 0][frags.pix_to_face[..., 0] >= 0] == 1.0).all()


def _packed_scene():
    fv = torch.tensor([[[0.9, 0.8, 1.0], [-0.7, 0.6, 1.5], [0.1, -0.9, 2.0]],
                       [[0.5, -0.2, 0.8], [-0.5, -0.1, 1.2], [0.0, 0.9, 0.9]]], dtype=torch.float64)
    return rasterize(fv.reshape(-1, 3), torch.arange(6).view(2, 3), (9, 7), faces_per_pixel=3, blur_radius=0.02,
                     perspective_correct=True, backend="reference")


def test_packed_view_contract():
    frags = _packed_scene()
    N, H, W, K = frags.pix_to_face.shape
    slot = frags.slot_idx
    P = frags.num_filled
    assert P == int((frags.pix_to_face >= 0).sum()) and P > 20
    assert (slot[1:] > slot[:-1]).all()  # strictly increasing: each pixel's fragments contiguous, nearest first
    n, rest = slot // (H * W * K), slot % (H * W * K)
    y, x, k = rest // (W * K), (rest // K) % W, rest % K
    assert torch.equal(frags.face_idx, frags.pix_to_face[n, y, x, k])
    assert torch.equal(frags.image_idx, n) and torch.equal(frags.pixel_idx, (n * H + y) * W + x)
    assert torch.equal(frags.bary_packed, frags.bary_coords[n, y, x, k])
    assert torch.equal(frags.zbuf_packed, frags.zbuf[n, y, x, k])
    assert torch.equal(frags.dists_packed, frags.dists[n, y, x, k])
    # A Fragments built from the dense tensors (PyTorch3D's constructor) has the same packed view.
    dense = Fragments(*frags)
    for name in ("slot_idx", "face_idx", "bary_packed", "zbuf_packed", "dists_packed"):
        assert torch.equal(getattr(dense, name), getattr(frags, name)), name
    # Immutable, as PyTorch3D's frozen dataclass.
    with pytest.raises(AttributeError):
        frags.zbuf = frags.zbuf


def test_packed_fragments_dense_view_is_lazy_differentiable_and_filled_with_minus_one():
    p2f = torch.tensor([[-1, 2], [0, -1]]).view(1, 2, 1, 2)
    slot = torch.tensor([1, 2])
    bary = torch.tensor([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]], requires_grad=True)
    zbuf = torch.tensor([2.0, 3.0], requires_grad=True)
    dists = torch.tensor([-0.1, 0.2], requires_grad=True)
    frags = Fragments.from_packed(p2f, slot, bary, zbuf, dists)
    assert frags.zbuf.flatten().tolist() == [-1.0, 2.0, 3.0, -1.0]
    assert frags.bary_coords.reshape(-1, 3)[0].tolist() == [-1.0, -1.0, -1.0]
    assert frags.zbuf is frags.zbuf  # cached
    (frags.zbuf.sum() + frags.dists.sum() * 2 + frags.bary_coords.sum()).backward()
    assert zbuf.grad.tolist() == [1.0, 1.0] and dists.grad.tolist() == [2.0, 2.0]
    assert bary.grad.tolist() == [[1.0] * 3] * 2
    near = frags.nearest()
    assert near.pix_to_face.shape == (1, 2, 1, 1) and near.slot_idx.tolist() == [1]
    assert near.zbuf.flatten().tolist() == [-1.0, 3.0] and near.face_idx.tolist() == [0]
    det = frags.detach()
    assert not det.zbuf_packed.requires_grad and torch.equal(det.zbuf, frags.zbuf.detach())


def test_as_fragments_wraps_pytorch3d_like_objects_and_rejects_others():
    from collections import namedtuple

    from diffras.raster.fragments import as_fragments

    frags = _packed_scene()
    P3D = namedtuple("Fragments", "pix_to_face zbuf bary_coords dists")
    wrapped = as_fragments(P3D(*frags))
    assert torch.equal(wrapped.bary_packed, frags.bary_packed)
    assert as_fragments(frags) is frags
    with pytest.raises(TypeError, match="fragments"):
        as_fragments(object())
    bad = Fragments(frags.pix_to_face, frags.zbuf, frags.bary_coords[..., :2], frags.dists)
    with pytest.raises(ValueError, match="bary_coords"):
        bad.bary_packed
