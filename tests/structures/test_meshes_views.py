"""Meshes views and index maps against plain-Python constructions on random heterogeneous batches."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings

from diffras.structures import Meshes

sys.path.insert(0, str(Path(__file__).parent))
from _mesh_batches import mesh_batches, random_lists  # noqa: E402

SETTINGS = settings(max_examples=25, deadline=None)


def _ref_padded(xs, pad, width):
    n = len(xs)
    m = max([x.shape[0] for x in xs], default=0)
    out = torch.full((n, m, width), pad, dtype=xs[0].dtype if xs else torch.float32)
    for i, x in enumerate(xs):
        for r in range(x.shape[0]):
            out[i, r] = x[r]
    return out


@SETTINGS
@given(mesh_batches())
def test_views_round_trip_against_python(batch):
    verts, faces = batch
    m = Meshes(verts, faces)
    n = len(verts)
    assert len(m) == n
    # list views give back the inputs
    for i in range(n):
        torch.testing.assert_close(m.verts_list()[i], verts[i])
        assert torch.equal(m.faces_list()[i], faces[i])
        v_i, f_i = m.get_mesh_verts_faces(i)
        assert torch.equal(v_i, verts[i]) and torch.equal(f_i, faces[i])
    # padded views
    assert torch.equal(m.verts_padded(), _ref_padded(verts, 0.0, 3))
    assert torch.equal(m.faces_padded(), _ref_padded(faces, -1, 3).long())
    # packed views, built one element at a time
    vp, fp = [], []
    offset = 0
    for v, f in zip(verts, faces):
        vp += [v[r] for r in range(v.shape[0])]
        fp += [[int(x) + offset for x in f[r]] for r in range(f.shape[0])]
        offset += v.shape[0]
    assert torch.equal(m.verts_packed(), torch.stack(vp) if vp else torch.empty(0, 3))
    assert m.faces_packed().tolist() == fp
    assert m.faces_packed().dtype == torch.int64


@SETTINGS
@given(mesh_batches())
def test_counts_and_maps_against_python(batch):
    verts, faces = batch
    m = Meshes(verts, faces)
    nv = [v.shape[0] for v in verts]
    nf = [f.shape[0] for f in faces]
    assert m.num_verts_per_mesh().tolist() == nv
    assert m.num_faces_per_mesh().tolist() == nf
    assert m.num_verts_per_mesh().dtype == torch.int64
    v_first, f_first, v_mesh, f_mesh, v_pad = [], [], [], [], []
    vmax = max(nv)
    sv = sf = 0
    for i in range(len(verts)):
        v_first.append(sv)
        f_first.append(sf)
        v_mesh += [i] * nv[i]
        f_mesh += [i] * nf[i]
        v_pad += [i * vmax + j for j in range(nv[i])]
        sv += nv[i]
        sf += nf[i]
    assert m.mesh_to_verts_packed_first_idx().tolist() == v_first
    assert m.mesh_to_faces_packed_first_idx().tolist() == f_first
    assert m.verts_packed_to_mesh_idx().tolist() == v_mesh
    assert m.faces_packed_to_mesh_idx().tolist() == f_mesh
    assert m.verts_padded_to_packed_idx().tolist() == v_pad
    torch.testing.assert_close(m.verts_padded().reshape(-1, 3)[m.verts_padded_to_packed_idx()], m.verts_packed())
    assert m.equisized == (len(set(nv)) == 1 and len(set(nf)) == 1)
    assert m.isempty() == (sum(nf) == 0)
    assert m.valid.tolist() == [c > 0 for c in nf]


@SETTINGS
@given(mesh_batches())
def test_edges_against_python(batch):
    verts, faces = batch
    m = Meshes(verts, faces)
    fp = m.faces_packed().tolist()
    ref = sorted({tuple(sorted((f[a], f[b]))) for f in fp for a, b in ((0, 1), (1, 2), (2, 0))})
    edges = [tuple(e) for e in m.edges_packed().tolist()]
    assert edges == ref
    index = {e: k for k, e in enumerate(ref)}
    f2e = m.faces_packed_to_edges_packed().tolist()
    assert len(f2e) == len(fp)
    for f, row in zip(fp, f2e):
        for i in range(3):
            assert row[i] == index[tuple(sorted((f[(i + 1) % 3], f[(i + 2) % 3])))]
    v_mesh = m.verts_packed_to_mesh_idx().tolist()
    e_mesh = [v_mesh[a] for a, _ in ref]
    assert m.edges_packed_to_mesh_idx().tolist() == e_mesh
    assert m.num_edges_per_mesh().tolist() == [e_mesh.count(i) for i in range(len(verts))]
    first = [e_mesh.index(i) if i in e_mesh else None for i in range(len(verts))]
    got_first = m.mesh_to_edges_packed_first_idx().tolist()
    for i, f in enumerate(first):
        if f is not None:
            assert got_first[i] == f


@SETTINGS
@given(mesh_batches())
def test_padded_input_matches_list_input(batch):
    verts, faces = batch
    m = Meshes(verts, faces)
    mp = Meshes(m.verts_padded(), m.faces_padded())
    vmax = m.verts_padded().shape[1]
    # PyTorch3D semantics: a padded input means every mesh has all V (padded) vertices.
    assert mp.num_verts_per_mesh().tolist() == [vmax] * len(m)
    assert torch.equal(mp.num_faces_per_mesh(), m.num_faces_per_mesh())
    assert torch.equal(mp.verts_padded(), m.verts_padded())
    assert torch.equal(mp.faces_padded(), m.faces_padded())
    for i in range(len(m)):
        assert torch.equal(mp.faces_list()[i], faces[i])


def test_empty_batch_and_empty_meshes():
    m = Meshes([], [])
    assert len(m) == 0 and m.isempty()
    assert m.verts_packed().shape == (0, 3) and m.faces_packed().shape == (0, 3)
    assert m.verts_padded().shape == (0, 0, 3)
    assert m.get_bounding_boxes().shape == (0, 3, 2)
    e = Meshes([torch.zeros(0, 3), torch.rand(3, 3)], [torch.zeros(0, 3, dtype=torch.int64)] * 2)
    assert e.isempty() and e.num_verts_per_mesh().tolist() == [0, 3]
    assert e.edges_packed().shape == (0, 2)
    assert torch.equal(e.verts_normals_packed(), torch.zeros(3, 3))
    assert torch.equal(e.get_bounding_boxes()[0], torch.zeros(3, 2))


def test_views_are_cached_and_packed_is_the_input_for_one_mesh():
    verts, faces = random_lists([(5, 4), (3, 2)], 0)
    m = Meshes(verts, faces)
    assert m.verts_padded() is m.verts_padded()
    assert m.verts_normals_packed() is m.verts_normals_packed()
    assert m.edges_packed() is m.edges_packed()
    one = Meshes(verts[:1], faces[:1])
    assert one.verts_packed().data_ptr() == verts[0].data_ptr()  # no copy on the hot path


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_followed(dtype):
    verts, faces = random_lists([(5, 4), (3, 2)], 1, dtype=dtype)
    m = Meshes(verts, faces)
    for t in (m.verts_packed(), m.verts_padded(), m.verts_normals_packed(), m.faces_normals_packed(),
              m.faces_areas_packed(), m.get_bounding_boxes()):
        assert t.dtype == dtype
    faces32 = [f.int() for f in faces]
    assert Meshes(verts, faces32).faces_packed().dtype == torch.int64
