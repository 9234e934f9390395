"""load_mesh / load_meshes (Meshes with textures) and save_mesh round trips, with bad input per rule."""
import pytest
import torch
import trimesh

from diffras.io import load_mesh, load_mesh_data, load_meshes, meshes_from_data, save_mesh
from diffras.textures import TexturesAtlas, TexturesUV, TexturesVertex
from diffras.structures import Meshes


def _random_textured_mesh(seed: int = 0, dtype=torch.float32):
    """A random closed-ish mesh (icosphere-like from trimesh) with random per-corner UVs and an 8-bit
    texture, so every value survives 8-bit and text storage exactly (up to the decimals written)."""
    g = torch.Generator().manual_seed(seed)
    sphere = trimesh.creation.icosphere(subdivisions=1)
    scale = 1 + torch.rand(len(sphere.vertices), 1, generator=g, dtype=dtype)
    verts = torch.tensor(sphere.vertices, dtype=dtype) * scale
    faces = torch.tensor(sphere.faces, dtype=torch.int64)
    verts_uvs = torch.rand(50, 2, generator=g, dtype=dtype)
    faces_uvs = torch.randint(0, 50, faces.shape, generator=g)
    tex = torch.randint(0, 256, (7, 9, 3), generator=g).to(dtype) / 255
    textures = TexturesUV(maps=[tex], faces_uvs=[faces_uvs], verts_uvs=[verts_uvs])
    return Meshes([verts], [faces], textures=textures)


def test_load_mesh_uv_textured(mesh_dir):
    mesh = load_mesh(mesh_dir / "cow_mesh" / "cow.obj")
    data = load_mesh_data(mesh_dir / "cow_mesh" / "cow.obj")
    assert isinstance(mesh, Meshes) and len(mesh) == 1
    torch.testing.assert_close(mesh.verts_packed(), data.verts)
    torch.testing.assert_close(mesh.faces_packed(), data.faces)
    assert isinstance(mesh.textures, TexturesUV)
    torch.testing.assert_close(mesh.textures.maps_list()[0], data.texture_image)
    torch.testing.assert_close(mesh.textures.faces_uvs_list()[0], data.faces_uvs)
    torch.testing.assert_close(mesh.textures.verts_uvs_list()[0], data.verts_uvs)


def test_load_mesh_glb_texture(mesh_dir):
    mesh = load_mesh(mesh_dir / "gltf" / "Duck.glb")
    assert isinstance(mesh.textures, TexturesUV)
    assert mesh.textures.maps_list()[0].shape == (512, 512, 3)


def test_load_mesh_vertex_colours(mesh_dir):
    mesh = load_mesh(mesh_dir / "vertex_colors" / "dolphins_colored.ply")
    assert isinstance(mesh.textures, TexturesVertex)
    colours = mesh.textures.verts_features_list()[0]
    assert colours.shape == (855, 3) and float(colours.min()) >= 0 and float(colours.max()) <= 1


def test_load_mesh_plain_and_no_textures(mesh_dir):
    assert load_mesh(mesh_dir / "teapot" / "teapot_pytorch3d.obj").textures is None
    assert load_mesh(mesh_dir / "cow_mesh" / "cow.obj", load_textures=False).textures is None


def test_load_mesh_device_and_gradients(mesh_dir):
    mesh = load_mesh(mesh_dir / "gltf" / "BoxTextured.glb", device=torch.device("cpu"))
    assert mesh.device == torch.device("cpu") and mesh.verts_packed().dtype == torch.float32
    verts = mesh.verts_packed().clone().requires_grad_(True)
    Meshes([verts], [mesh.faces_packed()]).verts_normals_packed().sum().backward()
    assert verts.grad is not None


def test_load_meshes_batch(mesh_dir):
    paths = [mesh_dir / "cow_mesh" / "cow.obj", mesh_dir / "cow_mesh" / "cow.glb"]
    batch = load_meshes(paths)
    assert len(batch) == 2 and isinstance(batch.textures, TexturesUV)
    for i, p in enumerate(paths):
        data = load_mesh_data(p)
        torch.testing.assert_close(batch.verts_list()[i], data.verts)
        torch.testing.assert_close(batch.faces_list()[i], data.faces)
        torch.testing.assert_close(batch.textures.maps_list()[i], data.texture_image)


def test_load_meshes_mixed_textures(mesh_dir):
    paths = [mesh_dir / "cow_mesh" / "cow.obj", str(mesh_dir / "teapot" / "teapot_pytorch3d.obj")]
    with pytest.raises(ValueError, match="teapot_pytorch3d.obj.*load_textures=False"):
        load_meshes(paths)
    batch = load_meshes(paths, load_textures=False)
    assert len(batch) == 2 and batch.textures is None
    assert batch.num_faces_per_mesh().tolist() == [5856, 2464]


