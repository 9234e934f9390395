"""Every script in examples/ runs end to end for a few steps."""
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
ARGS = {
    "fit_mesh.py": ["--steps", "3", "--size", "32"],
    "camera_pose.py": ["--steps", "3", "--size", "32"],
    "texture_from_views.py": ["--steps", "3", "--size", "32", "--texture-size", "16"],
    "render_turntable.py": ["--views", "2", "--size", "32"],
}


def test_every_example_is_listed():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(ARGS)


@pytest.mark.parametrize("name", sorted(ARGS))
def test_example_runs(name, tmp_path):
    args = list(ARGS[name])
    if name == "render_turntable.py":
        args += ["--out", str(tmp_path / "t")]
    proc = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip(), "an example should say what it did"
