"""chamfer_distance against a loop-based numpy version of PyTorch3D's definition."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import diffras.losses.knn as knn_mod
from diffras.losses import chamfer_distance


def _np_one_way(a, b, an, bn, norm, abs_cos):
    """Per-point terms from cloud a to cloud b (plain loops)."""
    d = np.zeros(len(a))
    c = np.zeros(len(a))
    for i in range(len(a)):
        best, best_j = np.inf, -1
        for j in range(len(b)):
            diff = a[i] - b[j]
            v = (diff**2).sum() if norm == 2 else np.abs(diff).sum()
            if v < best:
                best, best_j = v, j
        d[i] = best if best_j >= 0 else 0.0
        if an is not None:
            nb = bn[best_j] if best_j >= 0 else np.zeros_like(an[i])
            cos = an[i] @ nb / (max(np.linalg.norm(an[i]), 1e-6) * max(np.linalg.norm(nb), 1e-6))
            c[i] = 1 - (abs(cos) if abs_cos else cos)
    return d, c


def _np_chamfer(xs, ys, xns, yns, weights, batch_red, point_red, norm, single, abs_cos):
    N = len(xs)
    w = np.ones(N) if weights is None else weights
    per_x, per_y, tot, tot_n = [], [], np.zeros(N), np.zeros(N)
    for n in range(N):
        xn = None if xns is None else xns[n]
        yn = None if yns is None else yns[n]
        dx, cx = _np_one_way(xs[n], ys[n], xn, yn, norm, abs_cos)
        dy, cy = _np_one_way(ys[n], xs[n], yn, xn, norm, abs_cos)
        dx, cx, dy, cy = dx * w[n], cx * w[n], dy * w[n], cy * w[n]
        per_x.append((dx, cx))
        per_y.append((dy, cy))
        if point_red == "max":
            mx = dx.max() if len(dx) else 0.0
            my = dy.max() if len(dy) else 0.0
            tot[n] = mx if single else max(mx, my)
        else:
            def red(v, length):
                return v.sum() / (max(length, 1) if point_red == "mean" else 1)

            tot[n] = red(dx, len(xs[n])) + (0 if single else red(dy, len(ys[n])))
            tot_n[n] = red(cx, len(xs[n])) + (0 if single else red(cy, len(ys[n])))
    if point_red is None:
        return per_x, per_y
    if batch_red is None:
        return tot, tot_n
    div = 1.0 if batch_red == "sum" else (N if weights is None else (w.sum() if w.sum() > 0 else 1.0))
    return tot.sum() / div, tot_n.sum() / div


def _clouds(seed, lengths, P, D=3, dtype=torch.float64, garbage=0.0):
    g = torch.Generator().manual_seed(seed)
    pts = torch.randn(len(lengths), P, D, dtype=dtype, generator=g)
    nrm = torch.randn(len(lengths), P, D, dtype=dtype, generator=g)
    for n, length in enumerate(lengths):
        pts[n, length:] = garbage
        nrm[n, length:] = garbage
    lst = [pts[n, :length].numpy() for n, length in enumerate(lengths)]
    nlst = [nrm[n, :length].numpy() for n, length in enumerate(lengths)]
    return pts, nrm, torch.tensor(lengths), lst, nlst


CASES = [
    # (batch_red, point_red, norm, single, normals, weights, abs_cos)
    ("mean", "mean", 2, False, True, False, True),
    ("sum", "mean", 2, False, True, True, False),
    (None, "sum", 1, False, True, False, True),
    ("mean", "sum", 1, True, False, True, True),
    ("mean", "max", 2, False, False, False, True),
    (None, "max", 1, True, False, True, True),
    ("sum", "max", 2, False, False, True, True),
    ("mean", "mean", 2, True, True, True, True),
]


@pytest.mark.parametrize("case", CASES)
def test_matches_bruteforce_heterogeneous(case):
    batch_red, point_red, norm, single, normals, use_w, abs_cos = case
    x, xn, xl, xs, xns = _clouds(1, [7, 3, 5, 0], 7)
    y, yn, yl, ys, yns = _clouds(2, [4, 6, 1, 3], 6)
    w = torch.tensor([0.5, 2.0, 1.0, 3.0], dtype=torch.float64) if use_w else None
    loss, loss_n = chamfer_distance(
        x, y, xl, yl, xn if normals else None, yn if normals else None, weights=w,
        batch_reduction=batch_red, point_reduction=point_red, norm=norm,
        single_directional=single, abs_cosine=abs_cos,
    )
    ref, ref_n = _np_chamfer(xs, ys, xns if normals else None, yns if normals else None,
                             None if w is None else w.numpy(), batch_red, point_red, norm, single, abs_cos)
    np.testing.assert_allclose(loss.numpy(), ref, rtol=1e-10, atol=1e-12)
    if normals:
        np.testing.assert_allclose(loss_n.numpy(), ref_n, rtol=1e-10, atol=1e-12)
    else:
        assert loss_n is None


@pytest.mark.parametrize("single", [False, True])
def test_point_reduction_none_gives_per_point_terms(single):
    x, xn, xl, xs, xns = _clouds(3, [5, 2], 5)
    y, yn, yl, ys, yns = _clouds(4, [3, 4], 4)
    loss, loss_n = chamfer_distance(x, y, xl, yl, xn, yn, batch_reduction=None, point_reduction=None,
                                    single_directional=single)
    per_x, per_y = _np_chamfer(xs, ys, xns, yns, None, None, None, 2, single, True)
    cx, cnx = (loss, loss_n) if single else (loss[0], loss_n[0])
    for n in range(2):
        np.testing.assert_allclose(cx[n, : len(xs[n])].numpy(), per_x[n][0], rtol=1e-12)
        np.testing.assert_allclose(cnx[n, : len(xs[n])].numpy(), per_x[n][1], rtol=1e-12)
        assert (cx[n, len(xs[n]):] == 0).all() and (cnx[n, len(xs[n]):] == 0).all()
        if not single:
            np.testing.assert_allclose(loss[1][n, : len(ys[n])].numpy(), per_y[n][0], rtol=1e-12)
            assert (loss[1][n, len(ys[n]):] == 0).all()


def test_padding_is_ignored_and_lists_equal_padded():
    x, xn, xl, xs, _ = _clouds(5, [6, 2, 4], 6)
    y, yn, yl, ys, _ = _clouds(6, [3, 5, 5], 5)
    ref = chamfer_distance(x, y, xl, yl, xn, yn)
    xg, xng, *_ = _clouds(5, [6, 2, 4], 6, garbage=float("nan"))
    yg, yng, *_ = _clouds(6, [3, 5, 5], 5, garbage=1e-3)  # garbage near the points would be picked
    xg.requires_grad_(True)
    got = chamfer_distance(xg, yg, xl, yl, xng, yng)
    torch.testing.assert_close(got[0], ref[0], rtol=0, atol=0)
    torch.testing.assert_close(got[1], ref[1], rtol=0, atol=0)
    got[0].backward()
    assert torch.isfinite(xg.grad).all() and (xg.grad[1, 2:] == 0).all()
    lst = chamfer_distance([torch.from_numpy(a) for a in xs], [torch.from_numpy(b) for b in ys],
                           x_normals=[xn[n, :k] for n, k in enumerate(xl.tolist())],
                           y_normals=[yn[n, :k] for n, k in enumerate(yl.tolist())])
    torch.testing.assert_close(lst[0], ref[0])
    torch.testing.assert_close(lst[1], ref[1])


@pytest.mark.parametrize("chunk", [1, 24, 100, 10_000])
def test_chunked_equals_unchunked(chunk, monkeypatch):
    # 1 byte forces one row per block *and* one cloud per block; 24 splits rows within a cloud.
    # The reference goes through the k-d tree (the CPU default), the chunked runs through brute force.
    x, xn, xl, *_ = _clouds(7, [40, 17, 33], 40)
    y, yn, yl, *_ = _clouds(8, [25, 30, 2], 30)
    ref = chamfer_distance(x, y, xl, yl, xn, yn, batch_reduction=None, point_reduction=None)
    monkeypatch.setattr(knn_mod, "_KDTREE_CPU", False)
    got = chamfer_distance(x, y, xl, yl, xn, yn, batch_reduction=None, point_reduction=None,
                           max_chunk_bytes=chunk)
    for a, b in zip(ref[0] + ref[1], got[0] + got[1]):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_float32_far_from_origin_matches_float64():
    # Ranking by |y|^2 - 2 x.y loses precision far from the origin unless the clouds are centred.
    x, _, xl, *_ = _clouds(9, [300], 300)
    y, _, yl, *_ = _clouds(10, [200], 200)
    x, y = x * 0.01 + 1000.0, y * 0.01 + 1000.0
    ref, _ = chamfer_distance(x, y)
    got, _ = chamfer_distance(x.float(), y.float())
    assert got.dtype == torch.float32
    # float32 cannot represent the offsets better than ~6e-5 at 1000, so compare at that level.
    assert abs(got.item() - ref.item()) < 2e-2 * ref.item()


def test_empty_partner_cloud():
    x = torch.randn(2, 4, 3, dtype=torch.float64)
    y = torch.randn(2, 3, 3, dtype=torch.float64)
    n = torch.randn(2, 4, 3, dtype=torch.float64)
    m = torch.randn(2, 3, 3, dtype=torch.float64)
    loss, loss_n = chamfer_distance(x, y, y_lengths=torch.tensor([3, 0]), x_normals=n, y_normals=m,
                                    batch_reduction=None, single_directional=True)
    assert loss[1] == 0  # nothing to be near to
    assert loss_n[1] == 1  # the neighbour normal is zero, cos = 0 (PyTorch3D's convention)


def test_all_zero_weights_give_zero():
    x = torch.randn(2, 4, 3, dtype=torch.float64, requires_grad=True)
    y = torch.randn(2, 3, 3, dtype=torch.float64)
    loss, _ = chamfer_distance(x, y, weights=torch.zeros(2, dtype=torch.float64))
    assert loss.item() == 0.0
    loss.backward()
    assert (x.grad == 0).all()


@pytest.mark.parametrize("norm", [1, 2])
def test_gradcheck(norm):
    g = torch.Generator().manual_seed(11 + norm)
    x = torch.randn(2, 4, 3, dtype=torch.float64, generator=g, requires_grad=True)
    y = torch.randn(2, 3, 3, dtype=torch.float64, generator=g, requires_grad=True)
    xn = torch.randn(2, 4, 3, dtype=torch.float64, generator=g, requires_grad=True)
    yn = torch.randn(2, 3, 3, dtype=torch.float64, generator=g, requires_grad=True)
    w = torch.tensor([0.7, 1.3], dtype=torch.float64, requires_grad=True)
    xl, yl = torch.tensor([4, 3]), torch.tensor([3, 2])

    def f(x, y, xn, yn, w):
        return chamfer_distance(x, y, xl, yl, xn, yn, weights=w, norm=norm)

    assert torch.autograd.gradcheck(f, (x, y, xn, yn, w))
    assert torch.autograd.gradcheck(
        lambda x, y: chamfer_distance(x, y, xl, yl, point_reduction="max", norm=norm)[0], (x, y)
    )


def test_gradient_matches_dense_autograd():
    # Independent reference: the dense (P1 x P2) formulation differentiated by autograd.
    x = torch.randn(3, 30, 3, dtype=torch.float64, requires_grad=True)
    y = torch.randn(3, 20, 3, dtype=torch.float64, requires_grad=True)
    loss, _ = chamfer_distance(x, y, max_chunk_bytes=64)
    gx, gy = torch.autograd.grad(loss, (x, y))
    d = (x[:, :, None] - y[:, None]).square().sum(-1)
    ref = (d.min(2).values.mean(1) + d.min(1).values.mean(1)).mean()
    rx, ry = torch.autograd.grad(ref, (x, y))
    torch.testing.assert_close(loss, ref)
    torch.testing.assert_close(gx, rx)
    torch.testing.assert_close(gy, ry)


@pytest.mark.slow
def test_memory_is_bounded_by_chunking():
    # 12k x 12k float32 would be a 576 MB matrix per direction; the chunked search must stay far below.
    code = textwrap.dedent(
        """
        import resource, torch
        from diffras.losses import chamfer_distance
        torch.manual_seed(0)
        torch.set_num_threads(1)  # a shared, busy machine makes two OpenMP threads far slower than one
        x = torch.rand(1, 12000, 3, requires_grad=True)
        y = torch.rand(1, 12000, 3)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        loss, _ = chamfer_distance(x, y)
        loss.backward()
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print((after - before) / 1024.0, float(loss))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    grown_mb, loss = map(float, out.stdout.split())
    assert grown_mb < 150, f"peak memory grew by {grown_mb:.0f} MB"
    assert 0 < loss < 1e-2  # dense uniform clouds: nearest neighbours are close


