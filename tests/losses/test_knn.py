"""knn_points / knn_gather against a brute-force numpy search."""
import numpy as np
import pytest
import torch

import diffras.losses.knn as knn_mod
from diffras.losses import knn_gather, knn_points


@pytest.fixture(params=["kdtree", "brute"])
def search(request, monkeypatch):
    """Run a test through the CPU k-d tree search and through the brute-force (any device) search."""
    monkeypatch.setattr(knn_mod, "_KDTREE_CPU", request.param == "kdtree")
    return request.param


def _np_knn(p1, p2, l1, l2, K, norm):
    """Loop-based reference: (dists, idx) padded with 0 as PyTorch3D documents."""
    N, P1, _ = p1.shape
    dists = np.zeros((N, P1, K))
    idx = np.zeros((N, P1, K), dtype=np.int64)
    for n in range(N):
        for i in range(l1[n]):
            d = []
            for j in range(l2[n]):
                diff = p1[n, i] - p2[n, j]
                d.append(float((diff**2).sum()) if norm == 2 else float(np.abs(diff).sum()))
            order = np.argsort(np.array(d), kind="stable")[:K]
            dists[n, i, : len(order)] = np.array(d)[order]
            idx[n, i, : len(order)] = order
    return dists, idx


@pytest.mark.parametrize("norm", [1, 2])
@pytest.mark.parametrize("K", [1, 3, 7])
@pytest.mark.parametrize("chunk", [None, 8, 200])
def test_knn_matches_bruteforce(norm, K, chunk, search):
    g = torch.Generator().manual_seed(10 * K + norm)
    p1 = torch.randn(3, 9, 4, dtype=torch.float64, generator=g)
    p2 = torch.randn(3, 6, 4, dtype=torch.float64, generator=g)
    l1 = torch.tensor([9, 4, 0])
    l2 = torch.tensor([6, 2, 5])  # cloud 1 has fewer than K points for K >= 3
    kw = {} if chunk is None else {"max_chunk_bytes": chunk}
    out = knn_points(p1, p2, l1, l2, norm=norm, K=K, return_nn=True, **kw)
    d_ref, i_ref = _np_knn(p1.numpy(), p2.numpy(), l1.tolist(), l2.tolist(), K, norm)
    np.testing.assert_allclose(out.dists.numpy(), d_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(out.idx.numpy(), i_ref)
    assert out.knn.shape == (3, 9, K, 4)
    np.testing.assert_allclose(out.knn.numpy(), knn_gather(p2, out.idx, l2).numpy() * (np.arange(9)[None, :, None, None] < l1.numpy()[:, None, None, None]))


def test_knn_gradcheck(search):
    g = torch.Generator().manual_seed(3)
    p1 = torch.randn(2, 5, 3, dtype=torch.float64, generator=g, requires_grad=True)
    p2 = torch.randn(2, 6, 3, dtype=torch.float64, generator=g, requires_grad=True)
    l1, l2 = torch.tensor([5, 3]), torch.tensor([6, 4])
    for norm in (1, 2):
        assert torch.autograd.gradcheck(
            lambda a, b: knn_points(a, b, l1, l2, norm=norm, K=2, return_nn=True)[::2], (p1, p2)
        )


def test_knn_gather_pads_missing_neighbours():
    x = torch.arange(12, dtype=torch.float64).reshape(2, 3, 2)
    idx = torch.tensor([[[2, 0]], [[1, 0]]])
    out = knn_gather(x, idx, torch.tensor([3, 1]))
    np.testing.assert_array_equal(out.numpy(), [[[[4, 5], [0, 1]]], [[[8, 9], [0, 0]]]])


def test_knn_bad_input():
    p = torch.randn(2, 4, 3)
    with pytest.raises(TypeError, match="p1"):
        knn_points(p.long(), p)
    with pytest.raises(ValueError, match="p2"):
        knn_points(p, torch.randn(3, 4, 3))
    with pytest.raises(ValueError, match="p2"):
        knn_points(p, torch.randn(2, 4, 2))
    with pytest.raises(TypeError, match="p2"):
        knn_points(p, p.double())
    with pytest.raises(ValueError, match="K"):
        knn_points(p, p, K=0)
    with pytest.raises(ValueError, match="norm"):
        knn_points(p, p, norm=3)
    with pytest.raises(ValueError, match="lengths1"):
        knn_points(p, p, lengths1=torch.tensor([5, 1]))
    with pytest.raises(TypeError, match="lengths2"):
        knn_points(p, p, lengths2=torch.tensor([1.0, 2.0]))
    bad = p.clone()
    bad[0, 1, 2] = float("nan")
    with pytest.raises(ValueError, match="p1"):
        knn_points(bad, p)
    with pytest.raises(ValueError, match="idx"):
        knn_gather(p, torch.tensor([[[4]], [[0]]]))


@pytest.mark.parametrize("norm", [1, 2])
def test_kdtree_equals_bruteforce_on_larger_clouds(norm, monkeypatch):
    g = torch.Generator().manual_seed(norm)
    p1 = torch.rand(2, 3000, 3, generator=g, dtype=torch.float64)
    p2 = torch.rand(2, 2000, 3, generator=g, dtype=torch.float64)
    l1, l2 = torch.tensor([3000, 1200]), torch.tensor([2000, 3])  # fewer than K points in cloud 1
    got = knn_points(p1, p2, l1, l2, norm=norm, K=5)
    monkeypatch.setattr(knn_mod, "_KDTREE_CPU", False)
    ref = knn_points(p1, p2, l1, l2, norm=norm, K=5)
    assert torch.equal(got.idx, ref.idx)
    torch.testing.assert_close(got.dists, ref.dists, rtol=0, atol=0)
    assert (got.idx[1, :, 3:] == 0).all() and (got.dists[1, :, 3:] == 0).all() and (got.dists[1, 1200:] == 0).all()


def test_high_dimensional_features_use_bruteforce_and_match(monkeypatch):
    # D = 16 goes to the brute-force search even on the CPU; compare with the loop reference.
    g = torch.Generator().manual_seed(5)
    p1 = torch.randn(1, 40, 16, generator=g, dtype=torch.float64)
    p2 = torch.randn(1, 30, 16, generator=g, dtype=torch.float64)
    out = knn_points(p1, p2, K=3)
    d_ref, i_ref = _np_knn(p1.numpy(), p2.numpy(), [40], [30], 3, 2)
    np.testing.assert_array_equal(out.idx.numpy(), i_ref)
    np.testing.assert_allclose(out.dists.numpy(), d_ref, rtol=1e-12)
