"""Every point visibility backend returns exactly the reference backend's idx, and the reference follows
PyTorch3D's rule (checked by hand on constructed scenes)."""
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diffras.points import points_visibility

BACKENDS = ["numba", "torch"]


@pytest.fixture(autouse=True)
def _numba_threads(monkeypatch):
    # Small scenes normally run on one thread; force the multi-threaded path that large ones take.
    import diffras.points._visibility_numba as vn

    monkeypatch.setattr(vn, "SERIAL_WORK", 0)


def _run(backend, pts, rad, first, num, size, K, bin_size=None):
    pts = torch.as_tensor(pts, dtype=torch.float64) if not torch.is_tensor(pts) else pts
    rad = torch.as_tensor(rad, dtype=pts.dtype) if not torch.is_tensor(rad) else rad
    if rad.dim() == 0:
        rad = rad.expand(pts.shape[0])
    return points_visibility(pts, rad, torch.as_tensor(first, dtype=torch.int64), torch.as_tensor(num, dtype=torch.int64), size, points_per_pixel=K,
                             backend=backend, bin_size=bin_size)


def _check(pts, rad, first, num, size, K):
    ref = _run("reference", pts, rad, first, num, size, K)
    for b in BACKENDS:
        for bin_size in (None, 1, 3, 0):
            out = _run(b, pts, rad, first, num, size, K, bin_size)
            assert out.dtype == torch.int64 and out.shape == ref.shape
            bad = (out != ref).nonzero()
            assert bad.numel() == 0, f"{b} bin_size={bin_size}: first mismatch at {bad[:3].tolist()}"
    return ref


@st.composite
def scenes(draw):
    n = draw(st.integers(1, 3))
    counts = [draw(st.integers(0, 25)) for _ in range(n)]
    P = sum(counts)
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    H, W = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    S = min(H, W)
    xy = torch.rand(P, 2, generator=g, dtype=torch.float64) * 2.6 - 1.3
    # Some points exactly on pixel centres or on the boundary between two pixels.
    snap = torch.randint(0, 3, (P, 2), generator=g)
    grid = (torch.randint(-12, 13, (P, 2), generator=g).to(torch.float64)) / S
    xy = torch.where(snap == 0, grid, xy)
    z = torch.rand(P, generator=g, dtype=torch.float64) * 3.0 - 0.5
    z = torch.where(torch.rand(P, generator=g) < 0.4, z.abs().round(decimals=0), z)  # equal depths: ties
    z = torch.where(torch.rand(P, generator=g) < 0.1, torch.zeros_like(z), z)
    per_point = draw(st.booleans())
    r = torch.rand(P if per_point else 1, generator=g, dtype=torch.float64) ** 2 * 0.8
    # Radii that land exactly on the distance to a neighbouring pixel centre.
    r = torch.where(torch.rand(r.shape, generator=g) < 0.3, torch.full_like(r, 2.0 / S), r).expand(P)
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    first = [sum(counts[:i]) for i in range(n)]
    K = draw(st.integers(1, 6))
    return torch.cat([xy, z[:, None]], 1).to(dtype), r.to(dtype), first, counts, (H, W), K


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenes())
def test_backends_match_reference_random(scene):
    _check(*scene)


def test_reference_rule_by_hand():
    # 4 x 4 image, NDC pixel centres at +-0.25 and +-0.75; column 0 is x = +0.75 (x points left).
    pts = [[0.75, 0.75, 2.0],   # p0: centred on pixel (0, 0)
           [0.75, 0.75, 1.0],   # p1: same pixel, nearer
           [0.75, 0.75, 1.0],   # p2: same depth as p1: after it (lower index first)
           [0.5, 0.75, 0.5],    # p3: exactly on the border of pixels (0, 0) and (0, 1)
           [-0.75, -0.75, -0.1],  # p4: behind the camera
           [-0.75, -0.75, 0.0]]  # p5: on the camera plane: kept
    rad = [0.1, 0.1, 0.1, 0.25, 0.1, 0.1]
    out = _check(pts, rad, [0], [6], (4, 4), 3)
    assert out[0, 0, 0].tolist() == [1, 2, 0]  # K = 3 nearest of p0, p1, p2, p3 (p3 is exactly r away: no)
    assert out[0, 0, 1].tolist() == [-1, -1, -1]  # p3 is 0.25 from both centres: d2 == r^2 is not a hit
    assert out[0, 3, 3].tolist() == [5, -1, -1]
    assert int((out >= 0).sum()) == 4