# ---------------------------------------------------------------- round trips

def _corner_uvs(mesh):
    tex = mesh.textures
    return tex.verts_uvs_list()[0][tex.faces_uvs_list()[0]]


def test_obj_round_trip_cow(mesh_dir, tmp_path):
    mesh = load_mesh(mesh_dir / "cow_mesh" / "cow.obj")
    out = tmp_path / "cow_copy.obj"
    save_mesh(out, mesh)
    assert (tmp_path / "cow_copy.mtl").is_file() and (tmp_path / "cow_copy.png").is_file()
    back = load_mesh(out)
    torch.testing.assert_close(back.verts_packed(), mesh.verts_packed(), rtol=0, atol=1e-6)
    torch.testing.assert_close(back.faces_packed(), mesh.faces_packed(), rtol=0, atol=0)
    torch.testing.assert_close(_corner_uvs(back), _corner_uvs(mesh), rtol=0, atol=1e-6)
    torch.testing.assert_close(back.textures.maps_list()[0], mesh.textures.maps_list()[0], rtol=0, atol=0)


@pytest.mark.parametrize("seed", [0, 1])
def test_obj_round_trip_random_textured(tmp_path, seed):
    mesh = _random_textured_mesh(seed)
    save_mesh(tmp_path / "m.obj", mesh)
    back = load_mesh(tmp_path / "m.obj")
    torch.testing.assert_close(back.verts_packed(), mesh.verts_packed(), rtol=0, atol=1e-6)
    torch.testing.assert_close(back.faces_packed(), mesh.faces_packed(), rtol=0, atol=0)
    torch.testing.assert_close(_corner_uvs(back), _corner_uvs(mesh), rtol=0, atol=1e-6)
    torch.testing.assert_close(back.textures.maps_list()[0], mesh.textures.maps_list()[0], rtol=0, atol=0)


@pytest.mark.parametrize("suffix", [".ply", ".obj"])
def test_vertex_colour_round_trip(mesh_dir, tmp_path, suffix):
    mesh = load_mesh(mesh_dir / "vertex_colors" / "dolphins_colored.ply")
    out = tmp_path / f"dolphins{suffix}"
    save_mesh(out, mesh)
    back = load_mesh(out)
    torch.testing.assert_close(back.verts_packed(), mesh.verts_packed(), rtol=0, atol=1e-6 * 800)
    torch.testing.assert_close(back.faces_packed(), mesh.faces_packed(), rtol=0, atol=0)
    torch.testing.assert_close(back.textures.verts_features_list()[0], mesh.textures.verts_features_list()[0],
                               rtol=0, atol=0)


def test_ply_round_trip_is_exact_for_float32(mesh_dir, tmp_path):
    mesh = load_mesh(mesh_dir / "bunny" / "bun_zipper_res2.ply")
    save_mesh(tmp_path / "b.ply", mesh)
    back = load_mesh(tmp_path / "b.ply")
    torch.testing.assert_close(back.verts_packed(), mesh.verts_packed(), rtol=0, atol=0)
    torch.testing.assert_close(back.faces_packed(), mesh.faces_packed(), rtol=0, atol=0)


def test_colours_are_clamped_and_quantised(tmp_path):
    verts = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]])
    faces = torch.tensor([[0, 1, 2]])
    feats = torch.tensor([[-0.5, 0.2, 1.5], [0.5, 0.25, 0.75], [1.0, 0.0, 0.3]])
    save_mesh(tmp_path / "c.ply", Meshes([verts], [faces], textures=TexturesVertex([feats])))
    back = load_mesh(tmp_path / "c.ply").textures.verts_features_list()[0]
    expected = (torch.round(feats.double().clamp(0, 1) * 255) / 255).float()  # the writer rounds in float64
    torch.testing.assert_close(back, expected, rtol=0, atol=1e-7)


def test_save_geometry_only(tmp_path, mesh_dir):
    mesh = load_mesh(mesh_dir / "cow_mesh" / "cow.obj")
    save_mesh(tmp_path / "g.obj", mesh, include_textures=False)
    assert not (tmp_path / "g.mtl").exists()
    back = load_mesh(tmp_path / "g.obj")
    assert back.textures is None
    torch.testing.assert_close(back.verts_packed(), mesh.verts_packed(), rtol=0, atol=1e-6)


