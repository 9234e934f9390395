import math

import pytest
import torch

import diffras.nv as dr

from ._reference import rasterize_reference, screen_barycentrics

CTX = dr.RasterizeCudaContext()


def random_scene(N=2, T=6, seed=0, behind=False, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    V = 3 * T
    xy = torch.rand(N, V, 2, generator=g, dtype=dtype) * 2.4 - 1.2
    w = torch.rand(N, V, 1, generator=g, dtype=dtype) * 1.5 + 0.5
    if behind:
        w[:, ::4] = -w[:, ::4]  # corners behind the eye: clipped by the homogeneous test
    z = (torch.rand(N, V, 1, generator=g, dtype=dtype) * 2.2 - 1.1) * w.abs()
    pos = torch.cat([xy * w, z, w], -1)
    tri = torch.arange(V, dtype=torch.int32).reshape(T, 3)
    return pos, tri


@pytest.mark.parametrize("behind", [False, True])
def test_visibility_matches_reference(behind):
    pos, tri = random_scene(behind=behind, seed=3 if behind else 1)
    rast, _ = dr.rasterize(CTX, pos, tri, (13, 17))
    ref = rasterize_reference(pos, tri, 13, 17)
    assert (ref > 0).sum() > 30
    assert torch.equal(rast[..., 3].long(), ref)


def test_range_mode_matches_instanced():
    pos, tri = random_scene(N=2, T=4)
    # Range mode: both images' vertices in one buffer, triangles offset, ranges pick each image's.
    flat = pos.reshape(-1, 4)
    tri2 = torch.cat([tri, tri + pos.shape[1]])
    ranges = torch.tensor([[0, 4], [4, 4]], dtype=torch.int32)
    r_range, _ = dr.rasterize(CTX, flat, tri2, (12, 12), ranges=ranges)
    r_inst, _ = dr.rasterize(CTX, pos, tri, (12, 12))
    assert torch.equal(rasterize_reference(flat, tri2, 12, 12, ranges=ranges), r_range[..., 3].long())
    ids = r_range[..., 3].clone()
    ids[1][ids[1] > 0] -= 4  # image 1 drew triangles 4..7 = instanced triangles 0..3
    assert torch.equal(ids, r_inst[..., 3])
    assert torch.allclose(r_range[..., :3], r_inst[..., :3])


def test_uv_zw_equal_float64_reference():
    pos, tri = random_scene(N=1, T=5, seed=4)
    H, W = 20, 24
    rast, _ = dr.rasterize(CTX, pos, tri, (H, W))
    covered = torch.nonzero(rast[0, ..., 3])
    assert len(covered) > 50
    for i, j in covered.tolist():
        t = int(rast[0, i, j, 3]) - 1
        corners = pos[0, tri[t].long()].tolist()
        u, v, zw = screen_barycentrics(corners, (2 * j + 1) / W - 1, (2 * i + 1) / H - 1)
        assert rast[0, i, j, :3].tolist() == pytest.approx([u, v, zw], abs=1e-9)
    assert (rast[0][rast[0, ..., 3] == 0] == 0).all()


def test_opengl_row_order_and_corner_barycentrics():
    # A small triangle in the top-right quadrant of NDC: rows near H-1 (the top), columns near W-1.
    pos = torch.tensor([[[0.5, 0.5, 0, 1], [0.9, 0.5, 0, 1], [0.5, 0.9, 0, 1]]])
    tri = torch.tensor([[0, 1, 2]], dtype=torch.int32)
    rast, _ = dr.rasterize(CTX, pos, tri, (20, 20))
    rows, cols = torch.nonzero(rast[0, ..., 3], as_tuple=True)
    assert rows.min() >= 15 and cols.min() >= 15
    # The pixel nearest corner 0 has u close to 1, nearest corner 1 has v close to 1.
    assert rast[0, 15, 15, 0] > 0.7 and rast[0, 15, 17, 1] > 0.4


def test_shared_edges_cover_each_pixel_once():
    # A quad split along a diagonal passing exactly through pixel centres (8 x 8 image, NDC grid 1/8).
    pos = torch.tensor([[[-0.75, -0.75, 0, 1], [0.75, -0.75, 0, 1], [0.75, 0.75, 0, 1], [-0.75, 0.75, 0, 1]]],
                       dtype=torch.float64)
    tri = torch.tensor([[0, 1, 2], [0, 2, 3]], dtype=torch.int32)
    rast, _ = dr.rasterize(CTX, pos, tri, (8, 8))
    ids = rast[0, ..., 3]
    inner = ids[1:7, 1:7]
    assert (inner > 0).all(), "no holes along the shared diagonal"
    assert ((ids == 1).sum() + (ids == 2).sum()) == 36
    # Pixel centres on the shared diagonal go to exactly one triangle: drawn alone, the two
    # triangles cover disjoint pixel sets (the top-left rule), with either winding.
    for order in ([[0, 1, 2], [0, 2, 3]], [[0, 2, 1], [0, 3, 2]]):
        alone = [dr.rasterize(CTX, pos, torch.tensor([t], dtype=torch.int32), (8, 8))[0][0, ..., 3] > 0
                 for t in order]
        assert not (alone[0] & alone[1]).any()
        assert torch.equal(alone[0] | alone[1], ids > 0)
        assert (alone[0].diagonal() | alone[1].diagonal())[1:7].all()


def test_depth_test_and_near_far_clipping():
    quad = torch.tensor([[-1.0, -1, 0, 1], [1, -1, 0, 1], [1, 1, 0, 1], [-1, 1, 0, 1]])
    front, back, far = quad.clone(), quad.clone(), quad.clone()
    front[:, 2], back[:, 2], far[:, 2] = -0.5, 0.5, 1.5  # far lies beyond the far plane
    pos = torch.cat([back, front, far])[None]
    tri = torch.tensor([[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7], [8, 9, 10], [8, 10, 11]], dtype=torch.int32)
    rast, _ = dr.rasterize(CTX, pos, tri, (6, 6))
    assert set(rast[0, ..., 3].unique().tolist()) <= {3.0, 4.0}
    assert torch.allclose(rast[0, ..., 2], torch.full((6, 6), -0.5))
    with dr.DepthPeeler(CTX, pos, tri, (6, 6)) as peeler:
        l1, _ = peeler.rasterize_next_layer()
        l2, _ = peeler.rasterize_next_layer()
        l3, _ = peeler.rasterize_next_layer()
    assert torch.equal(l1, rast)
    assert set(l2[0, ..., 3].unique().tolist()) <= {1.0, 2.0} and torch.allclose(l2[0, ..., 2], torch.full((6, 6), 0.5))
    assert (l3 == 0).all()
    with pytest.raises(RuntimeError):
        with dr.DepthPeeler(CTX, pos, tri, (6, 6)):
            dr.rasterize(CTX, pos, tri, (6, 6))


def test_rast_db_matches_finite_differences_of_barycentrics():
    pos, tri = random_scene(N=1, T=3, seed=7)
    H, W = 16, 16
    rast, db = dr.rasterize(CTX, pos, tri, (H, W))
    h = 1e-5
    checked = 0
    for i, j in torch.nonzero(rast[0, ..., 3]).tolist()[:40]:
        t = int(rast[0, i, j, 3]) - 1
        corners = pos[0, tri[t].long()].tolist()
        X, Y = j + 0.5, i + 0.5
        f = lambda X, Y: screen_barycentrics(corners, 2 * X / W - 1, 2 * Y / H - 1)[:2]  # noqa: E731
        dudx = [(a - b) / (2 * h) for a, b in zip(f(X + h, Y), f(X - h, Y))]
        dudy = [(a - b) / (2 * h) for a, b in zip(f(X, Y + h), f(X, Y - h))]
        want = [dudx[0], dudy[0], dudx[1], dudy[1]]
        assert db[0, i, j].tolist() == pytest.approx(want, rel=1e-5, abs=1e-7)
        checked += 1
    assert checked >= 20


def test_gradcheck_rasterize_outputs():
    pos, tri = random_scene(N=1, T=2, seed=11)
    pos.requires_grad_(True)
    # The pixel -> triangle assignment is piecewise constant; tiny steps keep it fixed, so u, v, z/w and
    # rast_db are smooth functions of pos at fixed visibility.
    fn = lambda p: tuple(t[..., :3] if k == 0 else t for k, t in enumerate(dr.rasterize(CTX, p, tri, (7, 9))))  # noqa: E731
    assert torch.autograd.gradcheck(fn, (pos,), eps=1e-7, atol=1e-5, fast_mode=True)


def test_bad_input():
    pos, tri = random_scene(N=1, T=2)
    with pytest.raises(TypeError, match="glctx"):
        dr.rasterize(None, pos, tri, (4, 4))
    with pytest.raises(ValueError, match="pos"):
        dr.rasterize(CTX, pos[..., :3], tri, (4, 4))
    with pytest.raises(ValueError, match="tri"):
        dr.rasterize(CTX, pos, tri + 100, (4, 4))
    with pytest.raises(ValueError, match="ranges"):
        dr.rasterize(CTX, pos[0], tri, (4, 4))
    with pytest.raises(ValueError, match="ranges"):
        dr.rasterize(CTX, pos[0], tri, (4, 4), ranges=torch.tensor([[1, 5]]))
    bad = pos.clone()
    bad[0, 0, 0] = math.nan
    with pytest.raises(ValueError, match="pos"):
        dr.rasterize(CTX, bad, tri, (4, 4))
    with pytest.raises(ValueError, match="resolution"):
        dr.rasterize(CTX, pos, tri, (0, 4))
    with pytest.raises(TypeError, match="tri"):
        dr.rasterize(CTX, pos, tri.float(), (4, 4))
    with pytest.raises(ValueError, match="GiB"):
        dr.rasterize(CTX, pos.expand(64, -1, -1), tri, (16384, 16384))
