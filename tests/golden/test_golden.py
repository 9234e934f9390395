"""Golden images: every scene of scenes.py re-rendered and compared with its PNG in tests/golden/.

Regenerate ONLY with ``python tests/golden/regenerate.py`` (and look at the PNGs before committing).
Tolerance (scenes.py): mean absolute difference <= 1/255 and at most 0.5 % of pixels off by more than
2/255 in any channel (8-bit quantisation plus a few edge pixels that may flip across backends/platforms).
"""
import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

_spec = importlib.util.spec_from_file_location("golden_scenes", Path(__file__).resolve().parent / "scenes.py")
scenes = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(scenes)


@pytest.mark.parametrize("name", scenes.ALL())
def test_golden_image(name):
    missing = scenes.missing_input(name)
    if missing is not None:
        pytest.skip(f"shared test mesh not found: {missing}")
    path = scenes.golden_path(name)
    assert path.is_file(), f"no golden image {path}; run python tests/golden/regenerate.py {name}"
    want = np.asarray(Image.open(path), dtype=np.float64) / 255.0
    got = scenes.render(name).numpy().astype(np.float64)
    if want.ndim == 2:
        want = want[..., None]
    assert got.shape == want.shape, f"{name}: rendered {got.shape}, golden {want.shape}"
    diff = np.abs(got - want)
    bad = (diff.max(axis=-1) > scenes.BAD_THRESHOLD).mean()
    assert diff.mean() <= scenes.MAX_MEAN_ABS and bad <= scenes.MAX_BAD_FRACTION, (
        f"{name}: mean |diff| {diff.mean() * 255:.3f}/255, {bad:.2%} pixels off by > 2/255 "
        f"(allowed {scenes.MAX_MEAN_ABS * 255:.1f}/255 and {scenes.MAX_BAD_FRACTION:.1%})"
    )


def test_golden_comparison_can_fail():
    # The tolerance must catch a real change: a slightly different light shifts many pixels.
    from diffras.shading import PointLights

    want = scenes.render("cow_hard_phong").numpy()
    orig = scenes._lights
    try:
        scenes._lights = lambda: PointLights(location=((1.0, 2.5, -3.0),))
        got = scenes.render("cow_hard_phong").numpy()
    finally:
        scenes._lights = orig
    diff = np.abs(got - want)
    assert (diff.max(axis=-1) > scenes.BAD_THRESHOLD).mean() > scenes.MAX_BAD_FRACTION
