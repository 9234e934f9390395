"""3DGS .ply round trip, COLMAP text and binary, NeRF transforms.json, SH helpers, bad input."""
import json
import math

import numpy as np
import pytest
import torch

from diffras.splat import rasterization
from diffras.splat.colmap import ColmapCamera, ColmapImage, ColmapModel, read_colmap, write_colmap
from diffras.splat.datasets import load_views
from diffras.splat.ply import load_ply, render_args, save_ply
from diffras.splat.sh import rgb_to_sh, sh_to_rgb

from .scenes import intrinsics, look_at_viewmat


def _splats(n=50, degree=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"means": torch.randn(n, 3, generator=g), "quats": torch.randn(n, 4, generator=g),
            "scales": torch.randn(n, 3, generator=g) - 3, "opacities": torch.randn(n, generator=g),
            "sh0": torch.randn(n, 1, 3, generator=g), "shN": torch.randn(n, (degree + 1) ** 2 - 1, 3, generator=g)}


@pytest.mark.parametrize("degree", [0, 3])
def test_ply_round_trip(tmp_path, degree):
    s = _splats(degree=degree)
    path = save_ply(tmp_path / "a.ply", s)
    back = load_ply(path)
    for k in s:
        assert torch.equal(back[k], s[k]), k
    # The header is the standard 3DGS layout, in order.
    header = path.read_bytes().split(b"end_header")[0].decode()
    props = [ln.split()[-1] for ln in header.splitlines() if ln.startswith("property")]
    n_rest = 3 * ((degree + 1) ** 2 - 1)
    assert props == (["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"] + [f"f_rest_{i}" for i in range(n_rest)]
                     + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"])
    if degree:
        # f_rest is channel-major: f_rest_0 .. f_rest_{K-2} are all red coefficients.
        raw = np.frombuffer(path.read_bytes()[len(header) + len("end_header\n"):], dtype="<f4").reshape(50, -1)
        assert np.array_equal(raw[:, 9], s["shN"][:, 0, 0].numpy()) and np.array_equal(raw[:, 10], s["shN"][:, 1, 0].numpy())
    kw = render_args(back)
    assert kw["sh_degree"] == degree and torch.allclose(kw["scales"], s["scales"].exp())


def test_ply_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="path"):
        load_ply(tmp_path / "missing.ply")
    (tmp_path / "mesh.ply").write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 1\nproperty float x\n"
                                        b"property float y\nproperty float z\nend_header\n" + b"\0" * 12)
    with pytest.raises(ValueError, match="missing properties"):
        load_ply(tmp_path / "mesh.ply")
    (tmp_path / "junk.ply").write_bytes(b"hello")
    with pytest.raises(ValueError, match="not a PLY"):
        load_ply(tmp_path / "junk.ply")


def test_sh_dc_helpers_invert():
    rgb = torch.rand(10, 3)
    torch.testing.assert_close(sh_to_rgb(rgb_to_sh(rgb)), rgb)


def _model(n_views=3, W=32, H=24):
    cams = {1: ColmapCamera("PINHOLE", W, H, [30.0, 31.0, 16.5, 11.5])}
    imgs = {}
    for i in range(n_views):
        V = look_at_viewmat((2.0 * math.sin(i), -0.5, -2.0 * math.cos(i)), dtype=torch.float64).numpy()
        R = V[:3, :3]
        w = math.sqrt(max(1e-12, 1 + np.trace(R))) / 2
        q = np.array([w, (R[2, 1] - R[1, 2]) / (4 * w), (R[0, 2] - R[2, 0]) / (4 * w), (R[1, 0] - R[0, 1]) / (4 * w)])
        imgs[i + 1] = ColmapImage(q, V[:3, 3], 1, f"view {i:02d}.png")
    pts = np.random.default_rng(0).normal(size=(20, 3))
    return ColmapModel(cams, imgs, pts, (np.arange(60).reshape(20, 3) * 4).astype(np.uint8))


@pytest.mark.parametrize("binary", [True, False])
def test_colmap_round_trip(tmp_path, binary):
    m = _model()
    write_colmap(tmp_path / "sparse" / "0", m, binary=binary)
    back = read_colmap(tmp_path)
    assert back.cameras[1].K().tolist() == m.cameras[1].K().tolist()
    for i, im in m.images.items():
        assert back.images[i].name == im.name and back.images[i].camera_id == 1
        np.testing.assert_allclose(back.images[i].viewmat(), im.viewmat(), atol=1e-12)
    np.testing.assert_allclose(back.points, m.points)
    assert np.array_equal(back.colors, m.colors)


