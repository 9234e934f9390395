"""ico_sphere: counts, unit norm, outward winding, closed consistently oriented manifold, no duplicates."""
from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
import torch

from diffras.ops import ico_sphere, subdivide_faces
from diffras.structures import Meshes


@pytest.mark.parametrize("level", [0, 1, 2, 3])
def test_counts_norm_winding_manifold(level):
    m = ico_sphere(level)
    assert isinstance(m, Meshes) and len(m) == 1
    v, f = m.verts_packed(), m.faces_packed()
    assert v.shape == (10 * 4**level + 2, 3) and f.shape == (20 * 4**level, 3)
    assert v.dtype == torch.get_default_dtype() and f.dtype == torch.int64
    torch.testing.assert_close(v.norm(dim=1), torch.ones(v.shape[0]))
    # outward: the face normal agrees with the direction of the face centroid
    centroid = v[f].mean(1)
    cross = torch.linalg.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]], dim=-1)
    assert torch.all((cross * centroid).sum(1) > 0)
    # closed manifold: every undirected edge in exactly two faces; consistent orientation: every directed
    # edge exactly once (its twin runs the other way)
    directed = Counter((int(a), int(b)) for tri in f.tolist() for a, b in zip(tri, tri[1:] + tri[:1]))
    assert all(c == 1 for c in directed.values())
    assert all((b, a) in directed for a, b in directed)
    undirected = Counter(tuple(sorted(e)) for e in directed)
    assert set(undirected.values()) == {2}
    # Euler characteristic of a sphere
    assert v.shape[0] - len(undirected) + f.shape[0] == 2
    assert m.edges_packed().shape[0] == len(undirected)
    # no duplicated vertices
    d = torch.cdist(v, v) + torch.eye(v.shape[0]) * 10
    assert d.min() > 1e-3
    # every vertex used
    assert torch.unique(f).numel() == v.shape[0]


def test_icosahedron_is_regular():
    m = ico_sphere(0, dtype=torch.float64)
    e = m.edges_packed()
    v = m.verts_packed()
    lengths = (v[e[:, 0]] - v[e[:, 1]]).norm(dim=1)
    assert e.shape[0] == 30
    torch.testing.assert_close(lengths, lengths.new_full((30,), float(lengths[0])))
    # edge length of an icosahedron inscribed in the unit sphere: 4 / sqrt(10 + 2 sqrt 5)
    torch.testing.assert_close(lengths[0], torch.tensor(4 / (10 + 2 * 5**0.5) ** 0.5, dtype=torch.float64))


def test_dtype_device_and_surface_area_converges():
    m = ico_sphere(4, dtype=torch.float64, device=torch.device("cpu"))
    assert m.dtype == torch.float64 and m.device.type == "cpu"
    area = m.faces_areas_packed().sum()
    # inscribed polyhedron: area below 4 pi, and close at level 4
    assert 4 * torch.pi * 0.99 < area < 4 * torch.pi


def test_subdivide_faces_midpoints_and_grad():
    v = torch.tensor([[0.0, 0, 0], [2, 0, 0], [0, 2, 0]], dtype=torch.float64, requires_grad=True)
    f = torch.tensor([[0, 1, 2]])
    nv, nf = subdivide_faces(v, f)
    assert nv.shape == (6, 3) and nf.shape == (4, 3)
    mids = {tuple(x) for x in nv[3:].tolist()}
    assert mids == {(1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (1.0, 1.0, 0.0)}
    areas = Meshes([nv], [nf]).faces_areas_packed()
    torch.testing.assert_close(areas, torch.full((4,), 0.5, dtype=torch.float64))
    normals = Meshes([nv], [nf]).faces_normals_packed()
    torch.testing.assert_close(normals, torch.tensor([[0.0, 0, 1]] * 4, dtype=torch.float64))  # winding kept
    assert torch.autograd.gradcheck(lambda x: subdivide_faces(x, f)[0], (v,))


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"level": -1}, ValueError, "level"),
    ({"level": 11}, ValueError, "level"),
    ({"level": 1.0}, TypeError, "level"),
    ({"level": "2"}, TypeError, "level"),
    ({"dtype": torch.int64}, TypeError, "dtype"),
])
def test_bad_input(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        ico_sphere(**kwargs)


V3 = torch.rand(3, 3)
F1 = torch.tensor([[0, 1, 2]])


@pytest.mark.parametrize("verts, faces, exc, match", [
    (V3.tolist(), F1, TypeError, "verts"),
    (V3.long(), F1, TypeError, "verts"),
    (V3, F1.float(), TypeError, "faces"),
    (V3[:, :2], F1, ValueError, "verts"),
    (V3, F1[0], ValueError, "faces"),
    (torch.full((3, 3), float("nan")), F1, ValueError, "verts"),
    (V3, torch.tensor([[0, 1, 3]]), ValueError, "faces"),
    (V3, torch.tensor([[0, -1, 2]]), ValueError, "faces"),
    (V3, F1.to("meta"), ValueError, "faces"),
])
def test_subdivide_faces_bad_input(verts, faces, exc, match):
    with pytest.raises(exc, match=match):
        subdivide_faces(verts, faces)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 12), st.integers(1, 15), st.integers(0, 2**31 - 1))
def test_subdivide_faces_properties(nv, nf, seed):
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(nv, 3, generator=g, dtype=torch.float64)
    f = torch.randint(0, nv, (nf, 3), generator=g)
    new_v, new_f = subdivide_faces(v, f)
    m, sub = Meshes([v], [f]), Meshes([new_v], [new_f])
    assert new_v.shape[0] == nv + m.edges_packed().shape[0] and new_f.shape[0] == 4 * nf
    assert torch.equal(new_v[:nv], v)
    # children k*F + i (k = 0..3) come from parent i: areas sum to the parent's, normals are the parent's
    child_area = sub.faces_areas_packed().view(4, nf)
    torch.testing.assert_close(child_area.sum(0), m.faces_areas_packed())
    torch.testing.assert_close(child_area, m.faces_areas_packed().expand(4, nf) / 4)
    parent_n = m.faces_normals_packed()
    for k in range(4):
        torch.testing.assert_close(sub.faces_normals_packed().view(4, nf, 3)[k], parent_n)
    # no duplicated midpoints: every new vertex is the midpoint of exactly one unique edge
    e = m.edges_packed()
    torch.testing.assert_close(new_v[nv:], 0.5 * (v[e[:, 0]] + v[e[:, 1]]))
