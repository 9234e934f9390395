"""An output folder that never passes off a partial result as complete.

Every command writes into a fresh staging folder beside the destination and moves the files into
``--out`` only when the run has succeeded; a run that fails leaves ``--out`` as it was.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict

__all__ = ["OutputDir", "check_writable"]


def check_writable(out: Path) -> Path:
    """Create ``out`` (and parents) and check a file can be written there.

    Raises:
        ValueError: naming the folder, if it cannot be created or written (checked before any work starts).
    """
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-test-"):
            pass
    except OSError as e:
        raise ValueError(f"--out: cannot write to {str(out)!r}: {e.strerror or e}") from e
    return out


class OutputDir:
    """Stage files for ``out``; publish them with :meth:`commit` or drop them with :meth:`discard`.

    Use as a context manager: leaving the block by an exception discards the staged files.
    ``path(name)`` gives where to write ``name`` now; after ``commit`` the file is at ``out / name``.
    """

    def __init__(self, out: Path):
        self.out = check_writable(Path(out))
        self._stage = Path(tempfile.mkdtemp(dir=self.out, prefix=".staging-"))
        self.files: Dict[str, Path] = {}

    def path(self, name: str) -> Path:
        """Where to write ``name`` (relative to ``out``) now. Files written beside it (an OBJ's MTL and
        texture image) are published too: ``commit`` moves everything staged."""
        p = self._stage / name
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def write_json(self, name: str, data: Dict[str, Any]) -> Path:
        with open(self.path(name), "w") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
        return self.out / name

    def commit(self) -> Dict[str, Path]:
        """Move every staged file into ``out`` (replacing older ones of the same name); return them."""
        for staged in sorted(p for p in self._stage.rglob("*") if p.is_file()):
            rel = staged.relative_to(self._stage)
            final = self.out / rel
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged, final)
            self.files[str(rel)] = final
        shutil.rmtree(self._stage, ignore_errors=True)
        return dict(self.files)

    def discard(self) -> None:
        shutil.rmtree(self._stage, ignore_errors=True)
        self.files.clear()

    def __enter__(self) -> "OutputDir":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()