def test_colmap_folder_loads_as_views(tmp_path):
    from PIL import Image

    m = _model(n_views=9)
    write_colmap(tmp_path / "sparse" / "0", m, binary=False)
    (tmp_path / "images").mkdir()
    for im in m.images.values():
        Image.fromarray(np.full((24, 32, 3), 128, np.uint8)).save(tmp_path / "images" / im.name)
    data = load_views(tmp_path, size=16)
    assert data.images.shape == (9, 12, 16, 3)
    assert data.test == [0, 8] and len(data.train) == 7
    torch.testing.assert_close(data.Ks[0, 0, 0], torch.tensor(15.0))  # focal scaled with the image
    assert data.points.shape == (20, 3)
    with pytest.raises(FileNotFoundError, match="no COLMAP model"):
        load_views(tmp_path / "images")


def test_nerf_transforms(tmp_path):
    from PIL import Image

    frames = []
    for i in range(3):
        c2w = np.eye(4)
        c2w[:3, 3] = [0.0, 0.0, 4.0 + i]  # OpenGL: looking down -Z, at the origin
        frames.append({"file_path": f"./r_{i}", "transform_matrix": c2w.tolist()})
        Image.fromarray(np.zeros((20, 20, 4), np.uint8)).save(tmp_path / f"r_{i}.png")
    (tmp_path / "transforms.json").write_text(json.dumps({"camera_angle_x": math.radians(60), "frames": frames}))
    data = load_views(tmp_path)
    assert data.images.shape == (3, 20, 20, 3) and bool((data.images == 1).all())  # transparent -> white
    # The origin is straight ahead (+Z in OpenCV) at distance 4 + i, projecting to the image centre.
    p = data.viewmats[:, :3, 3]
    torch.testing.assert_close(p, torch.tensor([[0.0, 0, 4], [0, 0, 5], [0, 0, 6]]))
    torch.testing.assert_close(data.Ks[0, 0, 0], torch.tensor(10 / math.tan(math.radians(30))))


def test_bad_input_names_the_argument():
    V, K = look_at_viewmat((0, 0, -3.0))[None], intrinsics(16, 16)[None]
    n = 3
    good = dict(means=torch.zeros(n, 3, dtype=torch.float64), quats=torch.tensor([[1.0, 0, 0, 0]] * n, dtype=torch.float64),
                scales=torch.ones(n, 3, dtype=torch.float64) * 0.1, opacities=torch.ones(n, dtype=torch.float64) * 0.5,
                colors=torch.rand(n, 3, dtype=torch.float64), viewmats=V, Ks=K, width=16, height=16)
    rasterization(**good)
    cases = [
        (dict(means=torch.zeros(n, 2)), ValueError, "means"),
        (dict(quats=torch.zeros(n, 4, dtype=torch.float64)), ValueError, "quats"),
        (dict(opacities=torch.ones(n + 1, dtype=torch.float64)), ValueError, "opacities"),
        (dict(means=torch.full((n, 3), float("nan"), dtype=torch.float64)), ValueError, "means"),
        (dict(colors=torch.rand(n, 4, 3, dtype=torch.float64), sh_degree=3), ValueError, "SH coefficients"),
        (dict(viewmats=V[:, :3]), ValueError, "viewmats"),
        (dict(width=0), ValueError, "width"),
        (dict(width=16.5), TypeError, "width"),
        (dict(render_mode="RGBD"), ValueError, "render_mode"),
        (dict(rasterize_mode="aa"), ValueError, "rasterize_mode"),
        (dict(near_plane=0.0), ValueError, "near_plane"),
        (dict(backgrounds=torch.ones(2, 3, dtype=torch.float64)), ValueError, "backgrounds"),
        (dict(absgrad=True), ValueError, "absgrad"),
        (dict(camera_model="fisheye"), ValueError, "camera_model"),
        (dict(Ks=-K), ValueError, "Ks"),
        (dict(means=[[0, 0, 0]]), TypeError, "means"),
    ]
    for change, err, word in cases:
        with pytest.raises(err, match=word):
            rasterization(**dict(good, **change))