def test_textures_the_format_cannot_hold_warn(tmp_path):
    mesh = _random_textured_mesh()
    with pytest.warns(UserWarning, match="TexturesUV"):
        save_mesh(tmp_path / "uv.ply", mesh)
    back = load_mesh(tmp_path / "uv.ply")
    torch.testing.assert_close(back.verts_packed(), mesh.verts_packed(), rtol=0, atol=0)
    atlas = TexturesAtlas(atlas=[torch.rand(mesh.faces_packed().shape[0], 2, 2, 3)])
    with pytest.warns(UserWarning, match="TexturesAtlas"):
        save_mesh(tmp_path / "atlas.obj", Meshes(mesh.verts_list(), mesh.faces_list(), textures=atlas))


def test_meshes_from_data_float64_stays_float64(mesh_dir):
    data = load_mesh_data(mesh_dir / "gltf" / "BoxTextured.glb")
    data.verts = data.verts.double()
    assert meshes_from_data(data).verts_packed().dtype == torch.float64


# ---------------------------------------------------------------- bad input

def test_save_batch_of_two_raises(tmp_path):
    batch = _random_textured_mesh().extend(2)
    with pytest.raises(ValueError, match="batch of 2"):
        save_mesh(tmp_path / "b.obj", batch)


def test_save_unknown_extension(tmp_path):
    with pytest.raises(ValueError, match=r"\.stl"):
        save_mesh(tmp_path / "b.stl", _random_textured_mesh())


def test_save_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="nofolder"):
        save_mesh(tmp_path / "nofolder" / "b.obj", _random_textured_mesh())


def test_save_wrong_types(tmp_path):
    with pytest.raises(TypeError, match="meshes"):
        save_mesh(tmp_path / "b.obj", torch.zeros(3, 3))
    with pytest.raises(TypeError, match="path"):
        save_mesh(5, _random_textured_mesh())
    with pytest.raises(TypeError, match="include_textures"):
        save_mesh(tmp_path / "b.obj", _random_textured_mesh(), include_textures="yes")


def test_save_unwritable_vertex_features(tmp_path):
    verts = torch.rand(3, 3)
    mesh = Meshes([verts], [torch.tensor([[0, 1, 2]])], textures=TexturesVertex([torch.rand(3, 5)]))
    with pytest.raises(ValueError, match="channels"):
        save_mesh(tmp_path / "f.ply", mesh)


def test_load_bad_device(mesh_dir):
    with pytest.raises(ValueError, match="device"):
        load_mesh(mesh_dir / "gltf" / "BoxTextured.glb", device="not_a_device")
    with pytest.raises(TypeError, match="device"):
        load_mesh(mesh_dir / "gltf" / "BoxTextured.glb", device=1.5)


def test_load_bad_flags_and_paths(mesh_dir, tmp_path):
    with pytest.raises(TypeError, match="load_textures"):
        load_mesh(mesh_dir / "gltf" / "BoxTextured.glb", load_textures=1)
    with pytest.raises(TypeError, match="paths"):
        load_meshes(str(mesh_dir / "gltf" / "BoxTextured.glb"))
    with pytest.raises(ValueError, match="paths"):
        load_meshes([])
    with pytest.raises(FileNotFoundError, match="missing.obj"):
        load_meshes([mesh_dir / "gltf" / "BoxTextured.glb", tmp_path / "missing.obj"])
    with pytest.raises(TypeError, match="data"):
        meshes_from_data({"verts": torch.zeros(3, 3)})


def test_obj_name_with_spaces(tmp_path):
    mesh = _random_textured_mesh()
    save_mesh(tmp_path / "my mesh.obj", mesh)
    assert (tmp_path / "my_mesh.mtl").is_file() and (tmp_path / "my_mesh.png").is_file()
    back = load_mesh(tmp_path / "my mesh.obj")
    torch.testing.assert_close(back.textures.maps_list()[0], mesh.textures.maps_list()[0], rtol=0, atol=0)


def test_mesh_data_repr_is_short(mesh_dir):
    text = repr(load_mesh_data(mesh_dir / "cow_mesh" / "cow.obj"))
    assert "verts=(2930, 3)" in text and "texture_image=(1024, 1024, 3)" in text and len(text) < 300


def test_load_meshes_maps_of_different_sizes(mesh_dir):
    batch = load_meshes([mesh_dir / "cow_mesh" / "cow.obj", mesh_dir / "gltf" / "Duck.glb"])
    assert [tuple(m.shape) for m in batch.textures.maps_list()] == [(1024, 1024, 3), (512, 512, 3)]
    assert batch.num_faces_per_mesh().tolist() == [5856, 4212]
