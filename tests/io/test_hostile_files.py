"""Regression tests for the hostile files of issue 8 (item 2): each reproduces the original input.

No faces, OBJ index 0, coordinates far from the origin, missing / corrupt / out-of-folder textures and
glTF buffers outside the mesh's folder.
"""
import base64
import json
import struct
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from diffras.data import cow_path
from diffras.io import load_mesh, load_mesh_data

PLY_HEADER = ("ply\nformat ascii 1.0\nelement vertex {n}\nproperty float x\nproperty float y\nproperty float z\n"
              "element face 1\nproperty list uchar int vertex_indices\nend_header\n")
TRIANGLE_BODY = "0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n"

NO_FACE_FILES = {
    # The only face line has two corners: trimesh returns a mesh with vertices and no faces.
    "two_corners.obj": "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2\n",
    # The header promises 5 vertices; the body has 3, so the face line is eaten as the 4th vertex.
    "short_body.ply": PLY_HEADER.format(n=5) + TRIANGLE_BODY,
    "negative_count.ply": PLY_HEADER.format(n=-5) + TRIANGLE_BODY,
}


@pytest.mark.parametrize("name", sorted(NO_FACE_FILES))
def test_files_without_faces_raise_naming_the_file(tmp_path, name):
    path = tmp_path / name
    path.write_text(NO_FACE_FILES[name])
    with pytest.raises(ValueError, match=f"{name}.*no faces"):
        load_mesh_data(path)
    with pytest.raises(ValueError, match=name):
        load_mesh(path)


@pytest.mark.parametrize("face", ["f 0 2 3", "f 1 2 0", "f 1/0 2/1 3/2", "f 1//0 2//1 3//1", "  f 4 0/1 2"])
def test_obj_face_index_zero_raises(tmp_path, face):
    path = tmp_path / "zero.obj"
    path.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nvt 0 0\nvn 0 0 1\n" + face + "\nf 1 2 3\n")
    with pytest.raises(ValueError, match=r"zero\.obj.*line 7.*counted from 1"):
        load_mesh_data(path)


def test_obj_indices_with_zero_digits_are_fine(tmp_path):
    lines = [f"v {i} {i % 7} {i % 3}" for i in range(1, 31)] + ["f 10 20 30", "f 1/1 10 20", "f -1 -2 -3"]
    path = tmp_path / "tens.obj"
    path.write_text("\n".join(lines) + "\nvt 0 0\n")
    assert load_mesh_data(path).faces.shape == (3, 3)


@pytest.fixture
def far_cow(tmp_path):
    """cow.obj with every position moved by +1e6 (written with 9 decimals, like the original report)."""
    out = []
    for line in cow_path().read_text().splitlines():
        if line.startswith("v "):
            x = [float(t) + 1e6 for t in line.split()[1:4]]
            out.append("v %.9f %.9f %.9f" % tuple(x))
        elif not line.startswith("mtllib"):
            out.append(line)
    path = tmp_path / "far_cow.obj"
    path.write_text("\n".join(out) + "\n")
    return path


def _degenerate(faces):
    return int(((faces[:, 0] == faces[:, 1]) | (faces[:, 1] == faces[:, 2]) | (faces[:, 0] == faces[:, 2])).sum())


def test_far_from_origin_keeps_every_vertex_and_warns(far_cow):
    cow = load_mesh_data(cow_path(), dtype=torch.float64)
    with pytest.warns(UserWarning, match=r"far_cow\.obj.*float32.*dtype=torch.float64"):
        data = load_mesh_data(far_cow)
    # Welding in float32 kept 1,487 of 2,930 vertices and made 2,882 faces degenerate.
    assert data.verts.shape == (2930, 3) and data.verts.dtype == torch.float32
    assert _degenerate(data.faces) == _degenerate(cow.faces) == 0
    torch.testing.assert_close(data.faces, cow.faces)


