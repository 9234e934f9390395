"""Issue 8, item 3: every failure of a command is one line on stderr and a non-zero exit, never a traceback;
memory is estimated before allocating; DIFFRAS_DEBUG=1 keeps the traceback. Each case reproduces the
original input. Commands run in-process through ``diffras.cli.main`` (the entry point's own code path)."""
import json
import struct
import sys
import warnings
import zlib

import pytest

from diffras.cli import main
from diffras.cli.memory import available_memory, check_fits, format_bytes, render_view_bytes
from diffras.data import cow_path

NO_FACES = "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2\n"


@pytest.fixture(autouse=True)
def _plain_env(monkeypatch):
    monkeypatch.delenv("DIFFRAS_DEBUG", raising=False)
    # A fixed 8 GiB budget: the refusals below must not depend on the memory of the machine running them.
    monkeypatch.setenv("DIFFRAS_MEMORY_LIMIT", str(8 * 2**30))


def fails_in_one_line(capsys, argv, *fragments):
    """Run the command; assert exit status 1 and exactly one stderr line containing ``fragments``."""
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 1, err
    assert len(lines) == 1 and "Traceback" not in err, err
    for f in fragments:
        assert f in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def no_faces(tmp_path):
    path = tmp_path / "no_faces.obj"
    path.write_text(NO_FACES)
    return path


@pytest.mark.parametrize("command", [
    ["render", "{mesh}", "--views", "1", "--size", "8"],
    ["fit", "{mesh}", "--iters", "1", "--size", "8", "--level", "0", "--views", "1"],
    ["pose", "{mesh}", "--iters", "1", "--size", "8"],
    ["texture", "{mesh}", "--iters", "1", "--size", "8", "--texture-size", "4"],
])
def test_every_command_refuses_a_mesh_without_faces(capsys, tmp_path, no_faces, command):
    argv = [a.format(mesh=no_faces) for a in command] + ["--quiet", "--out", tmp_path / "o"]
    fails_in_one_line(capsys, argv, "no_faces.obj", "no faces")
    assert not any((tmp_path / "o").iterdir())


def test_device_meta(capsys, tmp_path):
    fails_in_one_line(capsys, ["render", cow_path(), "--device", "meta", "--out", tmp_path / "o"], "--device", "meta")


def _png_header_only(path, width, height):
    """A PNG that claims width x height pixels in a few dozen bytes (IHDR and IEND only)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return path


def test_decompression_bomb_reference_image(capsys, tmp_path):
    bomb = _png_header_only(tmp_path / "bomb.png", 30000, 30000)  # 900 megapixels
    fails_in_one_line(capsys, ["pose", cow_path(), "--image", bomb, "--size", "8", "--iters", "1",
                               "--out", tmp_path / "o"], "--image", "bomb.png")


def test_decompression_bomb_and_missing_image_key_in_cameras_json(capsys, tmp_path):
    views = tmp_path / "views"
    views.mkdir()
    _png_header_only(views / "bomb.png", 30000, 30000)
    eye = {"R": [[1, 0, 0], [0, 1, 0], [0, 0, 1]], "T": [0, 0, 3]}
    (views / "cameras.json").write_text(json.dumps({"views": [dict(eye, image="bomb.png")]}))
    fails_in_one_line(capsys, ["texture", "--views", views, "--iters", "1", "--texture-size", "4",
                               "--out", tmp_path / "o"], "--views", "bomb.png")
    (views / "cameras.json").write_text(json.dumps({"views": [eye]}))  # a view without "image": was a KeyError
    fails_in_one_line(capsys, ["texture", "--views", views, "--iters", "1", "--texture-size", "4",
                               "--out", tmp_path / "o"], "--views", "cameras.json", '"image"')


@pytest.mark.parametrize("argv, fragments", [
    (["render", "{cow}", "--size", "16384"], ["--size 16384", "16384"]),
    (["render", "{cow}", "--size", "4096"], ["--size 4096", "GiB"]),
    (["render", "{cow}", "--size", "16384", "--supersample", "1"], ["--size 16384", "GiB"]),
    (["render", "{cow}", "--size", "1024", "--views", "100000"], ["--views 100000", "GiB"]),
    (["fit", "--level", "10"], ["--level 10", "20,971,520 faces", "GiB"]),
    (["fit", "--level", "9", "--size", "2048"], ["--level 9", "GiB"]),
    (["texture", "--texture-size", "100000"], ["--texture-size 100000", "GiB"]),
    (["pose", "{cow}", "--size", "8192"], ["--size 8192", "GiB"]),
])
def test_allocations_too_large_are_refused_before_the_work(capsys, tmp_path, argv, fragments):
    argv = [a.format(cow=cow_path()) for a in argv] + ["--quiet", "--out", tmp_path / "o"]
    fails_in_one_line(capsys, argv, *fragments)


def test_debug_keeps_the_traceback(monkeypatch, tmp_path, no_faces):
    monkeypatch.setenv("DIFFRAS_DEBUG", "1")
    with pytest.raises(ValueError, match="no faces"):
        main(["render", str(no_faces), "--out", str(tmp_path / "o")])


def test_unexpected_errors_are_one_line_too(capsys, monkeypatch, tmp_path):
    import diffras.cli.runners as runners

    def broken(args):
        raise KeyError("surprise")

    monkeypatch.setattr(runners, "run_render", broken)
    fails_in_one_line(capsys, ["render", cow_path(), "--out", tmp_path / "o"], "KeyError", "surprise")


def test_memory_helpers():
    avail = available_memory()
    assert avail is None or avail > 0
    assert format_bytes(3 * 2**30) == "3.0 GiB" and format_bytes(512) == "512 B"
    # Estimates grow with the pixel count and K.
    assert render_view_bytes(512, 512, 1) < render_view_bytes(1024, 1024, 1) < render_view_bytes(1024, 1024, 8)
    check_fits(10, "--size 1", available=100)
    with pytest.raises(ValueError, match=r"--size 9: needs about 1.0 KiB.*only 100 B"):
        check_fits(1024, "--size 9", available=100)


def test_without_matplotlib_fit_warns_before_the_run_and_still_writes(monkeypatch, tmp_path):
    import torch

    import diffras.workflows.fit as fit_module
    from diffras.ops import ico_sphere
    from diffras.workflows import FitResult

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # "import matplotlib" raises ImportError
    warned_before_run = []

    def quick_fit(target, cfg, **kwargs):  # the optimisation itself is tested elsewhere
        warned_before_run.append(any("matplotlib" in str(w.message) for w in caught))
        sphere = ico_sphere(0)
        return FitResult(mesh=sphere, target=target, history={"total": [1.0]},
                         snapshots=[torch.zeros(4, 8, 3)], metrics={})

    monkeypatch.setattr(fit_module, "fit_mesh", quick_fit)
    out = tmp_path / "fit"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["fit", "--iters", "1", "--quiet", "--out", str(out)]) == 0
    assert warned_before_run == [True]
    assert (out / "metrics.json").is_file() and (out / "fit.obj").is_file()
    assert not (out / "losses.png").exists()
