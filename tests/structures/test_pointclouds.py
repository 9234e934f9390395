"""Pointclouds views, index maps and batch operations against plain-Python constructions."""
from __future__ import annotations

import doctest

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from diffras.structures import Pointclouds, join_pointclouds_as_batch, join_pointclouds_as_scene
from diffras.structures import pointclouds as pointclouds_module

SETTINGS = settings(max_examples=25, deadline=None)


@st.composite
def cloud_batches(draw, max_n=4, max_p=7):
    n = draw(st.integers(1, max_n))
    counts = [draw(st.integers(0, max_p)) for _ in range(n)]
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    c = draw(st.integers(1, 4))
    pts = [torch.randn(k, 3, generator=g, dtype=torch.float64) for k in counts]
    nrm = [torch.randn(k, 3, generator=g, dtype=torch.float64) for k in counts]
    feat = [torch.rand(k, c, generator=g, dtype=torch.float64) for k in counts]
    return pts, nrm, feat


def _ref_padded(xs, width):
    m = max([x.shape[0] for x in xs], default=0)
    out = torch.zeros(len(xs), m, width, dtype=torch.float64)
    for i, x in enumerate(xs):
        for r in range(x.shape[0]):
            out[i, r] = x[r]
    return out


@SETTINGS
@given(cloud_batches())
def test_views_and_maps_against_python(batch):
    pts, nrm, feat = batch
    pc = Pointclouds(pts, normals=nrm, features=feat)
    n = len(pts)
    assert len(pc) == n
    c = feat[0].shape[1]
    for name, xs, width in (("points", pts, 3), ("normals", nrm, 3), ("features", feat, c)):
        lst = getattr(pc, f"{name}_list")()
        assert len(lst) == n and all(torch.equal(a, b) for a, b in zip(lst, xs))
        assert torch.equal(getattr(pc, f"{name}_padded")(), _ref_padded(xs, width))
        rows = [x[r] for x in xs for r in range(x.shape[0])]
        packed = getattr(pc, f"{name}_packed")()
        assert torch.equal(packed, torch.stack(rows) if rows else torch.empty(0, width, dtype=torch.float64))
    counts = [x.shape[0] for x in pts]
    assert pc.num_points_per_cloud().tolist() == counts
    assert pc.cloud_to_packed_first_idx().tolist() == [sum(counts[:i]) for i in range(n)]
    assert pc.packed_to_cloud_idx().tolist() == [i for i, k in enumerate(counts) for _ in range(k)]
    m = max(counts)
    assert pc.padded_to_packed_idx().tolist() == [i * m + r for i, k in enumerate(counts) for r in range(k)]
    assert torch.equal(pc.points_padded().reshape(-1, 3)[pc.padded_to_packed_idx()], pc.points_packed())
    assert pc.valid.tolist() == [k > 0 for k in counts]
    assert pc.isempty() == (sum(counts) == 0)
    assert pc.equisized == (len(set(counts)) == 1)
    box = pc.get_bounding_boxes()
    for i, x in enumerate(pts):
        want = torch.stack([x.min(0).values, x.max(0).values], 1) if x.shape[0] else torch.zeros(3, 2, dtype=x.dtype)
        assert torch.equal(box[i], want)
    for i in range(n):
        p_i, n_i, f_i = pc.get_cloud(i)
        assert torch.equal(p_i, pts[i]) and torch.equal(n_i, nrm[i]) and torch.equal(f_i, feat[i])


