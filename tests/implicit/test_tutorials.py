"""Short runs of the two PyTorch3D volume tutorials ported to diffras (examples/pytorch3d/): each
must run end to end and its loss must fall."""
import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "pytorch3d"

RUNS = {
    # tiny sizes; a larger learning rate than the tutorial's so that the fall shows within seconds
    "fit_simple_neural_radiance_field.py": ["--n-iter", "90", "--num-views", "8", "--image-size", "32",
                                            "--n-rays-per-image", "128", "--n-pts-per-ray", "32", "--n-hidden-neurons", "32",
                                            "--n-harmonic-functions", "10", "--lr", "3e-3", "--n-frames", "1",
                                            "--show-every", "1000"],
    "fit_textured_volume.py": ["--n-iter", "20", "--num-views", "8", "--image-size", "32", "--volume-size", "24",
                               "--n-pts-per-ray", "32", "--batch-size", "4", "--n-frames", "1"],
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(RUNS))
def test_tutorial_runs_and_loss_falls(name, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(EXAMPLES / name), *RUNS[name], "--out", str(out)],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    history = json.loads((out / "losses.json").read_text())
    total = [c + s for c, s in zip(history["color"], history["silhouette"])]
    k = max(3, len(total) // 8)  # Monte Carlo rays make single steps noisy: compare averages
    first, last = statistics.mean(total[:k]), statistics.mean(total[-k:])
    assert last < 0.7 * first, f"loss {first:.4f} -> {last:.4f}"
    assert (out / "progress.png").is_file() and any(out.glob("rotating_*.png"))
