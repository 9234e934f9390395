"""examples/pytorch3d/render_colored_points.py (PyTorch3D's tutorial on diffras) runs and draws the cow."""
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "pytorch3d" / "render_colored_points.py"


def test_render_colored_points_tutorial(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--points", "30000", "--size", "96", "--out", str(out)],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "rendered 30000 points" in proc.stdout
    blue = np.asarray(Image.open(out / "alpha_blue_background.png").convert("RGB")).astype(int)
    red = np.asarray(Image.open(out / "norm_weighted_red_background.png").convert("RGB")).astype(int)
    for img, bg in ((blue, (0, 0, 255)), (red, (255, 0, 0))):
        is_bg = (img == bg).all(-1)
        # The corners are background; the cow covers a sizeable, centred part of the image.
        assert is_bg[0, 0] and is_bg[-1, -1]
        assert 0.1 < 1 - is_bg.mean() < 0.6
        assert not is_bg[48, 48]
    assert (out / "cow_points.ply").stat().st_size > 30000 * 24
    assert Image.open(out / "batch.png").size == (192, 96)
