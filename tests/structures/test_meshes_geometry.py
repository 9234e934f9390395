"""Meshes geometry (normals, areas, bounding boxes) against hand values, and gradients from every view."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings

from diffras.structures import Meshes

sys.path.insert(0, str(Path(__file__).parent))
from _mesh_batches import mesh_batches, random_lists  # noqa: E402


def unit_cube(dtype=torch.float64):
    """Axis-aligned cube [0, 1]^3, 8 verts, 12 faces wound outward."""
    v = torch.tensor([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], dtype=dtype)
    # vertex index = 4x + 2y + z
    f = torch.tensor([
        [0, 1, 3], [0, 3, 2],  # x = 0, normal -x
        [4, 6, 7], [4, 7, 5],  # x = 1, normal +x
        [0, 4, 5], [0, 5, 1],  # y = 0, normal -y
        [2, 3, 7], [2, 7, 6],  # y = 1, normal +y
        [0, 2, 6], [0, 6, 4],  # z = 0, normal -z
        [1, 5, 7], [1, 7, 3],  # z = 1, normal +z
    ])
    return v, f


def test_cube_normals_areas_bbox():
    v, f = unit_cube()
    m = Meshes([v], [f])
    fn = m.faces_normals_packed()
    expected_fn = torch.tensor([[-1, 0, 0]] * 2 + [[1, 0, 0]] * 2 + [[0, -1, 0]] * 2 + [[0, 1, 0]] * 2
                               + [[0, 0, -1]] * 2 + [[0, 0, 1]] * 2, dtype=v.dtype)
    torch.testing.assert_close(fn, expected_fn)
    torch.testing.assert_close(m.faces_areas_packed(), torch.full((12,), 0.5, dtype=v.dtype))
    # Each corner touches 3 face planes; area-weighted: corner 0 lies in both triangles of the x=0 face, one
    # (area 0.5) of y=0 ... so weights differ per vertex. Compute by hand from which triangles use the vertex.
    vn = m.verts_normals_packed()
    for i in range(8):
        acc = torch.zeros(3, dtype=v.dtype)
        for k in range(12):
            if i in f[k].tolist():
                acc += 0.5 * expected_fn[k]
        torch.testing.assert_close(vn[i], acc / acc.norm())
        # Every cube corner normal points away from the centre along the diagonal octant.
        assert torch.all(torch.sign(vn[i]) == torch.sign(v[i] - 0.5))
    # by hand: corner 0 = (0,0,0) lies in both triangles of x=0, y=0, z=0 -> (-1,-1,-1)/sqrt 3; corner 7 likewise
    # (+1,+1,+1)/sqrt 3; corner 1 = (0,0,1) is in one triangle of x=0 and of y=0 (area 1/2 each) and both of
    # z=1 -> (-1/2, -1/2, 1) -> (-1, -1, 2)/sqrt 6
    s3, s6 = 1 / math.sqrt(3), 1 / math.sqrt(6)
    torch.testing.assert_close(vn[0], torch.tensor([-s3, -s3, -s3], dtype=v.dtype))
    torch.testing.assert_close(vn[7], torch.tensor([s3, s3, s3], dtype=v.dtype))
    torch.testing.assert_close(vn[1], torch.tensor([-s6, -s6, 2 * s6], dtype=v.dtype))
    torch.testing.assert_close(m.get_bounding_boxes(), torch.tensor([[[0.0, 1.0]] * 3], dtype=v.dtype))


def test_tetrahedron_normals_and_areas():
    v = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=torch.float64)
    f = torch.tensor([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    m = Meshes([v], [f])
    s = 1 / math.sqrt(3)
    torch.testing.assert_close(m.faces_normals_packed(), torch.tensor(
        [[0, 0, -1], [0, -1, 0], [-1, 0, 0], [s, s, s]], dtype=v.dtype))
    torch.testing.assert_close(m.faces_areas_packed(), torch.tensor(
        [0.5, 0.5, 0.5, math.sqrt(3) / 2], dtype=v.dtype))
    # vertex 0: three right-angle faces of area 1/2 -> (-1, -1, -1)/sqrt(3)
    torch.testing.assert_close(m.verts_normals_packed()[0], torch.full((3,), -s, dtype=v.dtype))
    # vertex 1: faces 0 (-z), 1 (-y), 3 (slanted, area sqrt(3)/2) -> sum = (1/2, 0, -1/2)... by hand:
    acc = 0.5 * torch.tensor([0, 0, -1.0]) + 0.5 * torch.tensor([0, -1.0, 0]) + 0.5 * torch.tensor([1.0, 1, 1])
    torch.testing.assert_close(m.verts_normals_packed()[1], (acc / acc.norm()).double())


def test_isolated_and_degenerate_give_zero_not_nan():
    v = torch.tensor([[0.0, 0, 0], [1, 0, 0], [2, 0, 0], [5, 5, 5]], requires_grad=True)
    f = torch.tensor([[0, 1, 2]])  # collinear: zero area
    m = Meshes([v], [f])
    assert torch.equal(m.faces_normals_packed(), torch.zeros(1, 3))
    assert torch.equal(m.verts_normals_packed(), torch.zeros(4, 3))
    assert torch.equal(m.faces_areas_packed(), torch.zeros(1))
    (m.verts_normals_packed().sum() + m.faces_areas_packed().sum() + m.faces_normals_packed().sum()).backward()
    assert torch.isfinite(v.grad).all()


@settings(max_examples=30, deadline=None)
@given(mesh_batches())
def test_bounding_boxes_and_areas_random(batch):
    verts, faces = batch
    m = Meshes(verts, faces)
    bb = m.get_bounding_boxes()
    areas = m.faces_areas_packed()
    normals = m.faces_normals_packed()
    for i, (v, f) in enumerate(zip(verts, faces)):
        if v.shape[0]:
            torch.testing.assert_close(bb[i, :, 0], v.min(0).values)
            torch.testing.assert_close(bb[i, :, 1], v.max(0).values)
        else:
            assert torch.equal(bb[i], torch.zeros(3, 2))
    fv = m.verts_packed()[m.faces_packed()]
    for k in range(fv.shape[0]):
        a, b, c = fv[k].double()
        cr = torch.linalg.cross(b - a, c - a)
        torch.testing.assert_close(areas[k].double(), cr.norm() / 2, rtol=1e-5, atol=1e-6)
        if cr.norm() > 1e-3:
            torch.testing.assert_close(normals[k].double(), cr / cr.norm(), rtol=1e-4, atol=1e-5)
    norms = m.verts_normals_packed().norm(dim=1)
    assert torch.all(((norms - 1).abs() < 1e-4) | (norms < 1e-6))


def _views(m):
    return {
        "verts_packed": m.verts_packed(),
        "verts_padded": m.verts_padded(),
        "verts_list": torch.cat(m.verts_list()),
        "verts_normals_packed": m.verts_normals_packed(),
        "verts_normals_padded": m.verts_normals_padded(),
        "faces_normals_padded": m.faces_normals_padded(),
        "faces_areas_packed": m.faces_areas_packed(),
        "bbox": m.get_bounding_boxes(),
    }


@pytest.mark.parametrize("view", list(_views(Meshes([torch.rand(3, 3)], [torch.tensor([[0, 1, 2]])])).keys()))
@pytest.mark.parametrize("padded_input", [False, True])
def test_gradients_reach_input_verts_from_every_view(view, padded_input):
    verts, faces = random_lists([(5, 4), (4, 3)], 3, dtype=torch.float64)
    if padded_input:
        src = Meshes(verts, faces)
        vp = src.verts_padded().detach().requires_grad_(True)
        m, leaves = Meshes(vp, src.faces_padded()), [vp]
    else:
        leaves = [v.requires_grad_(True) for v in verts]
        m = Meshes(leaves, faces)
    out = _views(m)[view]
    out.backward(torch.randn_like(out))
    assert all(leaf.grad is not None and torch.isfinite(leaf.grad).all() for leaf in leaves)
    assert any(leaf.grad.abs().sum() > 0 for leaf in leaves)


def test_gradcheck_normals_and_areas():
    verts, faces = random_lists([(5, 5), (4, 3)], 7, dtype=torch.float64)
    nv = [v.shape[0] for v in verts]

    def fn(vp):
        m = Meshes(list(torch.split(vp, nv)), faces)
        return m.verts_normals_packed(), m.faces_normals_packed(), m.faces_areas_packed()

    vp = torch.cat(verts).requires_grad_(True)
    assert torch.autograd.gradcheck(fn, (vp,))


def test_offset_scale_update_padded():
    verts, faces = random_lists([(5, 4), (3, 2)], 4, dtype=torch.float64)
    m = Meshes(verts, faces)
    off = torch.randn(8, 3, dtype=torch.float64, requires_grad=True)
    m2 = m.offset_verts(off)
    torch.testing.assert_close(m2.verts_packed(), m.verts_packed() + off)
    assert torch.equal(m2.faces_packed(), m.faces_packed())
    m2.verts_normals_packed().sum().backward()
    assert off.grad is not None and off.grad.abs().sum() > 0
    # broadcast (3,) offset
    m3 = m.offset_verts(torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64))
    torch.testing.assert_close(m3.verts_list()[1], verts[1] + torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64))
    # normals are translation invariant, the bbox shifts
    torch.testing.assert_close(m3.verts_normals_packed(), m.verts_normals_packed())
    torch.testing.assert_close(m3.get_bounding_boxes(), m.get_bounding_boxes() + torch.tensor([1.0, 2, 3], dtype=torch.float64).view(1, 3, 1))
    # in place: caches invalidated
    m4 = m.clone()
    bb = m4.get_bounding_boxes()
    m4.offset_verts_(torch.ones(3, dtype=torch.float64))
    torch.testing.assert_close(m4.get_bounding_boxes(), bb + 1)
    # scale: per mesh
    s = torch.tensor([2.0, 3.0], dtype=torch.float64)
    m5 = m.scale_verts(s)
    torch.testing.assert_close(m5.verts_list()[0], 2 * verts[0])
    torch.testing.assert_close(m5.verts_list()[1], 3 * verts[1])
    torch.testing.assert_close(m.scale_verts(0.5).verts_packed(), 0.5 * m.verts_packed())
    m6 = m.clone().scale_verts_(2.0)
    torch.testing.assert_close(m6.verts_packed(), 2 * m.verts_packed())
    # update_padded: rows past V_i are ignored
    newp = torch.randn(2, 5, 3, dtype=torch.float64, requires_grad=True)
    m7 = m.update_padded(newp)
    torch.testing.assert_close(m7.verts_list()[0], newp[0].detach())
    torch.testing.assert_close(m7.verts_list()[1], newp[1, :3].detach())
    assert torch.equal(m7.faces_padded(), m.faces_padded())
    m7.verts_normals_padded().pow(2).sum().backward()
    assert newp.grad[1, 3:].abs().sum() == 0 and newp.grad.abs().sum() > 0


def test_gradcheck_through_batching_ops():
    from diffras.structures import join_meshes_as_batch, join_meshes_as_scene

    verts, faces = random_lists([(5, 5), (4, 3)], 8, dtype=torch.float64)
    nv = [v.shape[0] for v in verts]

    def fn(vp, off):
        m = Meshes(list(torch.split(vp, nv)), faces).offset_verts(off)
        padded = m.update_padded(m.verts_padded() * 1.5)
        joined = join_meshes_as_batch([padded[1], m.extend(2)[[0, 3]]])
        return join_meshes_as_scene(joined).verts_normals_packed(), joined.faces_areas_packed(), joined.verts_padded()

    vp = torch.cat(verts).requires_grad_(True)
    off = torch.randn(3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(fn, (vp, off))
