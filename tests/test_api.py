"""The public surface: every package has an explicit, sorted __all__ whose names all resolve."""
import importlib
import pkgutil

import pytest

import diffras

# Every public package (found, so a new one cannot be forgotten), plus the public modules with an __all__.
PACKAGES = ["diffras"] + sorted(
    info.name for info in pkgutil.walk_packages(diffras.__path__, "diffras.")
    if info.ispkg and not any(part.startswith("_") for part in info.name.split("."))
) + ["diffras.render"]


def test_packages_are_found():
    assert {"diffras.raster", "diffras.shading", "diffras.renderer", "diffras.vis"} <= set(PACKAGES)


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_and_resolves(name):
    mod = importlib.import_module(name)
    assert isinstance(mod.__all__, list) and mod.__all__ == sorted(mod.__all__)
    assert len(set(mod.__all__)) == len(mod.__all__)
    for symbol in mod.__all__:
        assert getattr(mod, symbol) is not None, f"{name}.{symbol}"