@SETTINGS
@given(cloud_batches(), st.data())
def test_padded_input_and_getitem(batch, data):
    pts, nrm, feat = batch
    pc = Pointclouds(pts, normals=nrm, features=feat)
    # Padded points: every cloud has all P points (PyTorch3D's rule); padded aux ignore rows past P_i.
    padded = Pointclouds(pc.points_padded())
    assert padded.num_points_per_cloud().tolist() == [pc.points_padded().shape[1]] * len(pts)
    mixed = Pointclouds(pts, normals=pc.normals_padded(), features=pc.features_padded())
    assert torch.equal(mixed.normals_packed(), pc.normals_packed())
    assert torch.equal(mixed.features_packed(), pc.features_packed())
    n = len(pts)
    sel = data.draw(st.lists(st.integers(-n, n - 1), max_size=5))
    for index in (sel, torch.tensor(sel, dtype=torch.int64), slice(None, None, -1), sel[0] if sel else 0):
        sub = pc[index]
        rows = [i % n for i in (sel if isinstance(index, (list, torch.Tensor)) else
                                (list(range(n))[::-1] if isinstance(index, slice) else [index]))]
        assert len(sub) == len(rows)
        for j, i in enumerate(rows):
            assert torch.equal(sub.points_list()[j], pts[i]) and torch.equal(sub.features_list()[j], feat[i])
            assert torch.equal(sub.normals_list()[j], nrm[i])
    mask = torch.tensor([data.draw(st.booleans()) for _ in range(n)])
    assert len(pc[mask]) == int(mask.sum())
    ext = pc.extend(2)
    assert [x.shape[0] for x in ext.points_list()] == [x.shape[0] for x in pts for _ in range(2)]
    assert all(torch.equal(ext.points_list()[2 * i + 1], pts[i]) for i in range(n))


def test_offset_scale_update_padded_gradients():
    a = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    feat = [torch.rand(3, 2, dtype=torch.float64), torch.rand(5, 2, dtype=torch.float64)]
    pc = Pointclouds([a, b], features=feat)
    off = torch.randn(8, 3, dtype=torch.float64)
    moved = pc.offset(off)
    assert torch.equal(moved.points_packed(), pc.points_packed() + off)
    assert torch.equal(pc.offset(off[0]).points_packed(), pc.points_packed() + off[0])
    assert moved.features_packed() is pc.features_packed()
    scaled = pc.scale(torch.tensor([2.0, -1.0], dtype=torch.float64))
    assert torch.equal(scaled.points_list()[0], 2 * a) and torch.equal(scaled.points_list()[1], -b)
    new = torch.randn(2, 5, 3, dtype=torch.float64, requires_grad=True)
    newf = torch.randn(2, 5, 2, dtype=torch.float64)
    up = pc.update_padded(new, new_features_padded=newf)
    assert torch.equal(up.points_list()[0], new[0, :3]) and torch.equal(up.points_list()[1], new[1])
    assert torch.equal(up.features_list()[0], newf[0, :3])
    assert up.normals_packed() is None
    (up.points_packed().sum() + moved.points_packed().pow(2).sum() + scaled.points_padded().sum()).backward()
    assert torch.equal(new.grad[0, 3:], torch.zeros(2, 3, dtype=torch.float64))
    assert torch.allclose(a.grad, 2 * (a + off[:3]).detach() + 2)
    # In place versions rebind and keep the history.
    pc2 = Pointclouds([a * 1.0])
    pc2.offset_(torch.ones(3, dtype=torch.float64)).scale_(3.0)
    assert torch.allclose(pc2.points_packed(), 3 * (a + 1)) and pc2.points_packed().requires_grad
    assert torch.allclose(pc2.points_padded()[0], 3 * (a + 1))


