"""``Pointclouds``: a batch of N point clouds with different point counts (PyTorch3D's API).

Storage mirrors ``Meshes``: the primary form is **packed** (``points_packed`` (sum P, 3), optional
``normals_packed`` (sum P, 3) and ``features_packed`` (sum P, C)) plus the per-cloud counts. The
rasterizer and the compositors consume packed tensors, so the hot path is free; the list view is
``torch.split`` views and the padded view one scatter, computed lazily and cached. Every view is
differentiable with respect to the input tensors.

Empty clouds (0 points) are allowed inside a batch; ``isempty()`` is True when no cloud has a point
(or N = 0). Their bounding boxes are zeros (PyTorch3D fails on them).
"""
from __future__ import annotations

from numbers import Real
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch

from .._validation import _describe, check_int, check_tensor
from ._geometry import bounding_boxes
from ._packing import first_index, packed_to_padded, padded_index, segment_gather_index, segment_ids
from ._pointclouds_input import parse_aux, parse_points

__all__ = ["Pointclouds"]

IndexLike = Union[int, slice, List[int], torch.Tensor]


class Pointclouds:
    """A batch of N point clouds, each with its own number of points P_i.

    Args:
        points: a list of N ``(P_i, 3)`` float tensors (an empty tensor for a cloud without points), or a
            padded ``(N, P, 3)`` float tensor (then every cloud has all P points, as in PyTorch3D).
            Finite values, one device, one dtype.
        normals: None, a list of N ``(P_i, 3)`` float tensors, or a padded ``(N, max P_i, 3)`` tensor (rows
            past P_i ignored).
        features: None, a list of N ``(P_i, C)`` float tensors, or a padded ``(N, max P_i, C)`` tensor:
            per-point colours or any C channels (composited by the points renderer).

    Layouts (symbols of ``docs/conventions.md``): ``points_list()`` ``[(P_i, 3)]``; ``points_padded()``
    (N, max P_i, 3) padded with 0; ``points_packed()`` (sum P_i, 3); the same for normals and features
    (``None`` when absent). ``packed_to_cloud_idx()[p]`` is the cloud of packed point p,
    ``cloud_to_packed_first_idx()[n]`` the packed index of cloud n's first point, and
    ``points_padded().view(-1, 3)[padded_to_packed_idx()] == points_packed()``.

    Example:
        >>> import torch
        >>> from diffras.structures import Pointclouds
        >>> pc = Pointclouds([torch.zeros(2, 3), torch.ones(3, 3)], features=[torch.zeros(2, 1), torch.ones(3, 1)])
        >>> pc.num_points_per_cloud().tolist(), pc.points_padded().shape, pc.features_packed().shape
        ([2, 3], torch.Size([2, 3, 3]), torch.Size([5, 1]))
        >>> pc.cloud_to_packed_first_idx().tolist(), pc.packed_to_cloud_idx().tolist()
        ([0, 2], [0, 0, 1, 1, 1])
    """

    def __init__(self, points: Any, normals: Any = None, features: Any = None):
        packed, counts = parse_points(points)
        sizes = counts.tolist()
        dev = packed.device
        nrm = parse_aux(normals, "normals", counts, sizes, 3, dev)
        feat = parse_aux(features, "features", counts, sizes, None, dev)
        self._setup(packed, counts, nrm, feat)

    # -- construction -------------------------------------------------------------------------------------
    def _setup(self, points, counts, normals, features, topo=None) -> None:
        self._points_packed = points
        self._normals_packed = normals
        self._features_packed = features
        self._num_points = counts
        # A Python copy of the counts: split sizes and maxima without a device sync each time.
        self._np: List[int] = counts.tolist()
        self._topo: Dict[str, Any] = dict(topo) if topo else {}
        self._views: Dict[str, Any] = {}

    @classmethod
    def _from_packed(cls, points, counts, normals=None, features=None, topo=None) -> "Pointclouds":
        """Build from already validated packed data (internal; no checks)."""
        pc = cls.__new__(cls)
        pc._setup(points, counts, normals, features, topo)
        return pc

    def _get(self, cache: Dict[str, Any], key: str, fn):
        if key not in cache:
            cache[key] = fn()
        return cache[key]

    # -- basic properties ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._np)

    @property
    def device(self) -> torch.device:
        return self._points_packed.device

    @property
    def dtype(self) -> torch.dtype:
        """Floating dtype of the points."""
        return self._points_packed.dtype

    @property
    def equisized(self) -> bool:
        """True if every cloud has the same number of points."""
        return len(set(self._np)) <= 1

    @property
    def valid(self) -> torch.Tensor:
        """(N,) bool: True for clouds with at least one point."""
        return self._num_points > 0

    def isempty(self) -> bool:
        """True if the batch holds no cloud or no cloud has a point."""
        return not any(self._np)

    def __repr__(self) -> str:
        c = None if self._features_packed is None else self._features_packed.shape[1]
        return (f"Pointclouds(N={len(self)}, points={sum(self._np)}, normals={self._normals_packed is not None}, "
                f"features={c}, dtype={self.dtype}, device={self.device})")

    # -- packed views and index maps ----------------------------------------------------------------------
    def points_packed(self) -> torch.Tensor:
        """(sum P, 3) float: all points, cloud after cloud."""
        return self._points_packed

    def normals_packed(self) -> Optional[torch.Tensor]:
        """(sum P, 3) float, or None without normals."""
        return self._normals_packed

    def features_packed(self) -> Optional[torch.Tensor]:
        """(sum P, C) float, or None without features."""
        return self._features_packed

    def num_points_per_cloud(self) -> torch.Tensor:
        """(N,) int64."""
        return self._num_points

    def cloud_to_packed_first_idx(self) -> torch.Tensor:
        """(N,) int64: index in ``points_packed()`` of each cloud's first point."""
        return self._get(self._topo, "first", lambda: first_index(self._num_points))

    def packed_to_cloud_idx(self) -> torch.Tensor:
        """(sum P,) int64: the cloud each packed point belongs to."""
        return self._get(self._topo, "cloud", lambda: segment_ids(self._num_points, self._points_packed.shape[0]))

    def _max_points(self) -> int:
        return max(self._np, default=0)

    def padded_to_packed_idx(self) -> torch.Tensor:
        """(sum P,) int64: entry i is the flat index into ``points_padded().view(N * P, 3)`` of packed
        point i."""
        return self._get(self._topo, "pad_idx",
                         lambda: padded_index(self._num_points, self._max_points(), self._points_packed.shape[0]))

    # -- list and padded views ----------------------------------------------------------------------------
    def _list(self, name: str) -> Optional[List[torch.Tensor]]:
        x = getattr(self, f"_{name}_packed")
        if x is None:
            return None
        # A fresh list each call, so a caller appending to it cannot corrupt the cache.
        return list(self._get(self._views, name + "_list", lambda: torch.split(x, self._np)))

    def _padded(self, name: str) -> Optional[torch.Tensor]:
        x = getattr(self, f"_{name}_packed")
        if x is None:
            return None

        def fn():
            n, p = len(self), self._max_points()
            if n and self.equisized:
                return x.view(n, p, x.shape[1])
            return packed_to_padded(x, self._num_points, p, 0.0)

        return self._get(self._views, name + "_padded", fn)

    def points_list(self) -> List[torch.Tensor]:
        """List of N ``(P_i, 3)`` float tensors (views of the packed points)."""
        return self._list("points")

    def normals_list(self) -> Optional[List[torch.Tensor]]:
        """List of N ``(P_i, 3)``, or None."""
        return self._list("normals")

    def features_list(self) -> Optional[List[torch.Tensor]]:
        """List of N ``(P_i, C)``, or None."""
        return self._list("features")

    def points_padded(self) -> torch.Tensor:
        """(N, max P_i, 3) float, rows past P_i are 0."""
        return self._padded("points")

    def normals_padded(self) -> Optional[torch.Tensor]:
        """(N, max P_i, 3), padded with 0, or None."""
        return self._padded("normals")

    def features_padded(self) -> Optional[torch.Tensor]:
        """(N, max P_i, C), padded with 0, or None."""
        return self._padded("features")

    def get_cloud(self, index: int) -> Tuple[torch.Tensor, Optional[torch.Tensor], Optional[torch.Tensor]]:
        """``(points (P_i, 3), normals (P_i, 3) or None, features (P_i, C) or None)`` of cloud ``index``."""
        i = self._normalize_int(index)
        return tuple(None if v is None else v[i] for v in (self.points_list(), self.normals_list(),
                                                          self.features_list()))

    def get_bounding_boxes(self) -> torch.Tensor:
        """(N, 3, 2) float: ``[:, :, 0]`` the per-axis minimum, ``[:, :, 1]`` the maximum of each cloud's
        points; zeros for clouds without points."""
        return self._get(self._views, "bbox", lambda: bounding_boxes(self.points_padded(), self._num_points))

    def inside_box(self, box: torch.Tensor) -> torch.Tensor:
        """(sum P,) bool: packed points inside ``box`` (2, 3) or (N, 2, 3) (``box[..., 0, :]`` the min and
        ``box[..., 1, :]`` the max corner, bounds included)."""
        check_tensor(box, "box", dtype="float", device=self.device)
        if box.dim() == 2:
            box = box[None]
        if box.dim() != 3 or box.shape[1:] != (2, 3) or box.shape[0] not in (1, len(self)):
            raise ValueError(f"box: expected shape (2, 3) or ({len(self)}, 2, 3), got {tuple(box.shape)}")
        if bool((box[:, 0] > box[:, 1]).any()):
            raise ValueError("box: expected min corner <= max corner, got a min larger than the max")
        if box.shape[0] != 1:
            box = box[self.packed_to_cloud_idx()]
        p = self._points_packed
        return ((p >= box[:, 0]) & (p <= box[:, 1])).all(-1)

    # -- point updates ------------------------------------------------------------------------------------
    def _check_offsets(self, offsets: torch.Tensor) -> torch.Tensor:
        check_tensor(offsets, "offsets_packed", dtype="float", finite=True, device=self.device)
        if offsets.shape not in (self._points_packed.shape, (3,)):
            raise ValueError(f"offsets_packed: expected shape {tuple(self._points_packed.shape)} (sum P, 3) or (3,), "
                             f"got {tuple(offsets.shape)}")
        return offsets.to(self.dtype)

    def _check_scale(self, scale) -> torch.Tensor:
        if isinstance(scale, Real) and not isinstance(scale, bool):
            scale = self._points_packed.new_tensor(float(scale))
        check_tensor(scale, "scale", dtype="float", finite=True, device=self.device)
        if scale.dim() == 0:
            return scale.to(self.dtype)
        if scale.shape != (len(self),):
            raise ValueError(f"scale: expected a number or shape ({len(self)},) (N), got {tuple(scale.shape)}")
        return scale.to(self.dtype)[self.packed_to_cloud_idx()].unsqueeze(1)

    def _with_points(self, points: torch.Tensor, normals=None, features=None) -> "Pointclouds":
        return Pointclouds._from_packed(points, self._num_points,
                                        self._normals_packed if normals is None else normals,
                                        self._features_packed if features is None else features, self._topo)

    def _set_points_(self, points: torch.Tensor) -> "Pointclouds":
        # In place: rebinds the tensor (autograd history kept), drops the cached views.
        self._points_packed = points
        self._views = {}
        return self

    def offset(self, offsets_packed: torch.Tensor) -> "Pointclouds":
        """New ``Pointclouds`` with points ``points_packed() + offsets_packed`` ((sum P, 3) or (3,)).
        Differentiable in both; normals and features are shared."""
        return self._with_points(self._points_packed + self._check_offsets(offsets_packed))

    def offset_(self, offsets_packed: torch.Tensor) -> "Pointclouds":
        """In-place :meth:`offset`; returns self."""
        return self._set_points_(self._points_packed + self._check_offsets(offsets_packed))

    def scale(self, scale: Union[float, torch.Tensor]) -> "Pointclouds":
        """New ``Pointclouds`` with every point multiplied by ``scale`` (a number, 0-d tensor or (N,))."""
        return self._with_points(self._points_packed * self._check_scale(scale))

    def scale_(self, scale: Union[float, torch.Tensor]) -> "Pointclouds":
        """In-place :meth:`scale`; returns self."""
        return self._set_points_(self._points_packed * self._check_scale(scale))

    def update_padded(self, new_points_padded: torch.Tensor, new_normals_padded: Optional[torch.Tensor] = None,
                      new_features_padded: Optional[torch.Tensor] = None) -> "Pointclouds":
        """New ``Pointclouds`` with the same point counts and values taken from the padded tensors
        (N, max P_i, 3 or C), rows past P_i ignored; normals / features not given are kept (shared).
        Differentiable (PyTorch3D's ``update_padded``)."""
        shape = (len(self), self._max_points())
        new = []
        for name, x, width in (("new_points_padded", new_points_padded, 3),
                               ("new_normals_padded", new_normals_padded, 3),
                               ("new_features_padded", new_features_padded,
                                None if self._features_packed is None else self._features_packed.shape[1])):
            if x is None and name != "new_points_padded":
                new.append(None)
                continue
            check_tensor(x, name, shape=shape + (width,), dtype="float", finite=True, device=self.device)
            flat = x.reshape(-1, x.shape[2])
            if flat.shape[0] != self._points_packed.shape[0]:
                flat = flat[self.padded_to_packed_idx()]
            new.append(flat)
        return self._with_points(new[0].to(self.dtype), new[1], new[2])

    # -- copies, devices, batching ------------------------------------------------------------------------
    def _map(self, fn, counts_fn=lambda c: c, keep_topo: bool = False) -> "Pointclouds":
        vals = [None if v is None else fn(v) for v in (self._points_packed, self._normals_packed,
                                                        self._features_packed)]
        return Pointclouds._from_packed(vals[0], counts_fn(self._num_points), vals[1], vals[2],
                                        self._topo if keep_topo else None)

    def clone(self) -> "Pointclouds":
        """Deep copy (``torch.clone``, differentiable)."""
        return self._map(torch.clone, torch.clone)

    def detach(self) -> "Pointclouds":
        """Copy with detached points, normals and features."""
        return self._map(torch.Tensor.detach, keep_topo=True)

    def to(self, device=None, copy: bool = False, *, dtype: Optional[torch.dtype] = None) -> "Pointclouds":
        """Pointclouds on ``device`` (points, normals and features cast to ``dtype`` if given); ``self``
        if nothing changes and not ``copy`` (PyTorch3D's ``to(device, copy=False)``)."""
        if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
            raise TypeError(f"dtype: expected a floating torch.dtype, got {dtype!r}")
        if not isinstance(copy, bool):
            raise TypeError(f"copy: expected a bool, got {_describe(copy)}")
        device = self.device if device is None else torch.device(device)
        if device.type != "cpu" and device.index is None and device.type == self.device.type:
            device = self.device
        if device == self.device and (dtype is None or dtype == self.dtype):
            return self.clone() if copy else self
        return self._map(lambda t: t.to(device=device, dtype=dtype), lambda c: c.to(device))

    def cpu(self) -> "Pointclouds":
        return self.to("cpu")

    def cuda(self) -> "Pointclouds":
        return self.to("cuda")

    def _normalize_int(self, index) -> int:
        n = len(self)
        i = int(index)
        if not -n <= i < n:
            raise IndexError(f"index: expected an int in [-{n}, {n}), got {i}")
        return i % n

    def _select(self, sel: torch.Tensor) -> "Pointclouds":
        # The clouds ``sel`` (M,) int64, in that order (repeats allowed); copies, differentiable.
        idx = segment_gather_index(self._num_points, sel)
        return self._map(lambda t: t[idx], lambda c: c[sel])

    def __getitem__(self, index: IndexLike) -> "Pointclouds":
        """Sub-batch: ``int`` (a batch of one), ``slice``, list of ints, int64 or bool tensor."""
        n = len(self)
        if isinstance(index, bool):
            raise TypeError(f"index: expected an int, slice, list or tensor, got {_describe(index)}")
        if isinstance(index, int) or (isinstance(index, torch.Tensor) and index.dim() == 0
                                      and not index.is_floating_point() and index.dtype != torch.bool):
            rows = [self._normalize_int(index)]
        elif isinstance(index, slice):
            rows = list(range(n))[index]
        elif isinstance(index, (list, tuple)):
            if not all(isinstance(i, int) and not isinstance(i, bool) for i in index):
                raise TypeError(f"index: expected a list of ints, got {index!r}")
            rows = [self._normalize_int(i) for i in index]
        elif isinstance(index, torch.Tensor):
            if index.dtype == torch.bool:
                if index.shape != (n,):
                    raise IndexError(f"index: expected a bool mask of shape ({n},), got {tuple(index.shape)}")
                rows = index.nonzero().view(-1).tolist()
            else:
                check_tensor(index, "index", ndim=1, dtype="int")
                rows = [self._normalize_int(i) for i in index.tolist()]
        else:
            raise TypeError(f"index: expected an int, slice, list or tensor, got {_describe(index)}")
        return self._select(torch.tensor(rows, dtype=torch.int64, device=self.device))

    def extend(self, n: int) -> "Pointclouds":
        """Each cloud repeated ``n`` times, in the order c0, c0, ..., c1, c1, ...; copies (differentiable)."""
        n = check_int(n, "n", min=1)
        return self._select(torch.arange(len(self), device=self.device).repeat_interleave(n))

    def split(self, split_sizes: Sequence[int]) -> List["Pointclouds"]:
        """Consecutive sub-batches of the given sizes (which must sum to N)."""
        if not isinstance(split_sizes, (list, tuple)):
            raise TypeError(f"split_sizes: expected a list of ints, got {_describe(split_sizes)}")
        sizes = [check_int(s, f"split_sizes[{i}]", min=0) for i, s in enumerate(split_sizes)]
        if sum(sizes) != len(self):
            raise ValueError(f"split_sizes: expected sizes summing to {len(self)} (N), got {sum(sizes)}")
        starts = [sum(sizes[:i]) for i in range(len(sizes))]
        return [self[a:a + s] for a, s in zip(starts, sizes)]

    def subsample(self, max_points: Union[int, Sequence[int]]) -> "Pointclouds":
        """Each cloud with more than ``max_points`` (an int, or one per cloud) points reduced to a random
        subset of that many (torch's global generator, order kept); ``self`` if nothing changes."""
        if isinstance(max_points, (list, tuple)):
            if len(max_points) != len(self):
                raise ValueError(f"max_points: expected {len(self)} values (one per cloud), got {len(max_points)}")
            caps = [check_int(m, f"max_points[{i}]", min=0) for i, m in enumerate(max_points)]
        else:
            caps = [check_int(max_points, "max_points", min=0)] * len(self)
        if all(p <= c for p, c in zip(self._np, caps)):
            return self
        keep, start = [], 0
        for p, c in zip(self._np, caps):
            rows = torch.arange(start, start + p, device=self.device)
            if p > c:
                rows = rows[torch.randperm(p, device=self.device)[:c].sort().values]
            keep.append(rows)
            start += p
        idx = torch.cat(keep)
        counts = torch.tensor([min(p, c) for p, c in zip(self._np, caps)], dtype=torch.int64, device=self.device)
        return self._map(lambda t: t[idx], lambda _: counts)
