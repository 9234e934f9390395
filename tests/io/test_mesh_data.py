"""load_mesh_data: every shared mesh against trimesh's own reading, the cow against its OBJ text, small
hand-made files for each rule (welding, seams, colours, scenes), and one test per bad-input rule."""
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from diffras.io import MeshData, load_mesh_data

MESH_FILES = [
    "bunny/bun_zipper_res2.ply",
    "bunny/stanford-bunny.obj",
    "cow_mesh/cow.obj",
    "cow_mesh/cow.glb",
    "teapot/teapot.obj",
    "teapot/teapot_pytorch3d.obj",
    "dragon/dragon_100k.ply",
    "turbineblade/turbineblade.ply",
    "vertex_colors/dolphins_colored.ply",
    "gltf/BoxTextured.glb",
    "gltf/Duck.glb",
    "gltf/CesiumMilkTruck.glb",
]


def _trimesh_triangles(path: Path) -> np.ndarray:
    """(F, 3, 3) world-space triangles as trimesh itself places them (scenes: its own ``dump``)."""
    loaded = trimesh.load(str(path), process=False)
    meshes = loaded.dump() if isinstance(loaded, trimesh.Scene) else [loaded]
    return np.concatenate([np.asarray(m.vertices)[np.asarray(m.faces)] for m in meshes], axis=0)


def _sorted_rows(tri: np.ndarray) -> np.ndarray:
    flat = tri.reshape(len(tri), -1)
    return flat[np.lexsort(flat.T[::-1])]


@pytest.mark.parametrize("name", MESH_FILES)
def test_shared_meshes_load_like_trimesh(mesh_dir, name):
    path = mesh_dir / name
    data = load_mesh_data(path)
    ref = _trimesh_triangles(path)
    assert isinstance(data, MeshData)
    assert data.verts.dtype == torch.float32 and data.verts.dim() == 2 and data.verts.shape[1] == 3
    assert data.faces.dtype == torch.int64 and data.faces.shape == (len(ref), 3)
    assert int(data.faces.min()) >= 0 and int(data.faces.max()) < len(data.verts)
    assert torch.isfinite(data.verts).all()
    # Welding is exact: every triangle keeps its corner positions; compare as multisets since scene
    # instances may be concatenated in another order than trimesh's dump.
    ours = data.verts[data.faces].double().numpy()
    np.testing.assert_allclose(_sorted_rows(ours), _sorted_rows(ref.astype(np.float32).astype(np.float64)),
                               rtol=0, atol=1e-5 * max(1.0, np.abs(ref).max()))
    # No two welded vertices share a position.
    assert len(np.unique(data.verts.numpy(), axis=0)) == len(data.verts)
    if data.faces_uvs is not None:
        assert data.faces_uvs.shape == data.faces.shape
        assert int(data.faces_uvs.min()) >= 0 and int(data.faces_uvs.max()) < len(data.verts_uvs)
    if data.texture_image is not None:
        img = data.texture_image
        assert img.dtype == torch.float32 and img.dim() == 3 and img.shape[2] == 3
        assert float(img.min()) >= 0.0 and float(img.max()) <= 1.0


def _obj_records(path: Path):
    """v, vt and f (v and vt indices) of a triangle OBJ, for the test only."""
    v, vt, fv, ft = [], [], [], []
    for line in path.read_text().splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "v":
            v.append([float(x) for x in parts[1:4]])
        elif parts[0] == "vt":
            vt.append([float(x) for x in parts[1:3]])
        elif parts[0] == "f":
            fv.append([int(c.split("/")[0]) - 1 for c in parts[1:4]])
            ft.append([int(c.split("/")[1]) - 1 for c in parts[1:4]])
    return np.array(v), np.array(vt), np.array(fv), np.array(ft)


def test_cow_obj_matches_its_text(mesh_dir):
    path = mesh_dir / "cow_mesh" / "cow.obj"
    data = load_mesh_data(path)
    v, vt, fv, ft = _obj_records(path)
    assert data.verts.shape == (2930, 3) and data.faces.shape == (5856, 3)
    # Welding restores the file's own vertex list, in file order.
    np.testing.assert_array_equal(data.verts.numpy(), v.astype(np.float32))
    np.testing.assert_array_equal(data.faces.numpy(), fv)
    assert data.verts_uvs.shape == (3225, 2)
    np.testing.assert_array_equal(data.verts_uvs[data.faces_uvs].numpy(), vt[ft].astype(np.float32))
    expected = np.asarray(Image.open(mesh_dir / "cow_mesh" / "cow_texture.png").convert("RGB"), np.float32) / 255
    assert data.texture_image.shape == (1024, 1024, 3)
    np.testing.assert_array_equal(data.texture_image.numpy(), expected)
    assert data.verts_colors is None and data.verts_normals is None


