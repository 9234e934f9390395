"""PyTorch3D's Meshes(verts_normals=) and submeshes semantics."""
import pytest
import torch

from diffras.ops import ico_sphere
from diffras.structures import Meshes


def _two_meshes():
    a, b = ico_sphere(1), ico_sphere(0)
    return [a.verts_packed(), b.verts_packed() * 2.0], [a.faces_packed(), b.faces_packed()]


def test_given_normals_are_returned_as_given_and_kept_by_copies():
    verts, faces = _two_meshes()
    normals = [torch.randn_like(v) for v in verts]
    m = Meshes(verts, faces, verts_normals=normals)
    assert m.has_verts_normals()
    torch.testing.assert_close(m.verts_normals_packed(), torch.cat(normals))
    torch.testing.assert_close(m.verts_normals_list()[1], normals[1])
    for copy in (m.clone(), m.detach(), m.to(dtype=torch.float64)):
        torch.testing.assert_close(copy.verts_normals_packed().float(), torch.cat(normals))


def test_padded_normals_are_accepted():
    verts, faces = _two_meshes()
    normals = [torch.randn_like(v) for v in verts]
    padded = torch.zeros(2, verts[0].shape[0], 3)
    padded[0], padded[1, :12] = normals[0], normals[1]
    m = Meshes(verts, faces, verts_normals=padded)
    torch.testing.assert_close(m.verts_normals_packed(), torch.cat(normals))


def test_in_place_vertex_update_recomputes_normals():
    verts, faces = _two_meshes()
    m = Meshes(verts, faces, verts_normals=[torch.randn_like(v) for v in verts])
    computed = Meshes(verts, faces).offset_verts(torch.full((3,), 0.5)).verts_normals_packed()
    m.offset_verts_(torch.full((3,), 0.5))
    assert not m.has_verts_normals()
    torch.testing.assert_close(m.verts_normals_packed(), computed)


def test_bad_normals_name_the_argument():
    verts, faces = _two_meshes()
    with pytest.raises(ValueError, match=r"verts_normals\[1\]"):
        Meshes(verts, faces, verts_normals=[torch.zeros_like(verts[0]), torch.zeros(3, 3)])
    with pytest.raises(ValueError, match="verts_normals"):
        Meshes(verts, faces, verts_normals=[torch.zeros_like(verts[0])])
    with pytest.raises(TypeError, match="verts_normals"):
        Meshes(verts, faces, verts_normals="up")


def test_submeshes_keep_selected_faces_with_renumbered_vertices():
    verts, faces = _two_meshes()
    m = Meshes(verts, faces)
    a, b = torch.tensor([3, 0]), torch.tensor([5])
    sub = m.submeshes([[a, b], [torch.arange(faces[1].shape[0])]])
    assert len(sub) == 3
    for k, (mesh_i, ids) in enumerate(((0, a), (0, b), (1, torch.arange(faces[1].shape[0])))):
        chosen = faces[mesh_i][ids]
        # Same triangles in space, only the vertices the faces use, in increasing original order.
        torch.testing.assert_close(sub.verts_list()[k][sub.faces_list()[k]], verts[mesh_i][chosen])
        torch.testing.assert_close(sub.verts_list()[k], verts[mesh_i][torch.unique(chosen)])
    empty = m.submeshes([[], [b]])
    assert len(empty) == 1


def test_submeshes_bad_input():
    verts, faces = _two_meshes()
    m = Meshes(verts, faces)
    with pytest.raises(ValueError, match="one entry per mesh"):
        m.submeshes([[torch.tensor([0])]])
    with pytest.raises(ValueError, match=r"face_indices\[1\]\[0\]"):
        m.submeshes([[], [torch.tensor([20])]])


def test_textured_submeshes_keep_their_colours_and_uvs():
    from diffras.textures import TexturesUV, TexturesVertex

    verts, faces = _two_meshes()
    colors = [torch.rand_like(v) for v in verts]
    m = Meshes(verts, faces, textures=TexturesVertex(colors))
    a, b = torch.tensor([3, 0]), torch.tensor([5, 7])
    sub = m.submeshes([[a], [b]])
    for k, (i, ids) in enumerate(((0, a), (1, b))):
        chosen = faces[i][ids]
        # Each corner keeps the colour of the vertex it came from.
        torch.testing.assert_close(sub.textures.verts_features_list()[k][sub.faces_list()[k]], colors[i][chosen])
    uvs = [torch.rand(v.shape[0], 2) for v in verts]
    tex = TexturesUV([torch.rand(8, 8, 3), torch.rand(4, 4, 3)], [f.clone() for f in faces], uvs, mipmap=False)
    sub = Meshes(verts, faces, textures=tex).submeshes([[a], [b]])
    for k, (i, ids) in enumerate(((0, a), (1, b))):
        t = sub.textures
        torch.testing.assert_close(t.verts_uvs_list()[k][t.faces_uvs_list()[k]], uvs[i][faces[i][ids]])
        torch.testing.assert_close(t.maps_list()[k], tex.maps_list()[i])
    assert sub.textures.mipmap is False
