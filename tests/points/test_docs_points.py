"""docs/points.md's example runs as written and renders something."""
import re
from pathlib import Path

import torch

DOC = Path(__file__).resolve().parents[2] / "docs" / "points.md"


def test_points_doc_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert blocks, "docs/points.md has no python block"
    namespace = {}
    exec(compile(blocks[0], "docs/points.md", "exec"), namespace)
    images = namespace["images"]
    assert images.shape == (1, 512, 512, 3)
    blue = (images[0] == torch.tensor([0.0, 0.0, 1.0])).all(-1)
    assert 0.2 < float(blue.float().mean()) < 0.95  # background around, points in the middle
