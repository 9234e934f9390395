"""The contract between visibility and shading: ``Fragments``."""
from __future__ import annotations

from dataclasses import dataclass, fields

import torch

__all__ = ["Fragments"]


@dataclass(frozen=True)
class Fragments:
    """Per-pixel list of the K nearest faces and where the pixel centre lies on each.

    Shapes (see ``docs/conventions.md`` for the symbols and coordinate frames):

    - ``pix_to_face``: (N, H, W, K) int64. ``pix_to_face[n, y, x, k] = f`` means the k-th nearest face
      covering (or within ``blur_radius`` of) the centre of pixel (y, x) of image n is *packed* face f;
      -1 where fewer than k + 1 faces do. Sorted near to far; equal depths keep the lower face index first.
    - ``zbuf``: (N, H, W, K) float, view-space depth of the fragment; -1 where empty.
    - ``bary_coords``: (N, H, W, K, 3) float, barycentric coordinates of the pixel centre with respect to
      face f (perspective-correct for perspective cameras unless disabled); -1 where empty.
    - ``dists``: (N, H, W, K) float, signed squared distance in NDC (x, y) from the pixel centre to the
      face's 2D triangle boundary, negative inside; -1 where empty.

    ``zbuf``, ``bary_coords`` and ``dists`` are differentiable with respect to vertex positions and camera
    parameters; ``pix_to_face`` is integer and carries no gradient.
    """

    pix_to_face: torch.Tensor
    zbuf: torch.Tensor
    bary_coords: torch.Tensor
    dists: torch.Tensor

    def detach(self) -> "Fragments":
        return Fragments(*(getattr(self, f.name).detach() for f in fields(self)))

    def __iter__(self):
        # Unpacks like PyTorch3D's namedtuple: ``pix_to_face, zbuf, bary, dists = fragments``.
        return iter(tuple(getattr(self, f.name) for f in fields(self)))