def test_join_split_clone_detach_to_subsample_inside_box():
    p1 = Pointclouds([torch.rand(2, 3), torch.rand(0, 3)], features=[torch.rand(2, 4), torch.rand(0, 4)])
    p2 = Pointclouds([torch.rand(3, 3)], features=[torch.rand(3, 4)])
    j = join_pointclouds_as_batch([p1, p2])
    assert j.num_points_per_cloud().tolist() == [2, 0, 3]
    assert torch.equal(j.features_packed(), torch.cat([p1.features_packed(), p2.features_packed()]))
    s = join_pointclouds_as_scene([p1, p2])
    assert len(s) == 1 and torch.equal(s.points_packed(), j.points_packed())
    parts = j.split([1, 2])
    assert [len(x) for x in parts] == [1, 2] and torch.equal(parts[1].points_packed(), j.points_packed()[2:])
    c = j.clone()
    assert torch.equal(c.points_packed(), j.points_packed()) and c.points_packed() is not j.points_packed()
    d = j.to(dtype=torch.float64)
    assert d.dtype == torch.float64 and d.features_packed().dtype == torch.float64
    assert j.to("cpu") is j and j.to("cpu", True) is not j and j.to("cpu", copy=True) is not j
    assert not j.detach().points_packed().requires_grad
    torch.manual_seed(0)
    sub = j.subsample(2)
    assert sub.num_points_per_cloud().tolist() == [2, 0, 2]
    kept = sub.points_list()[2]
    orig = p2.points_packed()
    rows = [int((orig == r).all(1).nonzero()) for r in kept]
    assert rows == sorted(rows)  # a subset, in order
    assert j.subsample([5, 5, 5]) is j
    box = torch.tensor([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]])
    inside = j.inside_box(box)
    assert torch.equal(inside, ((j.points_packed() >= 0) & (j.points_packed() <= 0.5)).all(1))
    with pytest.raises(ValueError, match="features"):
        join_pointclouds_as_batch([p1, Pointclouds([torch.rand(3, 3)])])
    with pytest.raises(TypeError, match="already a batch"):
        join_pointclouds_as_batch(p1)


def test_pytorch3d_input_quirks():
    # Empty clouds given as torch.tensor([]), aux entries None for them; an empty batch.
    pc = Pointclouds([torch.rand(2, 3), torch.tensor([])], features=[torch.rand(2, 3), None])
    assert pc.num_points_per_cloud().tolist() == [2, 0] and pc.features_packed().shape == (2, 3)
    assert pc.features_padded().shape == (2, 2, 3)
    empty = Pointclouds([])
    assert len(empty) == 0 and empty.isempty() and empty.points_packed().shape == (0, 3)
    assert Pointclouds([torch.zeros(0, 3)]).isempty()
    assert Pointclouds([torch.zeros(0, 3)]).get_bounding_boxes().tolist() == [[[0.0, 0.0]] * 3]


@pytest.mark.parametrize("args, exc, match", [
    (([torch.rand(2, 2)],), ValueError, r"points\[0\]: expected shape"),
    ((torch.rand(2, 3),), ValueError, "points: expected shape"),
    (([torch.rand(2, 3).long()],), TypeError, "floating"),
    (([torch.tensor([[0.0, float("inf"), 0.0]])],), ValueError, "finite"),
    (("points",), TypeError, "points: expected a list"),
    (([torch.rand(2, 3)], [torch.rand(3, 3)]), ValueError, r"normals\[0\]: expected shape"),
    (([torch.rand(2, 3)], None, [torch.rand(2, 3), torch.rand(2, 3)]), ValueError, "length 1"),
    (([torch.rand(2, 3)], torch.rand(1, 2, 4)), ValueError, "normals: expected shape"),
    (([torch.rand(2, 3), torch.rand(2, 3, dtype=torch.float64)],), TypeError, "dtype"),
])
def test_constructor_rejects(args, exc, match):
    with pytest.raises(exc, match=match):
        Pointclouds(*args)


def test_method_inputs_rejected():
    pc = Pointclouds([torch.rand(2, 3), torch.rand(3, 3)])
    with pytest.raises(ValueError, match="offsets_packed"):
        pc.offset(torch.rand(4, 3))
    with pytest.raises(ValueError, match="scale"):
        pc.scale(torch.rand(3))
    with pytest.raises(ValueError, match="new_points_padded"):
        pc.update_padded(torch.rand(2, 2, 3))
    with pytest.raises(IndexError):
        pc[2]
    with pytest.raises(ValueError, match="split_sizes"):
        pc.split([1])
    with pytest.raises(ValueError, match="box"):
        pc.inside_box(torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]))
    with pytest.raises(ValueError, match="n: expected an int >= 1"):
        pc.extend(0)


def test_docstring_examples():
    assert doctest.testmod(pointclouds_module, raise_on_error=True).failed == 0
