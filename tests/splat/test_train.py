"""The training workflow end to end on a tiny synthetic COLMAP folder (text and binary) written from cow
renders, the .ply it exports, and `diffras render` of that .ply."""
import json

import numpy as np
import pytest
import torch

from diffras.cli import main
from diffras.splat.colmap import model_from_views, read_colmap, write_colmap
from diffras.splat.datasets import cow_views, load_views
from diffras.splat.ply import load_ply
from diffras.vis import save_image


@pytest.fixture(scope="module")
def cow_small():
    return cow_views(n_train=7, n_test=2, size=32, supersample=1, n_points=400)


def _write_colmap_folder(data, folder, binary):
    names = [f"view_{i:03d}.png" for i in range(len(data.images))]
    for name, img in zip(names, data.images):
        save_image(folder / "images" / name, img)
    H, W = data.images.shape[1:3]
    model = model_from_views(data.viewmats, data.Ks, W, H, names, data.points, data.point_colors)
    write_colmap(folder / "sparse" / "0", model, binary=binary)
    return model


@pytest.mark.parametrize("binary", [True, False])
def test_synthetic_colmap_folder_reads_back_the_cameras(tmp_path, cow_small, binary):
    _write_colmap_folder(cow_small, tmp_path, binary)
    data = load_views(tmp_path)
    # Names sort in view order; poses and intrinsics survive the quaternion round trip.
    torch.testing.assert_close(data.viewmats, cow_small.viewmats, atol=1e-5, rtol=0)
    torch.testing.assert_close(data.Ks, cow_small.Ks)
    assert (data.images - cow_small.images).abs().max() <= 1 / 255 + 1e-6
    assert len(read_colmap(tmp_path).points) == 400


def test_splat_command_trains_on_colmap_and_exports(tmp_path, cow_small):
    _write_colmap_folder(cow_small, tmp_path / "scene", binary=True)
    out = tmp_path / "out"
    assert main(["splat", str(tmp_path / "scene"), "--iters", "40", "--frames", "3", "--quiet", "--out", str(out)]) == 0
    for name in ("splats.ply", "turntable.gif", "training.png", "metrics.json", "heldout_render_vs_truth.png"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    hist = json.loads((out / "history.json").read_text())
    assert metrics["iters"] == 40 and metrics["n_test_views"] == 2 and np.isfinite(metrics["test_psnr"])
    # Training lowers the loss.
    assert np.mean(hist["loss"][-10:]) < np.mean(hist["loss"][:10])
    splats = load_ply(out / "splats.ply")
    assert len(splats["means"]) == metrics["n_gaussians"]
    # The trained scene renders through `diffras render`.
    assert main(["render", str(out / "splats.ply"), "--views", "2", "--size", "24", "--quiet", "--out", str(tmp_path / "r")]) == 0
    assert (tmp_path / "r" / "view_001.png").is_file() and (tmp_path / "r" / "turntable.gif").is_file()


def test_gsplat_example_runs(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "examples" / "gsplat" / "image_fitting.py"
    proc = subprocess.run([sys.executable, str(script), "--steps", "3", "--size", "32", "--gaussians", "200",
                           "--out", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "PSNR" in proc.stdout and (tmp_path / "fit_vs_target.png").is_file()
