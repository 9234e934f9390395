"""nvdiffrast's five samples, as written in examples/nvdiffrast (import and device changed only), run at
reduced sizes and iteration counts: their losses move the way the samples describe."""
import sys
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[2] / "examples" / "nvdiffrast"
sys.path.insert(0, str(SAMPLES))

import cube  # noqa: E402
import earth  # noqa: E402
import envphong  # noqa: E402
import pose  # noqa: E402
import triangle  # noqa: E402


def test_triangle(tmp_path):
    out = triangle.main(["--out", str(tmp_path / "tri.png")])
    assert (tmp_path / "tri.png").is_file()
    img = out[0]
    # Bottom-left corner red, bottom-right green, top-left blue (row 0 is the bottom).
    assert img[30, 30].argmax() == 0 and img[30, 220].argmax() == 1 and img[220, 30].argmax() == 2
    assert (img[220, 220] == 0).all()


def test_cube_fit_converges(tmp_path):
    log = cube.fit_cube(max_iter=150, resolution=16, log_interval=10, out_dir=str(tmp_path), display_res=64)
    first, last = log[0][1], log[-1][1]
    assert last < 0.5 * first, log
    assert (tmp_path / "cube_c_16.png").is_file()


def test_pose_converges():
    # The sample's two phases (greedy random search, then gradients from antialias) at 48 px, 160 steps.
    (err, err_best), = pose.fit_pose(max_iter=160, resolution=48, log_interval=0, seed=0)
    assert err < 2.0 and err_best < 2.0


def test_earth_texture_improves():
    log = earth.fit_earth(max_iter=12, log_interval=4, enable_mip=True, res=32, ref_res=128, tex_res=32, lr_base=5e-2)
    psnr = [p for _, _, p in log]
    assert psnr[-1] > psnr[0] + 0.5, log


def test_envphong_image_error_falls():
    log = envphong.fit_env_phong(max_iter=12, log_interval=6, res=32, env_res=8, lr_base=3e-2)
    assert log[-1][3] < 0.6 * log[0][3], log
