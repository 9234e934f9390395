"""The command line: every command runs end to end on tiny settings, outputs parse, bad input is one line."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from diffras.cli import build_parser, main


def run_cli(*args, cwd=None):
    """Run ``python -m diffras.cli`` in a subprocess: exit status and stderr as a user sees them."""
    env = dict(os.environ)
    env.pop("DIFFRAS_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "diffras.cli", *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env
    )


def assert_one_line_error(proc, *fragments):
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for f in fragments:
        assert f in lines[0], lines[0]


@pytest.mark.parametrize("command", ["render", "fit", "pose", "texture"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for option in ("--out", "--seed", "--device", "--quiet"):
        assert option in text


def test_non_numeric_option_is_one_line_error(tmp_path):
    proc = run_cli("fit", "--iters", "many", "--out", tmp_path / "o")
    assert_one_line_error(proc, "--iters", "expected an integer", "'many'")
    assert not (tmp_path / "o").exists()


def test_zero_and_negative_values_rejected(tmp_path):
    assert_one_line_error(run_cli("render", "x.obj", "--size", "0"), "--size", ">= 1")
    assert_one_line_error(run_cli("render", "x.obj", "--dist", "-2"), "--dist", "> 0.0")
    assert_one_line_error(run_cli("render", "x.obj", "--fov", "nan"), "--fov", "finite")


def test_missing_mesh_is_one_line_error(tmp_path):
    proc = run_cli("render", tmp_path / "nope.obj", "--out", tmp_path / "o")
    assert_one_line_error(proc, "nope.obj")
    assert not any((tmp_path / "o").glob("*.png"))


def test_corrupt_mesh_is_one_line_error(tmp_path):
    bad = tmp_path / "bad.obj"
    bad.write_text("this is not an obj file\nv 1 2\nf 1 2 9\n")
    proc = run_cli("render", bad, "--out", tmp_path / "o")
    assert_one_line_error(proc, "bad.obj")


def test_unwritable_output_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    proc = run_cli("fit", "--iters", "1", "--out", blocker / "sub")
    assert_one_line_error(proc, "--out", "cannot write")


def test_unknown_device_is_one_line_error(tmp_path):
    proc = run_cli("fit", "--iters", "1", "--device", "warp9", "--out", tmp_path / "o")
    assert_one_line_error(proc, "--device")


def test_pose_reference_image_of_wrong_size(tmp_path, cow_copy):
    ref = tmp_path / "ref.png"
    Image.fromarray(np.zeros((10, 20), dtype=np.uint8)).save(ref)
    proc = run_cli("pose", cow_copy, "--image", ref, "--size", "32", "--iters", "1", "--out", tmp_path / "o")
    assert_one_line_error(proc, "--image", "32x32", "20x10")
    not_image = tmp_path / "ref2.png"
    not_image.write_bytes(b"\x89PNG but not really")
    proc = run_cli("pose", cow_copy, "--image", not_image, "--size", "32", "--iters", "1", "--out", tmp_path / "o")
    assert_one_line_error(proc, "--image", "cannot read")
    assert not (tmp_path / "o" / "metrics.json").exists()


@pytest.fixture
def cow_copy():
    from diffras.data import cow_path

    return cow_path()


def test_render_writes_views_and_gif(tmp_path, cow_copy):
    out = tmp_path / "render"
    assert main(["render", str(cow_copy), "--views", "3", "--size", "32", "--out", str(out), "--quiet"]) == 0
    pngs = sorted(out.glob("view_*.png"))
    assert len(pngs) == 3
    img = np.asarray(Image.open(pngs[0]))
    assert img.shape[:2] == (32, 32)
    assert img[..., :3].std() > 0  # not a blank frame
    with Image.open(out / "turntable.gif") as gif:
        assert gif.n_frames == 3
    assert not list(out.glob(".staging-*"))


def test_fit_writes_mesh_gif_curves_metrics(tmp_path):
    from diffras.io import load_mesh

    out = tmp_path / "fit"
    assert main(["fit", "--iters", "3", "--size", "32", "--level", "1", "--views", "4", "--out", str(out), "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("heldout_silhouette_iou", "heldout_rgb_psnr_db", "chamfer_unit_diagonal", "iterations", "wall_time_s"):
        assert key in metrics
    assert metrics["iterations"] == 3
    mesh = load_mesh(out / "fit.obj")
    assert mesh.faces_packed().shape == (80, 3)  # ico-sphere level 1
    with Image.open(out / "progress.gif") as gif:
        assert gif.n_frames >= 1
    assert Image.open(out / "losses.png").size[0] > 100


def test_pose_synthetic_reports_errors(tmp_path, cow_copy):
    out = tmp_path / "pose"
    assert main(["pose", str(cow_copy), "--iters", "3", "--size", "32", "--out", str(out), "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"rotation_error_deg", "translation_error", "recovered_R", "recovered_T"} <= set(metrics)
    assert metrics["rotation_error_deg"] >= 0
    with Image.open(out / "pose.gif") as gif:
        assert gif.n_frames >= 1


def test_texture_default_and_views_folder(tmp_path):
    out = tmp_path / "tex"
    assert main(["texture", "--iters", "2", "--size", "32", "--texture-size", "16", "--out", str(out), "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert "heldout_psnr_foreground_db" in metrics
    assert (out / "views" / "cameras.json").is_file()
    assert Image.open(out / "texture.png").size == (16, 16)
    # The folder the default run wrote is a valid --views input.
    out2 = tmp_path / "tex2"
    assert main(["texture", "--views", str(out / "views"), "--iters", "1", "--texture-size", "8",
                 "--out", str(out2), "--quiet"]) == 0
    assert (out2 / "texture.png").is_file()


def test_parser_defaults_live_in_workflow_configs():
    # None means "the workflow's default": the CLI does not declare a second copy of the numbers.
    args = build_parser().parse_args(["fit"])
    assert args.iters is None and args.size is None and args.level is None


def test_help_shows_the_workflow_defaults_as_numbers(capsys):
    from diffras.workflows import FitConfig, PoseConfig, TextureConfig

    for command, cfg, fields in (("fit", FitConfig(), ("iters", "image_size", "lr", "level", "views")),
                                 ("pose", PoseConfig(), ("iters", "image_size", "fov")),
                                 ("texture", TextureConfig(), ("iters", "image_size", "texture_size"))):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())  # argparse wraps help lines
        assert "Config." not in text, text
        for field in fields:
            assert f"(default: {getattr(cfg, field)})" in text, (command, field)


def test_python_dash_m_diffras_and_version():
    import diffras

    proc = subprocess.run([sys.executable, "-m", "diffras", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == f"diffras {diffras.__version__}"
    from importlib.metadata import version

    assert diffras.__version__ == version("diffras")