def _corner_records(data: MeshData) -> np.ndarray:
    """(F, 15) rows: each face's corners (x, y, z, u, v), rotated so the smallest corner comes first."""
    pos = data.verts[data.faces].numpy()
    uv = data.verts_uvs[data.faces_uvs].numpy()
    corners = np.concatenate([pos, uv], axis=2)  # (F, 3, 5)
    keys = [tuple(c) for c in corners.reshape(-1, 5)]
    rank = np.argsort(np.argsort(np.array(keys, dtype=[("", "f4")] * 5), kind="stable")).reshape(-1, 3)
    first = rank.argmin(axis=1)
    rolled = np.stack([np.roll(c, -s, axis=0) for c, s in zip(corners, first)])
    return _sorted_rows(rolled)


def test_cow_glb_matches_cow_obj(mesh_dir):
    obj = load_mesh_data(mesh_dir / "cow_mesh" / "cow.obj")
    glb = load_mesh_data(mesh_dir / "cow_mesh" / "cow.glb")
    assert glb.verts.shape == (2930, 3)
    # Same texture pixels, and every face carries the same positions and UVs with the same winding:
    # the glTF UV origin (top-left) arrives converted to the OBJ one (bottom-left).
    torch.testing.assert_close(glb.texture_image, obj.texture_image, rtol=0, atol=0)
    np.testing.assert_allclose(_corner_records(glb), _corner_records(obj), rtol=0, atol=1e-6)


def test_box_glb_node_transform_and_texture(mesh_dir):
    path = mesh_dir / "gltf" / "BoxTextured.glb"
    data = load_mesh_data(path)
    scene = trimesh.load(str(path), process=False)
    (node,) = scene.graph.nodes_geometry
    transform, name = scene.graph[node]
    assert not np.allclose(transform, np.eye(4))  # the file really has a node transform to apply
    geom = scene.geometry[name]
    world = geom.vertices @ transform[:3, :3].T + transform[:3, 3]
    np.testing.assert_allclose(np.unique(data.verts.numpy(), axis=0),
                               np.unique(world.astype(np.float32), axis=0), atol=1e-6)
    assert data.verts.shape == (8, 3)  # a cube: 24 split vertices weld to its 8 corners
    image = np.asarray(geom.visual.material.baseColorTexture.convert("RGB"), np.float32) / 255
    np.testing.assert_array_equal(data.texture_image.numpy(), image)
    np.testing.assert_allclose(data.verts_uvs[data.faces_uvs].numpy().reshape(-1, 2),
                               np.asarray(geom.visual.uv, np.float32)[geom.faces].reshape(-1, 2), atol=1e-6)