def test_float64_keeps_the_files_values(far_cow):
    cow = load_mesh_data(cow_path(), dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no precision warning when float64 is asked for
        data = load_mesh_data(far_cow, dtype=torch.float64)
        mesh = load_mesh(far_cow, dtype=torch.float64)
    assert data.verts.dtype == torch.float64 and mesh.verts_packed().dtype == torch.float64
    torch.testing.assert_close(data.verts - 1e6, cow.verts, atol=1e-9, rtol=0)


def test_near_origin_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_mesh_data(cow_path())


def test_bad_dtype():
    with pytest.raises(TypeError, match="dtype"):
        load_mesh_data(cow_path(), dtype=torch.int32)


# --- textures and other resources a mesh names --------------------------------------------------------

RED = (255, 0, 0)
OBJ = "mtllib {mtl}\nv 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 0 1\nusemtl a\nf 1/1 2/2 3/3\n"


@pytest.fixture
def secret(tmp_path):
    """A red 'secret' image outside the mesh's folder (``tmp_path/mesh/``)."""
    path = tmp_path / "secret.png"
    Image.fromarray(np.full((8, 8, 3), RED, np.uint8)).save(path)
    (tmp_path / "mesh").mkdir()
    return path


def _obj_with_map(folder, map_kd):
    (folder / "m.mtl").write_text(f"newmtl a\nKd 1 1 1\nmap_Kd {map_kd}\n")
    path = folder / "m.obj"
    path.write_text(OBJ.format(mtl="m.mtl"))
    return path


def test_texture_inside_the_folder_loads(secret):
    Image.open(secret).save(secret.parent / "mesh" / "ok.png")
    data = load_mesh_data(_obj_with_map(secret.parent / "mesh", "ok.png"))
    assert data.texture_image is not None and data.texture_image[0, 0].tolist() == [1.0, 0.0, 0.0]


@pytest.mark.parametrize("how", ["relative", "absolute", "symlink"])
def test_texture_outside_the_folder_is_refused(secret, how):
    folder = secret.parent / "mesh"
    if how == "relative":
        name = "../secret.png"
    elif how == "absolute":
        name = str(secret)
    else:
        (folder / "link.png").symlink_to(secret)
        name = "link.png"
    path = _obj_with_map(folder, name)
    with pytest.warns(UserWarning, match=r"m\.obj.*refused.*outside the mesh's folder"):
        data = load_mesh_data(path)
    assert data.texture_image is None  # the secret's red never reaches a render


def test_missing_texture_warns_and_renders_white(secret):
    path = _obj_with_map(secret.parent / "mesh", "nothere.png")
    with pytest.warns(UserWarning, match=r"m\.obj.*'nothere\.png'.*not found"):
        mesh = load_mesh(path)
    assert mesh.textures is None  # shaders render an untextured mesh white


def test_corrupt_texture_warns(secret):
    folder = secret.parent / "mesh"
    (folder / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not a png" * 10)
    with pytest.warns(UserWarning, match=r"m\.obj.*cannot decode the texture image.*bad\.png"):
        data = load_mesh_data(_obj_with_map(folder, "bad.png"))
    assert data.texture_image is None


def test_missing_mtl_warns(tmp_path):
    path = tmp_path / "m.obj"
    path.write_text(OBJ.format(mtl="gone.mtl"))
    with pytest.warns(UserWarning, match="gone.mtl"):
        load_mesh_data(path)


def _gltf(buffer_uri, image_uri=None):
    """A one-triangle glTF naming its buffer (and optionally a texture image) by URI."""
    doc = {
        "asset": {"version": "2.0"},
        "scenes": [{"nodes": [0]}], "scene": 0, "nodes": [{"mesh": 0}],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0, "TEXCOORD_0": 1}, "indices": 2}]}],
        "buffers": [{"uri": buffer_uri, "byteLength": 66}],
        "bufferViews": [{"buffer": 0, "byteOffset": 0, "byteLength": 36},
                        {"buffer": 0, "byteOffset": 36, "byteLength": 24},
                        {"buffer": 0, "byteOffset": 60, "byteLength": 6}],
        "accessors": [
            {"bufferView": 0, "componentType": 5126, "count": 3, "type": "VEC3", "min": [0, 0, 0], "max": [1, 1, 0]},
            {"bufferView": 1, "componentType": 5126, "count": 3, "type": "VEC2"},
            {"bufferView": 2, "componentType": 5123, "count": 3, "type": "SCALAR"},
        ],
    }
    if image_uri is not None:
        doc["meshes"][0]["primitives"][0]["material"] = 0
        doc["materials"] = [{"pbrMetallicRoughness": {"baseColorTexture": {"index": 0}}}]
        doc["textures"] = [{"source": 0}]
        doc["images"] = [{"uri": image_uri}]
    return json.dumps(doc)


def _buffer_bytes():
    return struct.pack("<9f6f3H", 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 1, 0, 1, 2)


def test_gltf_buffer_inside_loads(tmp_path):
    (tmp_path / "tri.bin").write_bytes(_buffer_bytes())
    (tmp_path / "tri.gltf").write_text(_gltf("tri.bin"))
    assert load_mesh_data(tmp_path / "tri.gltf").faces.shape == (1, 3)
    embedded = "data:application/octet-stream;base64," + base64.b64encode(_buffer_bytes()).decode()
    (tmp_path / "emb.gltf").write_text(_gltf(embedded))
    assert load_mesh_data(tmp_path / "emb.gltf").faces.shape == (1, 3)


def test_gltf_buffer_outside_the_folder_is_refused(tmp_path):
    (tmp_path / "secret.bin").write_bytes(_buffer_bytes())
    (tmp_path / "mesh").mkdir()
    (tmp_path / "mesh" / "tri.gltf").write_text(_gltf("../secret.bin"))
    with pytest.raises(ValueError, match=r"tri\.gltf.*refused '\.\./secret\.bin'.*outside"):
        load_mesh_data(tmp_path / "mesh" / "tri.gltf")


def test_gltf_image_outside_the_folder_is_refused(secret):
    folder = secret.parent / "mesh"
    (folder / "tri.bin").write_bytes(_buffer_bytes())
    (folder / "tri.gltf").write_text(_gltf("tri.bin", image_uri="../secret.png"))
    with pytest.warns(UserWarning, match=r"tri\.gltf.*refused '\.\./secret\.png'"):
        data = load_mesh_data(folder / "tri.gltf")
    assert data.texture_image is None or not bool((data.texture_image == torch.tensor([1.0, 0, 0])).all(-1).any())
