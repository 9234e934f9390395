"""PyTorch3D's io functions: file order, no welding, checked against the file's own records."""
import numpy as np
import pytest
import torch

from diffras.io import IO, load_mesh, load_obj, load_objs_as_meshes, load_ply, save_obj, save_ply


def _obj_records(path):
    """The v / vt lines and the f lines' v and vt indices (0-based) of a triangulated OBJ: an obvious reference."""
    v, vt, fv, ft = [], [], [], []
    for line in open(path):
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "v":
            v.append([float(x) for x in parts[1:4]])
        elif parts[0] == "vt":
            vt.append([float(x) for x in parts[1:3]])
        elif parts[0] == "f":
            corners = [c.split("/") for c in parts[1:]]
            assert len(corners) == 3
            fv.append([int(c[0]) - 1 for c in corners])
            if len(corners[0]) > 1 and corners[0][1]:
                ft.append([int(c[1]) - 1 for c in corners])
    return np.array(v), np.array(vt), np.array(fv), np.array(ft)


def test_load_obj_returns_the_files_records(mesh_dir):
    path = mesh_dir / "cow_mesh" / "cow.obj"
    verts, faces, aux = load_obj(path)
    v, vt, fv, ft = _obj_records(path)
    np.testing.assert_allclose(verts.numpy(), v, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(faces.verts_idx.numpy(), fv)
    # UV indices may differ where the file repeats a vt record, but every corner's UV is the file's.
    np.testing.assert_allclose(aux.verts_uvs[faces.textures_idx].numpy(), vt[ft], rtol=0, atol=1e-6)
    assert (faces.normals_idx == -1).all() and aux.normals is None
    assert (faces.materials_idx == 0).all()
    assert aux.material_colors["material_1"]["diffuse_color"].tolist() == [[1.0, 1.0, 1.0]]
    assert aux.material_colors["material_1"]["specular_color"].tolist() == [[0.0, 0.0, 0.0]]
    assert aux.texture_images["material_1"].shape[-1] == 3


def test_no_welding_keeps_the_files_vertex_count(mesh_dir):
    path = mesh_dir / "teapot" / "teapot.obj"
    verts, faces, aux = load_obj(path)
    v, _, fv, _ = _obj_records(path)
    assert verts.shape[0] == len(v) > load_mesh(path).verts_packed().shape[0]  # load_mesh welds duplicates
    np.testing.assert_array_equal(faces.verts_idx.numpy(), fv)
    assert aux.verts_uvs is None and (faces.textures_idx == -1).all()


def test_load_objs_as_meshes_is_textured_and_in_file_order(mesh_dir):
    path = mesh_dir / "cow_mesh" / "cow.obj"
    mesh = load_objs_as_meshes([path])
    verts, faces, aux = load_obj(path)
    torch.testing.assert_close(mesh.verts_packed(), verts)
    torch.testing.assert_close(mesh.textures.faces_uvs_padded()[0], faces.textures_idx)
    with pytest.raises(TypeError, match="files"):
        load_objs_as_meshes(path)


def test_save_obj_round_trips_with_texture(tmp_path, mesh_dir):
    verts, faces, aux = load_obj(mesh_dir / "cow_mesh" / "cow.obj")
    out = tmp_path / "cow copy.obj"
    save_obj(out, verts, faces.verts_idx, verts_uvs=aux.verts_uvs, faces_uvs=faces.textures_idx,
             texture_map=next(iter(aux.texture_images.values())))
    v2, f2, aux2 = load_obj(out)
    np.testing.assert_allclose(v2[f2.verts_idx].numpy(), verts[faces.verts_idx].numpy(), atol=1e-6)
    np.testing.assert_allclose(aux2.verts_uvs[f2.textures_idx].numpy(), aux.verts_uvs[faces.textures_idx].numpy(),
                               atol=1e-6)
    with pytest.raises(ValueError, match="all three"):
        save_obj(out, verts, faces.verts_idx, verts_uvs=aux.verts_uvs)


def test_ply_round_trip_keeps_order_normals_and_colors(tmp_path, mesh_dir):
    verts, faces = load_ply(mesh_dir / "bunny" / "bun_zipper_res2.ply")
    header = open(mesh_dir / "bunny" / "bun_zipper_res2.ply", "rb").read(400).decode("latin-1")
    assert f"element vertex {verts.shape[0]}" in header and f"element face {faces.shape[0]}" in header
    colors = torch.rand(verts.shape[0], 3)
    normals = torch.nn.functional.normalize(torch.randn(verts.shape[0], 3), dim=1)
    for ascii in (False, True):
        out = tmp_path / f"bunny_{ascii}.ply"
        save_ply(out, verts, faces, verts_normals=normals, ascii=ascii, colors=colors)
        v2, f2 = load_ply(out)
        torch.testing.assert_close(v2, verts, rtol=0, atol=1e-5 if ascii else 0)
        torch.testing.assert_close(f2, faces)
        m = IO().load_mesh(out)
        assert m.verts_packed().shape == verts.shape
    with pytest.raises(ValueError, match="colors"):
        save_ply(tmp_path / "x.ply", verts, faces, colors=colors[:5])


def test_io_front_end_loads_and_saves(tmp_path, mesh_dir):
    mesh = IO().load_mesh(mesh_dir / "cow_mesh" / "cow.obj")
    assert mesh.verts_packed().shape[0] == 2930 and mesh.textures is not None
    IO().save_mesh(mesh, tmp_path / "cow.obj")
    assert IO().load_mesh(tmp_path / "cow.obj").faces_packed().shape == mesh.faces_packed().shape