def _nearest(image: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Nearest texel with align_corners=True: u = 0 / 1 are the first / last texel centres, v up."""
    h, w = image.shape[:2]
    x = np.rint(np.clip(uv[:, 0], 0, 1) * (w - 1)).astype(int)
    y = np.rint((1 - np.clip(uv[:, 1], 0, 1)) * (h - 1)).astype(int)
    return image[y, x]


def test_multi_material_scene_packs_an_atlas(mesh_dir):
    """The milk truck: 2 textured primitives sharing one image, 2 plain-coloured ones, a wheel mesh
    instanced twice. Every corner must look up the same colour in the atlas as in its source."""
    path = mesh_dir / "gltf" / "CesiumMilkTruck.glb"
    data = load_mesh_data(path)
    scene = trimesh.load(str(path), process=False)
    expected = []
    for node in scene.graph.nodes_geometry:
        _, name = scene.graph[node]
        geom = scene.geometry[name]
        mat = geom.visual.material
        if mat.baseColorTexture is not None:
            img = np.asarray(mat.baseColorTexture.convert("RGB"), np.float32) / 255
            expected.append(_nearest(img, np.asarray(geom.visual.uv)[geom.faces.reshape(-1)]))
        else:
            rgb = np.asarray(mat.baseColorFactor[:3], np.float32) / 255
            expected.append(np.broadcast_to(rgb, (geom.faces.size, 3)))
    expected = np.concatenate(expected)
    got = _nearest(data.texture_image.numpy(), data.verts_uvs[data.faces_uvs].numpy().reshape(-1, 2))
    assert data.faces.shape == (3624, 3)
    # Faces are concatenated in scene-graph order, the same order as ``expected``.
    match = np.all(np.abs(got - expected) < 1e-6, axis=1)
    assert match.mean() > 0.999, match.mean()


def test_dolphins_vertex_colours(mesh_dir):
    path = mesh_dir / "vertex_colors" / "dolphins_colored.ply"
    data = load_mesh_data(path)
    ref = trimesh.load(str(path), process=False)
    assert data.verts_colors.shape == (855, 3) and data.verts_colors.dtype == torch.float32
    assert float(data.verts_colors.min()) >= 0 and float(data.verts_colors.max()) <= 1
    np.testing.assert_allclose(data.verts_colors.numpy(), ref.visual.vertex_colors[:, :3] / 255.0, atol=1e-7)
    assert len(np.unique(data.verts_colors.numpy(), axis=0)) == 247  # SOURCES.md: 247 distinct colours
    assert data.verts_uvs is None and data.texture_image is None


def test_dragon_normals_are_the_files(mesh_dir):
    path = mesh_dir / "dragon" / "dragon_100k.ply"
    data = load_mesh_data(path)
    ref = trimesh.load(str(path), process=False)
    raw = np.asarray(ref.vertex_normals)  # read from nx ny nz (the file has them)
    norm = np.linalg.norm(raw, axis=1, keepdims=True)
    assert (norm == 0).any()  # the file has some zero normals: they must stay zero, not NaN
    expected = np.where(norm > 0, raw / np.maximum(norm, 1e-300), 0.0)
    np.testing.assert_allclose(data.verts_normals.numpy(), expected, atol=1e-6)


# ---------------------------------------------------------------- small hand-made files

def test_uv_seam_welds_positions_keeps_uvs(tmp_path):
    # A quad cut along its diagonal whose two triangles use different UVs on the shared edge.
    obj = tmp_path / "seam.obj"
    obj.write_text("v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\n"
                   "vt 0 0\nvt 0.5 0\nvt 0.5 0.5\nvt 0.6 0.5\nvt 0.6 1\nvt 0.1 1\n"
                   "f 1/1 2/2 3/3\nf 1/6 3/4 4/5\n")
    data = load_mesh_data(obj)
    np.testing.assert_array_equal(data.verts.numpy(), [[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]])
    np.testing.assert_array_equal(data.faces.numpy(), [[0, 1, 2], [0, 2, 3]])
    vt = np.array([[0, 0], [0.5, 0], [0.5, 0.5], [0.6, 0.5], [0.6, 1], [0.1, 1]], np.float32)
    np.testing.assert_array_equal(data.verts_uvs[data.faces_uvs].numpy(), vt[[[0, 1, 2], [5, 3, 4]]])
    assert data.texture_image is None  # UVs without a material image


def test_stl_triangle_soup_is_welded(tmp_path):
    box = trimesh.creation.box()
    path = tmp_path / "box.stl"
    box.export(str(path))
    data = load_mesh_data(path)
    assert data.faces.shape == (12, 3) and data.verts.shape == (8, 3)
    np.testing.assert_allclose(data.verts[data.faces].numpy(), box.vertices[box.faces], atol=1e-6)


def test_off_and_signed_zero(tmp_path):
    # -0 and 0 are the same position and must weld.
    path = tmp_path / "tri.off"
    path.write_text("OFF\n4 2 0\n0 0 0\n1 0 0\n0 1 0\n-0 -0 0\n3 0 1 2\n3 3 2 1\n")
    data = load_mesh_data(path)
    assert data.verts.shape == (3, 3)
    np.testing.assert_array_equal(data.faces.numpy(), [[0, 1, 2], [0, 2, 1]])


def test_obj_vertex_colours(tmp_path):
    path = tmp_path / "c.obj"
    path.write_text("v 0 0 0 1 0 0\nv 1 0 0 0 1 0\nv 0 1 0 0 0 1\nf 1 2 3\n")
    data = load_mesh_data(path)
    np.testing.assert_allclose(data.verts_colors.numpy(), np.eye(3), atol=1e-7)


def test_mirroring_node_transform_keeps_outward_winding(tmp_path):
    tet = trimesh.Trimesh(vertices=[[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]],
                          faces=[[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]], process=False)
    assert tet.volume > 0
    scene = trimesh.Scene()
    scene.add_geometry(tet, transform=np.diag([-1.0, 1.0, 1.0, 1.0]))
    path = tmp_path / "mirror.glb"
    scene.export(str(path))
    data = load_mesh_data(path)
    np.testing.assert_allclose(np.sort(data.verts[:, 0].numpy()), [-1, 0, 0, 0])
    v = data.verts.double()[data.faces]
    signed_volume = torch.linalg.det(v).sum() / 6  # origin is a vertex: sum of signed tetra volumes
    assert float(signed_volume) == pytest.approx(1 / 6)


@pytest.mark.parametrize("name,text", [
    ("pts.ply", "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"
                "property float z\nend_header\n0 0 0\n1 0 0\n0 1 0\n"),
    ("pts.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\n"),
])
def test_points_only_has_no_faces(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ValueError, match=f"{name}.*no faces"):
        load_mesh_data(path)


# ---------------------------------------------------------------- bad input, one test per rule

def test_missing_file(tmp_path):
    path = tmp_path / "nope.obj"
    with pytest.raises(FileNotFoundError, match="nope.obj"):
        load_mesh_data(path)


def test_path_wrong_type():
    with pytest.raises(TypeError, match="path"):
        load_mesh_data(3)


def test_directory(tmp_path):
    d = tmp_path / "dir.obj"
    d.mkdir()
    with pytest.raises(ValueError, match="dir.obj"):
        load_mesh_data(d)


def test_unknown_extension(tmp_path):
    path = tmp_path / "mesh.xyz"
    path.write_text("v 0 0 0\n")
    with pytest.raises(ValueError, match=r"mesh\.xyz.*\.xyz"):
        load_mesh_data(path)


@pytest.mark.parametrize("suffix", [".obj", ".ply", ".glb", ".stl", ".off"])
def test_empty_file(tmp_path, suffix):
    path = tmp_path / f"empty{suffix}"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        load_mesh_data(path)


@pytest.mark.parametrize("suffix,blob", [
    (".obj", b"this is not an obj file\n"),
    (".glb", b"glTF\x02\x00\x00\x00garbage"),
    (".ply", b"ply\nformat binary_little_endian 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"
             b"property float z\nelement face 1\nproperty list uchar int vertex_indices\nend_header\n\x00\x01"),
    (".off", b"OFF\n3 1 0\n0 0\n"),
])
def test_corrupt_file(tmp_path, suffix, blob):
    path = tmp_path / f"bad{suffix}"
    path.write_bytes(blob)
    with pytest.raises(ValueError, match=f"bad\\{suffix}") as info:
        load_mesh_data(path)
    assert "Traceback" not in str(info.value)


def test_obj_face_past_vertex_list(tmp_path):
    path = tmp_path / "past.obj"
    path.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 5\n")
    with pytest.raises(ValueError, match=r"past\.obj.*outside") as info:
        load_mesh_data(path)
    assert info.value.__cause__ is not None  # trimesh's error is chained, not swallowed


@pytest.mark.parametrize("bad_index", [7, 3, -1])
def test_ply_face_past_vertex_list(tmp_path, bad_index):
    path = tmp_path / "past.ply"
    path.write_text("ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"
                    "property float z\nelement face 1\nproperty list uchar int vertex_indices\nend_header\n"
                    f"0 0 0\n1 0 0\n0 1 0\n3 0 1 {bad_index}\n")
    with pytest.raises(ValueError, match=r"past\.ply.*outside the vertex list"):
        load_mesh_data(path)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_vertices(tmp_path, value):
    path = tmp_path / "nan.obj"
    path.write_text(f"v 0 0 0\nv 1 0 {value}\nv 0 1 0\nf 1 2 3\n")
    with pytest.raises(ValueError, match=r"nan\.obj.*finite"):
        load_mesh_data(path)


def test_multi_material_obj_atlas_and_weld(tmp_path):
    """Two triangles sharing an edge, one with an image material, one with a plain Kd material: trimesh
    splits them into two geometries; positions weld back across them and an atlas carries both."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (5, 6, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "a.png")
    (tmp_path / "m.mtl").write_text("newmtl img\nKd 1 1 1\nmap_Kd a.png\n\nnewmtl red\nKd 1 0 0\n")
    (tmp_path / "m.obj").write_text(
        "mtllib m.mtl\nv 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 1 1\nvt 0 1\n"
        "usemtl img\nf 1/1 2/2 3/3\nusemtl red\nf 1/1 3/3 4/4\n")
    data = load_mesh_data(tmp_path / "m.obj")
    assert data.verts.shape == (4, 3) and data.faces.shape == (2, 3)
    assert data.texture_image.numel() > pixels.size  # an atlas: the image plus a swatch for the plain material
    tri = data.verts[data.faces].numpy()
    expected_tris = np.array([[[0, 0, 0], [1, 0, 0], [1, 1, 0]], [[0, 0, 0], [1, 1, 0], [0, 1, 0]]], np.float32)
    np.testing.assert_array_equal(_sorted_rows(tri), _sorted_rows(expected_tris))
    corner_uv = data.verts_uvs[data.faces_uvs].numpy().reshape(-1, 2)
    got = _nearest(data.texture_image.numpy(), corner_uv).reshape(2, 3, 3)
    image = pixels.astype(np.float32) / 255
    src_uv = np.array([[0, 0], [1, 0], [1, 1]], np.float64)
    for f in range(2):
        if np.allclose(tri[f][2], [1, 1, 0]):  # the image face (corners 1, 2, 3)
            np.testing.assert_array_equal(got[f], _nearest(image, src_uv))
        else:
            np.testing.assert_array_equal(got[f], np.tile([1.0, 0.0, 0.0], (3, 1)))


def test_gltf_with_external_buffers_matches_glb(mesh_dir, tmp_path):
    scene = trimesh.load(str(mesh_dir / "gltf" / "BoxTextured.glb"), process=False)
    for name, blob in scene.export(file_type="gltf").items():
        (tmp_path / name).write_bytes(blob)
    data = load_mesh_data(tmp_path / "model.gltf")
    ref = load_mesh_data(mesh_dir / "gltf" / "BoxTextured.glb")
    torch.testing.assert_close(data.verts, ref.verts)
    torch.testing.assert_close(data.faces, ref.faces)
    torch.testing.assert_close(data.texture_image, ref.texture_image)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(*[st.sampled_from([-1.0, -0.0, 0.0, 0.5, 2.0])] * 3), min_size=1, max_size=30))
