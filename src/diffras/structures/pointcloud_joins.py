"""Joining several ``Pointclouds``: into one bigger batch, or into a single cloud (PyTorch3D's functions)."""
from __future__ import annotations

from typing import Any, Sequence, Union

import torch

from .._validation import _describe
from .pointclouds import Pointclouds

__all__ = ["join_pointclouds_as_batch", "join_pointclouds_as_scene"]

_FIELDS = ("points", "normals", "features")


def _check_batch_list(pointclouds: Any) -> None:
    if isinstance(pointclouds, Pointclouds):
        raise TypeError("pointclouds: expected a list of Pointclouds, got a Pointclouds (it is already a batch)")
    if not isinstance(pointclouds, (list, tuple)) or len(pointclouds) == 0:
        raise TypeError(f"pointclouds: expected a non-empty list of Pointclouds, got {_describe(pointclouds)}")
    first = pointclouds[0]
    for i, pc in enumerate(pointclouds):
        if not isinstance(pc, Pointclouds):
            raise TypeError(f"pointclouds[{i}]: expected a Pointclouds, got {_describe(pc)}")
        if pc.device != first.device:
            raise ValueError(f"pointclouds[{i}]: expected device {first.device} (the device of pointclouds[0]), "
                             f"got {pc.device}")
        if pc.dtype != first.dtype:
            raise TypeError(f"pointclouds[{i}]: expected dtype {first.dtype} (the dtype of pointclouds[0]), got {pc.dtype}")


def join_pointclouds_as_batch(pointclouds: Sequence[Pointclouds]) -> Pointclouds:
    """Concatenate batches: the clouds of ``pointclouds[0]``, then of ``pointclouds[1]``, ...

    All on one device with one dtype; normals (and features) must be present in all or none, features
    with one channel count. Differentiable with respect to every input tensor.
    """
    _check_batch_list(pointclouds)
    packed = {}
    for field in _FIELDS:
        vals = [getattr(pc, f"_{field}_packed") for pc in pointclouds]
        if all(v is None for v in vals):
            packed[field] = None
            continue
        if any(v is None for v in vals):
            raise ValueError(f"pointclouds: expected all or none of the Pointclouds to have {field}, got a mix")
        if field == "features" and len({v.shape[1] for v in vals}) > 1:
            raise ValueError(f"pointclouds: expected features with one channel count, got {[v.shape[1] for v in vals]}")
        packed[field] = torch.cat(vals, 0)
    counts = torch.cat([pc.num_points_per_cloud() for pc in pointclouds], 0)
    return Pointclouds._from_packed(packed["points"], counts, packed["normals"], packed["features"])


def join_pointclouds_as_scene(pointclouds: Union[Pointclouds, Sequence[Pointclouds]]) -> Pointclouds:
    """All clouds of a batch (or of a list of batches) merged into one cloud: a batch of size 1 whose
    points, normals and features are the packed ones."""
    if isinstance(pointclouds, (list, tuple)):
        pointclouds = join_pointclouds_as_batch(pointclouds)
    if not isinstance(pointclouds, Pointclouds):
        raise TypeError(f"pointclouds: expected a Pointclouds or a list of Pointclouds, got {_describe(pointclouds)}")
    total = pointclouds.points_packed().shape[0]
    counts = torch.tensor([total], dtype=torch.int64, device=pointclouds.device)
    return Pointclouds._from_packed(pointclouds.points_packed(), counts, pointclouds.normals_packed(),
                                    pointclouds.features_packed())