def test_bad_input_named():
    x = torch.randn(2, 4, 3)
    y = torch.randn(2, 5, 3)
    with pytest.raises(TypeError, match="x"):
        chamfer_distance(x.long(), y)
    with pytest.raises(ValueError, match="x"):
        chamfer_distance(x[0], y)
    with pytest.raises(ValueError, match="y"):
        chamfer_distance(x, torch.randn(3, 5, 3))
    with pytest.raises(ValueError, match="y"):
        chamfer_distance(x, torch.randn(2, 5, 2))
    with pytest.raises(TypeError, match="y"):
        chamfer_distance(x, y.double())
    nan = x.clone()
    nan[1, 0, 0] = float("inf")
    with pytest.raises(ValueError, match="x"):
        chamfer_distance(nan, y)
    with pytest.raises(ValueError, match="x_lengths"):
        chamfer_distance(x, y, x_lengths=torch.tensor([4, 5]))
    with pytest.raises(ValueError, match="y_lengths"):
        chamfer_distance(x, y, y_lengths=torch.tensor([-1, 2]))
    with pytest.raises(ValueError, match="x_lengths"):
        chamfer_distance(x, y, x_lengths=torch.tensor([4]))
    with pytest.raises(ValueError, match="x_normals"):
        chamfer_distance(x, y, x_normals=torch.randn(2, 3, 3), y_normals=torch.randn(2, 5, 3))
    with pytest.raises(ValueError, match="y_normals"):
        chamfer_distance(x, y, x_normals=torch.randn(2, 4, 3))
    with pytest.raises(ValueError, match="x_normals"):
        chamfer_distance(x, y, x_normals=torch.randn(2, 4, 3), y_normals=torch.randn(2, 5, 3),
                         point_reduction="max")
    with pytest.raises(ValueError, match="weights"):
        chamfer_distance(x, y, weights=torch.tensor([1.0, -1.0]))
    with pytest.raises(ValueError, match="weights"):
        chamfer_distance(x, y, weights=torch.tensor([1.0]))
    with pytest.raises(ValueError, match="batch_reduction"):
        chamfer_distance(x, y, batch_reduction="max")
    with pytest.raises(ValueError, match="point_reduction"):
        chamfer_distance(x, y, point_reduction="median")
    with pytest.raises(ValueError, match="batch_reduction"):
        chamfer_distance(x, y, point_reduction=None)
    with pytest.raises(ValueError, match="norm"):
        chamfer_distance(x, y, norm=3)
    with pytest.raises(ValueError, match="x_lengths"):
        chamfer_distance([x[0], x[1]], y, x_lengths=torch.tensor([4, 4]))
    with pytest.raises(ValueError, match="x"):
        chamfer_distance([], y)
    with pytest.raises(ValueError, match="x\\[1\\]"):
        chamfer_distance([x[0], torch.randn(3, 2)], y)