def test_weld_property(rows):
    from diffras.io._scene import weld

    points = np.array(rows, dtype=np.float64)
    uniq, inverse = weld(points)
    np.testing.assert_array_equal(uniq[inverse], points + 0.0)  # -0.0 and 0.0 are one position
    assert len(np.unique(uniq + 0.0, axis=0)) == len(uniq)  # no duplicates left
    # First-appearance order: the first occurrence of welded vertex k comes before that of k + 1.
    first = [int(np.argmax(inverse == k)) for k in range(len(uniq))]
    assert first == sorted(first)


def test_atlas_packing_many_images_stays_square_and_exact():
    from diffras.io._scene import Part, merge_parts

    rng = np.random.default_rng(1)
    parts, expected = [], []
    for i in range(9):
        h, w = rng.integers(3, 12, size=2)
        img = rng.integers(0, 256, (h, w, 3)).astype(np.float32) / 255
        uv = rng.random((6, 2))
        parts.append(Part(vertices=rng.random((6, 3)), faces=np.array([[0, 1, 2], [3, 4, 5]]), uv=uv, image=img,
                          image_key=i, color=np.ones(3, np.float32), vertex_colors=None, normals=None))
        expected.append(_nearest(img, uv))
    grey = np.array([0.25, 0.5, 0.75], np.float32)
    parts.append(Part(vertices=rng.random((3, 3)), faces=np.array([[0, 1, 2]]), uv=None, image=None,
                      image_key=None, color=grey, vertex_colors=None, normals=None))
    expected.append(np.tile(grey, (3, 1)))
    _, _, uv, atlas, _, _ = merge_parts(parts)
    height, width = atlas.shape[:2]
    assert max(height, width) <= 2 * min(height, width)
    np.testing.assert_array_equal(_nearest(atlas, uv), np.concatenate(expected))
