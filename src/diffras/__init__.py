"""diffras: a differentiable mesh renderer for PyTorch.

Pipeline: ``Meshes`` + camera -> project -> visibility (``pix_to_face``) -> differentiable ``Fragments``
-> shade -> blend -> image. Conventions (shapes, coordinate frames) are in ``docs/conventions.md``.
"""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
