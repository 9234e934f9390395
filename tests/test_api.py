"""The public surface: every package has an explicit, sorted __all__ whose names all resolve."""
import importlib

import pytest

PACKAGES = ["diffras", "diffras.cameras", "diffras.data", "diffras.io", "diffras.losses", "diffras.ops",
            "diffras.raster", "diffras.render", "diffras.shading", "diffras.splat", "diffras.structures", "diffras.transforms",
            "diffras.vis", "diffras.workflows"]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_and_resolves(name):
    mod = importlib.import_module(name)
    assert isinstance(mod.__all__, list) and mod.__all__ == sorted(mod.__all__)
    assert len(set(mod.__all__)) == len(mod.__all__)
    for symbol in mod.__all__:
        assert getattr(mod, symbol) is not None, f"{name}.{symbol}"