def test_nonsquare_pixel_centres():
    # 2 x 4 image: S = 2, x centres (W - 2j - 1) / S = 1.5, 0.5, -0.5, -1.5 and y = 0.5, -0.5.
    pts = [[1.5, -0.5, 1.0], [-0.5, 0.5, 1.0]]
    out = _check(pts, 0.1, [0], [2], (2, 4), 1)
    assert out[0, :, :, 0].tolist() == [[-1, -1, 1, -1], [0, -1, -1, -1]]


def test_batch_sees_only_its_cloud():
    pts = [[0.0, 0.0, 1.0], [0.0, 0.0, 2.0], [0.0, 0.0, 3.0]]
    out = _check(pts, 1.0, [0, 1, 3], [1, 2, 0], (3, 3), 2)
    assert out[0, 1, 1].tolist() == [0, -1] and out[1, 1, 1].tolist() == [1, 2]
    assert bool((out[2] == -1).all())


@pytest.mark.parametrize("K", [1, 8])
def test_huge_radius_and_dense_ties(K):
    g = torch.Generator().manual_seed(1)
    P = 300
    pts = torch.cat([torch.rand(P, 2, generator=g, dtype=torch.float64) * 4 - 2,
                     torch.randint(0, 3, (P, 1), generator=g).to(torch.float64)], 1)
    out = _check(pts, 10.0, [0], [P], (6, 5), K)
    # Every pixel sees every point: the K lowest (z, p) everywhere.
    order = sorted(range(P), key=lambda p: (float(pts[p, 2]), p))[:K]
    assert bool((out[0] == torch.tensor(order)).all())


def test_dense_cloud_early_stop_is_exact():
    # Many points per tile in several depth layers: exercises the tile stop of the numba backend.
    g = torch.Generator().manual_seed(2)
    P = 4000
    xy = torch.rand(P, 2, generator=g, dtype=torch.float64) * 2 - 1
    z = torch.rand(P, generator=g, dtype=torch.float64) * 5 + 0.5
    z[::7] = 2.0
    pts = torch.cat([xy, z[:, None]], 1)
    rad = torch.rand(P, generator=g, dtype=torch.float64) * 0.1
    ref = _run("torch", pts, rad, [0, 1000], [1000, 3000], (40, 48), 4)
    for bin_size in (None, 4, 0):
        assert torch.equal(_run("numba", pts, rad, [0, 1000], [1000, 3000], (40, 48), 4, bin_size), ref)
    small = _check(pts[:300], rad[:300], [0], [300], (10, 12), 4)
    assert int((small >= 0).sum()) > 0


def test_empty_inputs():
    for b in ["reference"] + BACKENDS:
        out = _run(b, torch.zeros(0, 3, dtype=torch.float64), torch.zeros(0, dtype=torch.float64), [0, 0], [0, 0],
                   (3, 2), 2)
        assert out.shape == (2, 3, 2, 2) and bool((out == -1).all())
        out = _run(b, torch.zeros(0, 3, dtype=torch.float64), torch.zeros(0, dtype=torch.float64), [], [], (3, 2), 2)
        assert out.shape == (0, 3, 2, 2)


def test_far_outside_and_huge_values():
    pts = [[1e300, 0.0, 1.0], [0.0, -1e300, 1.0], [0.0, 0.0, 1e300], [5.0, 5.0, 1.0]]
    out = _check(pts, [1e-3, 1e-3, 0.5, 1.0], [0], [4], (4, 4), 2)
    assert set(out.unique().tolist()) == {-1, 2}


def test_bad_input():
    pts = torch.zeros(2, 3)
    rad = torch.ones(2)
    first, num = torch.tensor([0]), torch.tensor([2])
    with pytest.raises(ValueError, match="points: expected finite"):
        points_visibility(torch.tensor([[0.0, float("nan"), 1.0]]), torch.ones(1), first, torch.tensor([1]), 4)
    with pytest.raises(ValueError, match="radius: expected values >= 0"):
        points_visibility(pts, -rad, first, num, 4)
    with pytest.raises(ValueError, match="radius: expected size P=2"):
        points_visibility(pts, torch.ones(3), first, num, 4)
    with pytest.raises(ValueError, match="num_points_per_cloud"):
        points_visibility(pts, rad, first, torch.tensor([3]), 4)
    with pytest.raises(TypeError, match="points: expected a floating"):
        points_visibility(pts.long(), rad, first, num, 4)
    with pytest.raises(ValueError, match="backend"):
        points_visibility(pts, rad, first, num, 4, backend="cuda")
    with pytest.raises(ValueError, match="image_size"):
        points_visibility(pts, rad, first, num, 0)
    with pytest.raises(ValueError, match="below 8 GiB"):
        points_visibility(pts, rad, torch.zeros(64, dtype=torch.long), torch.zeros(64, dtype=torch.long), 4096,
                          points_per_pixel=8)
