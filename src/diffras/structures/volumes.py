"""``Volumes``: a batch of voxel grids (densities and optional features), as PyTorch3D's.

Layout (PyTorch3D's): ``densities()`` is ``(N, C_d, D, H, W)`` and ``features()`` ``(N, C_f, D, H, W)``
or None. A list of differently sized ``(C, D_i, H_i, W_i)`` grids is zero-padded at the end of each
spatial dimension; ``get_grid_sizes()`` (N, 3) keeps each grid's own ``(D_i, H_i, W_i)``.

Coordinate frames (PyTorch3D's; see docs/volumes.md):

- **local**: the voxel ``[n, :, 0, 0, 0]`` has its centre at ``(-1, -1, -1)`` and
  ``[n, :, D_i-1, H_i-1, W_i-1]`` at ``(1, 1, 1)`` (with ``align_corners=True``; with False the
  outer voxel *edges* sit at -1 and 1, as ``torch.nn.functional.grid_sample``). The point's x runs
  along W, y along H, z along D, i.e. the reverse of the tensor's dimension order, exactly the
  convention of ``grid_sample``.
- **world**: ``x_world = x_local * (size_xyz - 1) * 0.5 * voxel_size - volume_translation`` with
  ``size_xyz = (W_i, H_i, D_i)``; so ``volume_translation`` is minus the world position of the grid's
  centre (PyTorch3D's sign).

Differentiable: densities, features, ``voxel_size`` and ``volume_translation`` tensors keep their
autograd graph through every view and coordinate transform. The dtype follows ``densities`` (PyTorch3D
makes the coordinate grids float32 always).
"""
from __future__ import annotations

import copy
from typing import List, Optional, Sequence, Tuple, Union

import torch

from .._validation import _describe, check_finite
from ..transforms import Scale, Transform3d, Translate

__all__ = ["Volumes"]

TensorBatch = Union[torch.Tensor, Sequence[torch.Tensor]]


def _check_finite_storage(x: torch.Tensor, name: str) -> None:
    """Finiteness check that looks at broadcast (stride-0) dimensions once: a training loop builds
    ``Volumes`` from ``grid[None].expand(N, ...)`` every iteration, and checking N copies is waste."""
    index = tuple(0 if (s == 0 and n > 1) else slice(None) for s, n in zip(x.stride(), x.shape))
    check_finite(x[index], name)


