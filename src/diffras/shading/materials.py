"""Materials: how much of each light term a surface reflects (PyTorch3D's ``Materials``)."""
from __future__ import annotations

from typing import Any, Optional

import torch

from ._batched import BatchedProperties

__all__ = ["Materials"]


class Materials(BatchedProperties):
    """A batch of Phong materials, one per mesh (or one shared: batch 1).

    The shaders compute ``colour = (ambient + diffuse) * texel + specular`` with
    ``ambient = material.ambient_color * light.ambient_color``,
    ``diffuse = material.diffuse_color * light_diffuse`` and
    ``specular = material.specular_color * light_specular(shininess)`` (see :mod:`diffras.shading.lighting`).

    Args:
        ambient_color, diffuse_color, specular_color: (N, C) or a C-vector; the same C for all three
            (C = 3 for RGB). Defaults white, as PyTorch3D.
        shininess: (N,) or a number >= 0, the specular exponent (higher: a tighter highlight). Default 64.
        device, dtype: for inputs given as numbers; tensors keep theirs (all must share one device).

    Every property may be a tensor that requires grad.
    """

    _PROPS = {"ambient_color": "color", "diffuse_color": "color", "specular_color": "color", "shininess": "scalar"}

    def __init__(
        self,
        ambient_color: Any = ((1.0, 1.0, 1.0),),
        diffuse_color: Any = ((1.0, 1.0, 1.0),),
        specular_color: Any = ((1.0, 1.0, 1.0),),
        shininess: Any = 64.0,
        *,
        device: Any = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__(ambient_color=ambient_color, diffuse_color=diffuse_color, specular_color=specular_color,
                         shininess=shininess, device=device, dtype=dtype)
        self._validate()

    def _validate(self) -> None:
        C = self.ambient_color.shape[-1]
        for n in ("diffuse_color", "specular_color"):
            t = getattr(self, n)
            if t.shape[-1] != C:
                raise ValueError(f"{n}: expected shape (N, {C}) (the channels of ambient_color), got {tuple(t.shape)}")
        if bool((self.shininess.detach() < 0).any()):
            raise ValueError(f"shininess: expected values >= 0, got min {float(self.shininess.min())}")
