import os
from pathlib import Path

import pytest
import torch

# ../shared/data next to the checkout (CI clones main with shared/ beside it).
SHARED_DATA = Path(os.environ.get("DIFFRAS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
MESH_DIR = SHARED_DATA / "meshes"


@pytest.fixture
def mesh_dir() -> Path:
    if not MESH_DIR.is_dir():
        pytest.skip(f"shared test meshes not found at {MESH_DIR} (set DIFFRAS_SHARED_DATA)")
    return MESH_DIR


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