def _to_padded(x: TensorBatch, name: str) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(N, C, D, H, W)`` tensor or list of ``(C, D_i, H_i, W_i)`` -> (padded tensor, (N, 3) sizes)."""
    if isinstance(x, torch.Tensor):
        if not x.is_floating_point():
            raise TypeError(f"{name}: expected a floating-point tensor, got dtype {x.dtype}")
        if x.dim() != 5:
            raise ValueError(f"{name}: expected shape (N, C, D, H, W) or a list of (C, D, H, W), got {tuple(x.shape)}")
        if x.shape[0] == 0 or x.shape[1] == 0:
            raise ValueError(f"{name}: expected at least one volume and one channel, got {tuple(x.shape)}")
        sizes = torch.tensor(x.shape[2:], dtype=torch.long, device=x.device)[None].repeat(x.shape[0], 1)
        padded = x
    elif isinstance(x, (list, tuple)):
        if len(x) == 0:
            raise ValueError(f"{name}: expected a non-empty list of (C, D, H, W) tensors, got an empty list")
        for i, t in enumerate(x):
            if not isinstance(t, torch.Tensor):
                raise TypeError(f"{name}[{i}]: expected a torch.Tensor, got {_describe(t)}")
            if not t.is_floating_point():
                raise TypeError(f"{name}[{i}]: expected a floating-point tensor, got dtype {t.dtype}")
            if t.dim() != 4:
                raise ValueError(f"{name}[{i}]: expected shape (C, D, H, W), got {tuple(t.shape)}")
            if t.shape[0] != x[0].shape[0] or t.shape[0] == 0:
                raise ValueError(f"{name}[{i}]: expected {x[0].shape[0]} channels (as {name}[0]), got {t.shape[0]}")
            if t.device != x[0].device:
                raise ValueError(f"{name}[{i}]: expected device {x[0].device} (as {name}[0]), got {t.device}")
        dtype = x[0].dtype
        for t in x[1:]:
            dtype = torch.promote_types(dtype, t.dtype)
        full = [max(t.shape[k] for t in x) for k in range(1, 4)]
        padded = x[0].new_zeros((len(x), x[0].shape[0], *full), dtype=dtype)
        for i, t in enumerate(x):
            padded[i, :, : t.shape[1], : t.shape[2], : t.shape[3]] = t
        sizes = torch.tensor([list(t.shape[1:]) for t in x], dtype=torch.long, device=x[0].device)
    else:
        raise TypeError(f"{name}: expected an (N, C, D, H, W) tensor or a list of (C, D, H, W) tensors, got {_describe(x)}")
    if bool((sizes < 2).any()):
        # The local frame spans voxel centres -1..1, so a side of one voxel has no extent.
        raise ValueError(f"{name}: expected every spatial size D, H, W >= 2, got sizes {sizes.tolist()}")
    _check_finite_storage(padded, name)
    return padded, sizes


def _per_volume_xyz(value, name: str, n: int, dtype, device, scalar_ok: bool) -> torch.Tensor:
    """PyTorch3D's voxel_size / volume_translation forms -> (N, 3): a scalar (voxel_size only), a
    3-sequence, a (3,) / (1,) / (1, 3) / (N, 3) / (N, 1) tensor."""
    if isinstance(value, torch.Tensor):
        t = value.to(device=device, dtype=dtype)  # keeps the autograd graph of a float tensor
    elif isinstance(value, bool) or isinstance(value, str):
        raise TypeError(f"{name}: expected a number, a 3-sequence or a tensor, got {_describe(value)}")
    else:
        try:
            t = torch.as_tensor(value, dtype=dtype, device=device)
        except (TypeError, ValueError, RuntimeError) as e:
            raise TypeError(f"{name}: expected a number, a 3-sequence or a tensor, got {_describe(value)}") from e
    if t.dim() == 0 or (t.dim() == 1 and t.shape[0] == 1) or (t.dim() == 2 and t.shape[1] == 1 and t.shape[0] in (1, n)):
        if not scalar_ok:
            raise ValueError(f"{name}: expected 3 values per volume, got shape {tuple(t.shape)}")
        t = t.reshape(-1, 1).expand(-1, 3)
    if t.dim() == 1 and t.shape[0] == 3:
        t = t[None]
    if t.dim() != 2 or t.shape[1] != 3 or t.shape[0] not in (1, n):
        raise ValueError(f"{name}: expected a scalar, (3,), (1, 3) or ({n}, 3), got shape {tuple(t.shape)}")
    check_finite(t, name)
    return t.expand(n, 3)


class Volumes:
    """A batch of N voxel grids, as PyTorch3D's ``Volumes``.

    Args:
        densities: ``(N, C_d, D, H, W)`` float tensor, or a list of N ``(C_d, D_i, H_i, W_i)`` tensors
            (zero-padded to the largest size). Typically non-negative opacities. Every side >= 2.
        features: None, or ``(N, C_f, D, H, W)`` / a list as ``densities``, with the same grid sizes.
        voxel_size: world size of a voxel: a number, a 3-sequence, or a (3,), (1,), (N, 3) or (N, 1) tensor.
        volume_translation: a 3-sequence or a (3,), (1, 3) or (N, 3) tensor: minus the world position of
            the grid's centre (module docstring).
        align_corners: as ``grid_sample``: True puts the corner voxels' *centres* at local -1 and 1.

    Example::

        >>> v = Volumes(densities=torch.zeros(2, 1, 5, 5, 5), voxel_size=0.5)
        >>> v.local_to_world_coords(torch.tensor([[[1.0, 0.0, -1.0]]]).expand(2, 1, 3))[0]
        tensor([[ 1.,  0., -1.]])
    """

    def __init__(
        self,
        densities: TensorBatch,
        features: Optional[TensorBatch] = None,
        voxel_size=1.0,
        volume_translation=(0.0, 0.0, 0.0),
        align_corners: bool = True,
    ) -> None:
        if not isinstance(align_corners, bool):
            raise TypeError(f"align_corners: expected a bool, got {_describe(align_corners)}")
        self._densities, self._grid_sizes = _to_padded(densities, "densities")
        self.device = self._densities.device
        self._align_corners = align_corners
        n, dtype = len(self), self._densities.dtype
        self._voxel_size = _per_volume_xyz(voxel_size, "voxel_size", n, dtype, self.device, scalar_ok=True)
        if bool((self._voxel_size == 0).any()):
            raise ValueError("voxel_size: expected non-zero voxel sizes, got a zero")
        self._translation = _per_volume_xyz(volume_translation, "volume_translation", n, dtype, self.device, scalar_ok=False)
        self._features = None
        if features is not None:
            self._features = self._matching(features, "features")

    def _matching(self, x: TensorBatch, name: str) -> torch.Tensor:
        padded, sizes = _to_padded(x, name)
        if padded.device != self.device:
            raise ValueError(f"{name}: expected device {self.device} (the device of densities), got {padded.device}")
        if isinstance(x, torch.Tensor):
            # A padded tensor carries the padded size for every entry: it matches the padded layout
            # (PyTorch3D compares it with each grid's own size, which rejects any mixed-size batch).
            want = (len(self), padded.shape[1], *self._densities.shape[2:])
            if tuple(padded.shape) != want:
                raise ValueError(f"{name}: expected shape {want} (the padded layout of densities), got {tuple(padded.shape)}")
        elif sizes.shape != self._grid_sizes.shape or not bool((sizes == self._grid_sizes).all()):
            raise ValueError(
                f"{name}: expected the grid sizes of densities {self._grid_sizes.tolist()}, got {sizes.tolist()}"
            )
        return padded

    # --- views --------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._densities.shape[0]

    def densities(self) -> torch.Tensor:
        """(N, C_d, D, H, W) padded densities."""
        return self._densities

    def features(self) -> Optional[torch.Tensor]:
        """(N, C_f, D, H, W) padded features, or None."""
        return self._features

    def _as_list(self, x: torch.Tensor) -> List[torch.Tensor]:
        return [x[i, :, : int(d), : int(h), : int(w)] for i, (d, h, w) in enumerate(self._grid_sizes.tolist())]

    def densities_list(self) -> List[torch.Tensor]:
        """N tensors ``(C_d, D_i, H_i, W_i)`` (views of the padded tensor)."""
        return self._as_list(self._densities)

    def features_list(self) -> Optional[List[torch.Tensor]]:
        """N tensors ``(C_f, D_i, H_i, W_i)``, or None for feature-less volumes."""
        return None if self._features is None else self._as_list(self._features)

    def get_grid_sizes(self) -> torch.Tensor:
        """(N, 3) int64: row i is ``(D_i, H_i, W_i)``."""
        return self._grid_sizes

    def get_align_corners(self) -> bool:
        return self._align_corners

    # --- coordinates --------------------------------------------------------------------------
    def _half_extent(self) -> torch.Tensor:
        """(N, 3) world units per local unit: ``(size_xyz - 1) * 0.5 * voxel_size``."""
        size_xyz = self._grid_sizes.flip(1).to(self._voxel_size.dtype)
        return (size_xyz - 1) * 0.5 * self._voxel_size

    def get_local_to_world_coords_transform(self) -> Transform3d:
        """Local -> world as a row-vector :class:`~diffras.transforms.Transform3d` (N transforms)."""
        return Scale(self._half_extent()).compose(Translate(-self._translation))

    def get_world_to_local_coords_transform(self) -> Transform3d:
        """World -> local, the exact inverse of :meth:`get_local_to_world_coords_transform`."""
        return self.get_local_to_world_coords_transform().inverse()

    def _check_points(self, points: torch.Tensor, name: str) -> torch.Tensor:
        if not isinstance(points, torch.Tensor) or not points.is_floating_point():
            raise TypeError(f"{name}: expected a floating-point tensor of shape (N, ..., 3), got {_describe(points)}")
        if points.dim() < 2 or points.shape[-1] != 3 or points.shape[0] != len(self):
            raise ValueError(f"{name}: expected shape ({len(self)}, ..., 3) (one batch entry per volume), got {tuple(points.shape)}")
        if points.device != self.device:
            raise ValueError(f"{name}: expected device {self.device}, got {points.device}")
        return points

    def _bcast(self, t: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        return t.to(points.dtype).reshape(len(self), *([1] * (points.dim() - 2)), 3)

    def world_to_local_coords(self, points_3d_world: torch.Tensor) -> torch.Tensor:
        """(N, ..., 3) world points -> local volume coordinates (-1..1 across each grid)."""
        p = self._check_points(points_3d_world, "points_3d_world")
        return (p + self._bcast(self._translation, p)) / self._bcast(self._half_extent(), p)

    def local_to_world_coords(self, points_3d_local: torch.Tensor) -> torch.Tensor:
        """(N, ..., 3) local volume coordinates -> world points."""
        p = self._check_points(points_3d_local, "points_3d_local")
        return p * self._bcast(self._half_extent(), p) - self._bcast(self._translation, p)

    def get_coord_grid(self, world_coordinates: bool = True) -> torch.Tensor:
        """(N, D, H, W, 3) coordinates (x, y, z) of every voxel centre, world or local.

        For padded (smaller) grids the coordinates of each grid's own voxels follow its own size,
        as PyTorch3D (padding voxels get coordinates beyond 1)."""
        n = len(self)
        de, he, wi = self._densities.shape[2:]
        dtype = self._densities.dtype

        def axis(r: int) -> torch.Tensor:
            pad = 0.0 if self._align_corners else 1.0 / r
            return torch.linspace(-1.0 + pad, 1.0 - pad, r, dtype=dtype, device=self.device)

        z, y, x = torch.meshgrid(axis(de), axis(he), axis(wi), indexing="ij")
        local = torch.stack((x, y, z), dim=3)[None].repeat(n, 1, 1, 1, 1)
        full = torch.tensor([[de, he, wi]], dtype=dtype, device=self.device)
        rel = (full - 1) / (self._grid_sizes.to(dtype) - 1)
        if bool((rel != 1.0).any()):
            # Stretch the padded grid so that each volume's own last voxel lands on +1.
            rel_xyz = rel.flip(1)[:, None, None, None]
            local = local * rel_xyz + (rel_xyz - 1)
        return self.local_to_world_coords(local) if world_coordinates else local

    # --- copies -------------------------------------------------------------------------------
    def update_padded(self, new_densities: torch.Tensor, new_features: Optional[torch.Tensor] = None) -> "Volumes":
        """A new ``Volumes`` with these ``(N, C, D, H, W)`` tensors and this one's sizes and placement
        (``new_features=None`` drops the features, as PyTorch3D)."""
        new = copy.copy(self)
        if not isinstance(new_densities, torch.Tensor):
            raise TypeError(f"new_densities: expected a torch.Tensor, got {_describe(new_densities)}")
        new._densities = self._matching(new_densities, "new_densities")
        new._features = None if new_features is None else self._matching(new_features, "new_features")
        return new

    def clone(self) -> "Volumes":
        """A deep copy (every tensor cloned, differentiably)."""
        new = copy.copy(self)
        for name in ("_densities", "_features", "_grid_sizes", "_voxel_size", "_translation"):
            t = getattr(self, name)
            setattr(new, name, None if t is None else t.clone())
        return new

    def to(self, device, copy: bool = False) -> "Volumes":
        """As ``torch.Tensor.to``: ``self`` if already on ``device`` (unless ``copy``), else a copy there."""
        device = torch.device(device)
        if device.type != "cpu" and device.index is None and self.device.type == device.type:
            device = self.device
        if not copy and device == self.device:
            return self
        new = self.clone()
        for name in ("_densities", "_features", "_grid_sizes", "_voxel_size", "_translation"):
            t = getattr(new, name)
            setattr(new, name, None if t is None else t.to(device))
        new.device = new._densities.device
        return new

    def cpu(self) -> "Volumes":
        return self.to("cpu")

    def cuda(self) -> "Volumes":
        return self.to("cuda")

    def __getitem__(self, index) -> "Volumes":
        """Volumes selected by an int, slice, list/tuple of ints, or a 1-D long / bool tensor (not cloned)."""
        n = len(self)
        if isinstance(index, bool):
            raise TypeError(f"index: expected an int, slice, list or tensor, got {_describe(index)}")
        if isinstance(index, int):
            if not -n <= index < n:
                raise IndexError(f"index: expected an int in [{-n}, {n}), got {index}")
            index = [index % n]
        elif isinstance(index, tuple):
            index = list(index)
        elif isinstance(index, torch.Tensor):
            if index.dim() != 1 or index.is_floating_point():
                raise IndexError(f"index: expected a 1-D long or bool tensor, got {_describe(index)}")
            index = index.to(self.device)
        elif not isinstance(index, (list, slice)):
            raise TypeError(f"index: expected an int, slice, list or tensor, got {_describe(index)}")
        new = copy.copy(self)
        for name in ("_densities", "_features", "_grid_sizes", "_voxel_size", "_translation"):
            t = getattr(self, name)
            setattr(new, name, None if t is None else t[index])
        if len(new) == 0:
            raise IndexError("index: expected to select at least one volume, got none")
        return new

    def __repr__(self) -> str:
        c_f = None if self._features is None else self._features.shape[1]
        return (f"Volumes(N={len(self)}, density_dim={self._densities.shape[1]}, feature_dim={c_f}, "
                f"size={tuple(self._densities.shape[2:])}, dtype={self._densities.dtype}, device={self.device})")
