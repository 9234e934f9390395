import os
from pathlib import Path

import pytest
import torch

# ../shared/data next to the checkout (CI clones main with shared/ beside it); DIFFRAS_SHARED_DATA overrides.
SHARED_DATA = Path(os.environ.get("DIFFRAS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
MESH_DIR = SHARED_DATA / "meshes"


def in_ci() -> bool:
    """True under CI (``CI=true``, as GitHub Actions, GitLab and most CI services set it)."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def pytest_sessionstart(session):
    # In CI the data folder is always provisioned: a missing one is a broken set-up, and skipping every
    # test that needs it would report a green run that tested little. Fail the whole run at once.
    if in_ci() and not MESH_DIR.is_dir():
        raise pytest.UsageError(
            f"CI=true but the shared test meshes are missing at {MESH_DIR}: clone the data beside the checkout "
            "(../shared/data) or set DIFFRAS_SHARED_DATA"
        )


@pytest.fixture
def mesh_dir() -> Path:
    if not MESH_DIR.is_dir():
        if in_ci():  # unreachable after pytest_sessionstart, kept so the fixture never skips in CI
            pytest.fail(f"shared test meshes not found at {MESH_DIR} (CI=true: they must be there)")
        pytest.skip(f"shared test meshes not found at {MESH_DIR} (set DIFFRAS_SHARED_DATA)")
    return MESH_DIR


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