from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=25, deadline=None)
@given(
    data=st.data(),
    n=st.integers(1, 3),
    d=st.integers(1, 4),
    norm=st.sampled_from([1, 2]),
    point_red=st.sampled_from(["mean", "sum", "max"]),
    chunk=st.sampled_from([1, 40, 10_000]),
)
def test_property_random_shapes(data, n, d, norm, point_red, chunk):
    p1 = data.draw(st.integers(0, 6))
    p2 = data.draw(st.integers(0, 6))
    xl = [data.draw(st.integers(0, p1)) for _ in range(n)]
    yl = [data.draw(st.integers(0, p2)) for _ in range(n)]
    seed = data.draw(st.integers(0, 2**16))
    x, _, xlt, xs, _ = _clouds(seed, xl, p1, D=d)
    y, _, ylt, ys, _ = _clouds(seed + 1, yl, p2, D=d)
    loss, _ = chamfer_distance(x, y, xlt, ylt, norm=norm, point_reduction=point_red, batch_reduction=None,
                               max_chunk_bytes=chunk)
    ref, _ = _np_chamfer(xs, ys, None, None, None, None, point_red, norm, False, True)
    np.testing.assert_allclose(loss.numpy(), ref, rtol=1e-10, atol=1e-12)


def test_device_mismatch_named():
    # No second real device on CI: the "meta" device is enough to exercise the checks.
    x = torch.randn(2, 4, 3)
    with pytest.raises(ValueError, match="y"):
        chamfer_distance(x, torch.randn(2, 5, 3, device="meta"))
    with pytest.raises(ValueError, match="x_lengths"):
        chamfer_distance(x, x, x_lengths=torch.tensor([1, 2], device="meta"))
    with pytest.raises(ValueError, match="weights"):
        chamfer_distance(x, x, weights=torch.ones(2, device="meta"))


def test_pointclouds_like_object():
    class Clouds:  # the three methods PyTorch3D's Pointclouds offers and chamfer_distance reads
        def __init__(self, pts, lengths, normals):
            self._p, self._l, self._n = pts, lengths, normals

        def points_padded(self):
            return self._p

        def num_points_per_cloud(self):
            return self._l

        def normals_padded(self):
            return self._n

    x, xn, xl, *_ = _clouds(12, [5, 3], 5)
    y, yn, yl, *_ = _clouds(13, [2, 4], 4)
    ref = chamfer_distance(x, y, xl, yl, xn, yn)
    got = chamfer_distance(Clouds(x, xl, xn), Clouds(y, yl, yn))
    torch.testing.assert_close(got[0], ref[0])
    torch.testing.assert_close(got[1], ref[1])
    with pytest.raises(ValueError, match="x_lengths"):
        chamfer_distance(Clouds(x, xl, xn), y, x_lengths=xl)
    with pytest.raises(ValueError, match="x_normals"):
        chamfer_distance([x[0], x[1]], y, x_normals=[xn[0]], y_normals=yn)
