"""The bundled cow: found through importlib.resources, loads textured, and its files are the documented ones."""
import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import diffras.data
from diffras.data import cow_path, load_cow
from diffras.textures import TexturesUV

DATA_DIR = Path(diffras.data.__file__).parent


def test_cow_path_is_inside_the_package():
    path = cow_path()
    assert isinstance(path, Path) and path.is_file() and path.name == "cow.obj"
    assert path.parent == DATA_DIR / "cow_mesh"
    for name in ("cow.mtl", "cow_texture.png", "README.md", "spot_README.txt"):
        assert (path.parent / name).is_file(), name


def test_load_cow():
    cow = load_cow()
    assert len(cow) == 1
    assert cow.verts_packed().shape == (2930, 3) and cow.faces_packed().shape == (5856, 3)
    assert isinstance(cow.textures, TexturesUV)
    tex = cow.textures.maps_list()[0]
    expected = np.asarray(Image.open(cow_path().parent / "cow_texture.png").convert("RGB"), np.float32) / 255
    np.testing.assert_array_equal(tex.numpy(), expected)
    assert cow.textures.verts_uvs_list()[0].shape == (3225, 2)
    # Spot is closed and genus 0 once welded: V - E + F = 2.
    assert 2930 - cow.edges_packed().shape[0] + 5856 == 2


def test_load_cow_device():
    cow = load_cow(device="cpu")
    assert cow.device == torch.device("cpu")


def test_bundled_files_match_readme_hashes():
    readme = (DATA_DIR / "README.md").read_text()
    rows = re.findall(r"^\| `([^`]+)`[^|]*\| `([0-9a-f]{64})` \|$", readme, flags=re.MULTILINE)
    assert len(rows) == 5
    for name, digest in rows:
        blob = (DATA_DIR / "cow_mesh" / name).read_bytes()
        assert hashlib.sha256(blob).hexdigest() == digest, name


def test_bundled_files_match_shared_copy(mesh_dir):
    for name in ("cow.obj", "cow.mtl", "cow_texture.png", "README.md", "spot_README.txt"):
        shared = mesh_dir / "cow_mesh" / name
        if not shared.is_file():
            pytest.skip(f"{shared} absent")
        assert (DATA_DIR / "cow_mesh" / name).read_bytes() == shared.read_bytes(), name


def test_licence_notes_ship():
    assert "public domain" in (DATA_DIR / "cow_mesh" / "spot_README.txt").read_text()
    assert "public domain" in (DATA_DIR / "README.md").read_text()
