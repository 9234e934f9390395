"""Meshes on real meshes (shared data) against trimesh's independent geometry; real textures objects."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from diffras.ops import sample_points_from_meshes
from diffras.structures import Meshes, join_meshes_as_batch, join_meshes_as_scene

trimesh = pytest.importorskip("trimesh")

FILES = ["teapot/teapot.obj", "bunny/bun_zipper_res2.ply", "vertex_colors/dolphins_colored.ply"]


def _load(mesh_dir, name):
    tm = trimesh.load(mesh_dir / name, process=False, force="mesh")
    v = torch.tensor(np.asarray(tm.vertices), dtype=torch.float64)
    f = torch.tensor(np.asarray(tm.faces), dtype=torch.int64)
    return tm, v, f


@pytest.mark.parametrize("name", FILES)
def test_geometry_matches_trimesh(mesh_dir, name):
    tm, v, f = _load(mesh_dir, name)
    m = Meshes([v], [f])
    np.testing.assert_allclose(m.faces_areas_packed().numpy(), tm.area_faces, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(m.get_bounding_boxes()[0].T.numpy(), tm.bounds)
    assert m.edges_packed().shape[0] == len(tm.edges_unique)
    # trimesh's face normals (unit cross products) where a face is not degenerate
    ours = m.faces_normals_packed().numpy()
    ok = np.linalg.norm(ours, axis=1) > 0.5
    assert ok.mean() > 0.99
    np.testing.assert_allclose(ours[ok], np.asarray(tm.face_normals)[ok], atol=1e-7)
    # area-weighted vertex normals: independent sum with numpy's scatter (np.add.at)
    cross = np.cross(tm.vertices[tm.faces[:, 1]] - tm.vertices[tm.faces[:, 0]],
                     tm.vertices[tm.faces[:, 2]] - tm.vertices[tm.faces[:, 0]])
    acc = np.zeros_like(tm.vertices)
    for k in range(3):
        np.add.at(acc, tm.faces[:, k], cross)
    norm = np.linalg.norm(acc, axis=1, keepdims=True)
    vn = m.verts_normals_packed().numpy()
    used = norm[:, 0] > 1e-9
    np.testing.assert_allclose(vn[used], acc[used] / norm[used], atol=1e-6)
    np.testing.assert_allclose(vn[~used], 0.0)


def test_batch_of_real_meshes_and_sampling(mesh_dir):
    loaded = [_load(mesh_dir, n) for n in FILES]
    m = Meshes([v.float() for _, v, _ in loaded], [f for _, _, f in loaded])
    assert m.num_faces_per_mesh().tolist() == [len(tm.faces) for tm, _, _ in loaded]
    for i, (tm, v, f) in enumerate(loaded):
        assert torch.equal(m.faces_list()[i], f)
        assert torch.equal(m[i].verts_packed(), v.float())
    s = join_meshes_as_scene(m)
    torch.testing.assert_close(s.faces_areas_packed().sum(), m.faces_areas_packed().sum())
    pts = sample_points_from_meshes(m, 500)
    for i, (tm, _, _) in enumerate(loaded):
        lo, hi = torch.tensor(tm.bounds, dtype=torch.float32)
        assert ((pts[i] >= lo - 1e-4) & (pts[i] <= hi + 1e-4)).all()


def test_with_real_textures_vertex():
    shading = pytest.importorskip("diffras.shading")
    TexturesVertex = shading.TexturesVertex
    verts = [torch.rand(4, 3), torch.rand(3, 3)]
    faces = [torch.tensor([[0, 1, 2], [0, 2, 3]]), torch.tensor([[0, 1, 2]])]
    feats = [torch.full((4, 3), 1.0), torch.full((3, 3), 2.0)]
    m = Meshes(verts, faces, textures=TexturesVertex(feats))
    def colours(t):
        return [x[0, 0].item() for x in t.verts_features_list()]
    assert colours(m[[1, 0]].textures) == [2.0, 1.0]
    assert colours(m[torch.tensor([False, True])].textures) == [2.0]
    assert colours(m[1].textures) == [2.0]
    assert colours(m.extend(2).textures) == [1.0, 1.0, 2.0, 2.0]
    assert colours(join_meshes_as_batch([m, m[1]]).textures) == [1.0, 2.0, 2.0]
    scene = join_meshes_as_scene(m)
    assert len(scene.textures) == 1 and scene.textures.verts_features_packed().shape == (7, 3)
    assert colours(m.clone().textures) == [1.0, 2.0] and colours(m.detach().textures) == [1.0, 2.0]
    with pytest.raises(ValueError, match="textures"):
        Meshes(verts, faces, textures=TexturesVertex(feats[:1]))
