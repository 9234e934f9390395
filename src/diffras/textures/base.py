"""Batching machinery shared by the texture classes (``TexturesVertex``, ``TexturesUV``, ``TexturesAtlas``).

A textures object holds one or more *per-mesh fields* (features per vertex, a map per mesh, a face grid
per face, ...). Each field is kept in the form the user gave it: a list of N tensors (sizes may differ
per mesh) or one padded tensor with a leading batch dimension N. Batching operations (index, extend,
join, clone, detach, to) work on either form without converting, so gradients flow back to exactly the
tensors the user passed in.

The mapping from *packed* faces (what ``Fragments.pix_to_face`` indexes) to per-mesh rows uses the
``Meshes`` methods of the contract (``faces_packed_to_mesh_idx``, ``mesh_to_faces_packed_first_idx``,
...); padded fields therefore only need to be at least as long as each mesh's count.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch

from .._validation import check_int
from ..raster.fragments import Fragments

__all__ = ["TexturesBase"]


def _normalize_index(index: Any, n: int) -> List[int]:
    """Turn an int / slice / list / LongTensor / BoolTensor batch index into a list of ints in [0, n).

    Out-of-range integers raise ``IndexError`` (Python's convention for ``obj[i]``)."""
    if isinstance(index, bool):
        raise TypeError(f"index: expected an int, slice, list or tensor, got bool {index!r}")
    if isinstance(index, int) or (isinstance(index, torch.Tensor) and index.dim() == 0
                                  and not index.is_floating_point() and index.dtype != torch.bool):
        i = int(index)
        if not -n <= i < n:
            raise IndexError(f"index: expected an index in [{-n}, {n}), got {i}")
        return [i % n]
    if isinstance(index, slice):
        return list(range(n))[index]
    if isinstance(index, (list, tuple)):
        if len(index) and all(isinstance(i, bool) for i in index):
            index = torch.tensor(index, dtype=torch.bool)
        else:
            out = []
            for i in index:
                if isinstance(i, bool) or not isinstance(i, int):
                    raise TypeError(f"index: expected a list of ints, got an entry {i!r}")
                out.append(i)
            index = torch.tensor(out, dtype=torch.int64)
    if isinstance(index, torch.Tensor):
        if index.dtype == torch.bool:
            if index.shape != (n,):
                raise IndexError(f"index: expected a bool mask of shape ({n},), got {tuple(index.shape)}")
            return index.nonzero().flatten().tolist()
        if index.is_floating_point() or index.is_complex() or index.dim() != 1:
            raise TypeError(f"index: expected a 1-D integer or bool tensor, got {index.dtype} of shape "
                            f"{tuple(index.shape)}")
        idx = index.tolist()
        bad = [i for i in idx if not -n <= i < n]
        if bad:
            raise IndexError(f"index: expected indices in [{-n}, {n}), got {bad[:5]}")
        return [i % n for i in idx]
    raise TypeError(f"index: expected an int, slice, list, LongTensor or BoolTensor, got {type(index).__name__}")


class _Field:
    """One per-mesh tensor field: a list of N tensors or a padded tensor (N, ...)."""

    __slots__ = ("items", "padded_", "pad_value")

    def __init__(self, items: Optional[List[torch.Tensor]] = None, padded: Optional[torch.Tensor] = None,
                 pad_value: float = 0.0):
        self.items = None if items is None else list(items)
        self.padded_ = padded
        self.pad_value = pad_value

    def __len__(self) -> int:
        return len(self.items) if self.items is not None else int(self.padded_.shape[0])

    @property
    def is_list(self) -> bool:
        return self.items is not None

    def first(self) -> torch.Tensor:
        """A tensor whose trailing dimensions, dtype and device are the field's (works for N = 0)."""
        return self.items[0] if self.items else self.padded_

    def list(self) -> List[torch.Tensor]:
        if self.items is not None:
            return list(self.items)
        if self.padded_.shape[0] == 1:
            # A view whose backward is a reshape; unbind's would stack (copy) the whole gradient.
            return [self.padded_.reshape(self.padded_.shape[1:])]
        return list(self.padded_.unbind(0))

    def sizes(self) -> List[int]:
        """Length of each element along its first dimension (the padded size for padded input)."""
        if self.items is not None:
            return [int(t.shape[0]) for t in self.items]
        return [int(self.padded_.shape[1])] * len(self)

    def padded(self) -> torch.Tensor:
        """(N, max_i, ...) with every dimension padded with ``pad_value`` to the largest element."""
        if self.padded_ is not None:
            return self.padded_
        items = self.items
        shape = [max(int(t.shape[d]) for t in items) for d in range(items[0].dim())]
        out = items[0].new_full([len(items)] + shape, self.pad_value)
        for i, t in enumerate(items):
            out[(i,) + tuple(slice(0, s) for s in t.shape)] = t
        return out

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> "_Field":
        if self.items is not None:
            return _Field([fn(t) for t in self.items], None, self.pad_value)
        return _Field(None, fn(self.padded_), self.pad_value)

    def select(self, idx: List[int]) -> "_Field":
        if not idx:
            # An empty batch keeps a (0, ...) padded tensor so that device, dtype and channels survive.
            return _Field(None, self.padded()[:0], self.pad_value)
        if self.items is not None:
            return _Field([self.items[i] for i in idx], None, self.pad_value)
        index = torch.tensor(idx, dtype=torch.int64, device=self.padded_.device)
        return _Field(None, self.padded_.index_select(0, index), self.pad_value)

    def extend(self, n: int) -> "_Field":
        if self.items is not None:
            return _Field([t for t in self.items for _ in range(n)], None, self.pad_value)
        return _Field(None, self.padded_.repeat_interleave(n, dim=0), self.pad_value)

    @staticmethod
    def cat(fields: Sequence["_Field"]) -> "_Field":
        if all(not f.is_list for f in fields) and len({tuple(f.padded_.shape[1:]) for f in fields}) == 1:
            return _Field(None, torch.cat([f.padded_ for f in fields], 0), fields[0].pad_value)
        items = [t for f in fields for t in f.list()]
        return _Field(items, None, fields[0].pad_value) if items else fields[0]


def _field_from_input(x: Any, name: str, elem_ndim: int) -> _Field:
    """Wrap a user list/tuple of (elem_ndim)-D tensors or a padded (elem_ndim + 1)-D tensor."""
    if isinstance(x, torch.Tensor):
        if x.dim() != elem_ndim + 1:
            raise ValueError(f"{name}: expected a padded tensor with {elem_ndim + 1} dimensions or a list of "
                             f"{elem_ndim}-D tensors, got shape {tuple(x.shape)}")
        if x.shape[0] == 0:
            raise ValueError(f"{name}: expected a batch of at least one mesh, got shape {tuple(x.shape)}")
        return _Field(None, x)
    if isinstance(x, (list, tuple)):
        if len(x) == 0:
            raise ValueError(f"{name}: expected a non-empty list (one entry per mesh), got an empty {type(x).__name__}")
        for i, t in enumerate(x):
            if not isinstance(t, torch.Tensor):
                raise TypeError(f"{name}[{i}]: expected a torch.Tensor, got {type(t).__name__}")
            if t.dim() != elem_ndim:
                raise ValueError(f"{name}[{i}]: expected {elem_ndim} dimensions, got shape {tuple(t.shape)}")
        return _Field(list(x), None)
    raise TypeError(f"{name}: expected a tensor or a list of tensors, got {type(x).__name__}")


def _all_finite(t: torch.Tensor) -> bool:
    """Whether floating tensor ``t`` holds no NaN/inf. A finite sum proves it in one reduction (any NaN or
    inf makes the sum NaN or inf), ~4x cheaper than ``isfinite(t).all()`` on a 1024^2 map checked every
    call; only a non-finite sum (bad values, or finite ones overflowing) needs the exact check."""
    with torch.no_grad():
        if bool(torch.isfinite(t.sum())):
            return True
        return bool(torch.isfinite(t).all())


def _check_field_values(field: _Field, name: str, *, dtype: str, trailing: Tuple[Any, ...],
                        device: Optional[torch.device] = None, finite: bool = False) -> torch.device:
    """Check dtype kind, trailing dims (None = any but equal across the batch, "*" = any), device and finiteness of
    every element of ``field``; return the common device."""
    tensors = field.list() if field.is_list else [field.padded_]
    ref: Dict[int, int] = {}
    for i, t in enumerate(tensors):
        label = f"{name}[{i}]" if field.is_list else name
        if dtype == "float" and not t.is_floating_point():
            raise TypeError(f"{label}: expected a floating-point tensor, got dtype {t.dtype}")
        if dtype == "int" and (t.is_floating_point() or t.is_complex() or t.dtype == torch.bool):
            raise TypeError(f"{label}: expected an integer (int64) tensor, got dtype {t.dtype}")
        for k, want in enumerate(trailing):
            axis = t.dim() - len(trailing) + k
            got = int(t.shape[axis])
            if want == "*":
                continue
            if want is None:
                if ref.setdefault(k, got) != got:
                    raise ValueError(f"{label}: expected size {ref[k]} in dimension {axis} (as the other "
                                     f"entries of {name}), got shape {tuple(t.shape)}")
            elif got != want:
                raise ValueError(f"{label}: expected size {want} in dimension {axis}, got shape {tuple(t.shape)}")
        if t.dtype != tensors[0].dtype:
            raise TypeError(f"{label}: expected dtype {tensors[0].dtype} (as {name}[0]), got {t.dtype}")
        if device is None:
            device = t.device
        elif t.device != device:
            raise ValueError(f"{label}: expected device {device}, got {t.device}")
        if finite and t.numel() and not _all_finite(t):
            bad = int((~torch.isfinite(t)).sum())
            raise ValueError(f"{label}: expected finite values, got {bad} NaN/inf entries")
    return device


def _faces_to_mesh_local(meshes: Any) -> Tuple[torch.Tensor, torch.Tensor]:
    """For every packed face: the mesh it belongs to and its index inside that mesh, both (sum F,)."""
    mesh_idx = meshes.faces_packed_to_mesh_idx()
    first = meshes.mesh_to_faces_packed_first_idx()
    local = torch.arange(mesh_idx.shape[0], device=mesh_idx.device) - first[mesh_idx]
    return mesh_idx, local


def _check_counts(name: str, have: List[int], exact: bool, need: torch.Tensor, what: str) -> None:
    """Each mesh needs ``need[i]`` rows; the texture provides ``have[i]`` (exactly, for list input)."""
    need_l = [int(v) for v in need.tolist()]
    for i, (h, n) in enumerate(zip(have, need_l)):
        if (exact and h != n) or h < n:
            rel = "" if exact else " at least"
            raise ValueError(f"{name}: expected{rel} {n} {what} for mesh {i} (as the mesh has), got {h}")


def _fragment_inputs(fragments: Any, n: int, dense: bool = True):
    """``pix_to_face`` and ``bary_coords`` of ``fragments`` (a ``Fragments`` or any object with them), after
    checking the batch size.

    ``dense=False`` (the packed samplers, which read ``Fragments.face_idx`` / ``bary_packed``) returns
    ``(None, None)`` for a ``Fragments`` without reading either field: the rasterizer's packed ``Fragments``
    would otherwise build a dense (N, H, W, K) pix_to_face and (N, H, W, K, 3) bary_coords (330 MiB and ~80 ms
    for 8 views at 512^2, K = 8) that nothing uses."""
    if not dense and isinstance(fragments, Fragments):
        if len(fragments.shape) != 4:
            raise ValueError(f"fragments.pix_to_face: expected an (N, H, W, K) tensor, got {fragments.shape}")
        if fragments.shape[0] != n:
            raise ValueError(f"fragments: expected a batch of {n} images to match the textures, got "
                             f"{fragments.shape[0]}")
        return None, None
    try:
        p2f = fragments.pix_to_face
        bary = fragments.bary_coords if dense else None
    except AttributeError as e:
        raise TypeError(f"fragments: expected an object with pix_to_face and bary_coords, got "
                        f"{type(fragments).__name__}") from e
    if not isinstance(p2f, torch.Tensor) or p2f.dim() != 4:
        raise ValueError(f"fragments.pix_to_face: expected an (N, H, W, K) tensor, got "
                         f"{getattr(p2f, 'shape', type(p2f).__name__)}")
    if p2f.shape[0] != n:
        raise ValueError(f"fragments: expected a batch of {n} images to match the textures, got {p2f.shape[0]}")
    return p2f, bary


class TexturesBase:
    """Common batch behaviour of the texture classes: ``len``, ``clone``, ``detach``, ``to``, ``extend``,
    indexing, ``join_batch``. Subclasses list their per-mesh fields in ``_field_names`` and their
    non-batched settings in ``_setting_names``."""

    _field_names: Tuple[str, ...] = ()
    _setting_names: Tuple[str, ...] = ()

    # -- construction without re-validation (used by the batching ops on already valid data) --
    @classmethod
    def _from_fields(cls, fields: Dict[str, _Field], settings: Dict[str, Any]):
        obj = cls.__new__(cls)
        for k in cls._field_names:
            setattr(obj, "_" + k, fields[k])
        for k in cls._setting_names:
            setattr(obj, k, settings[k])
        return obj

    def _fields(self) -> Dict[str, _Field]:
        return {k: getattr(self, "_" + k) for k in self._field_names}

    def _settings(self) -> Dict[str, Any]:
        return {k: getattr(self, k) for k in self._setting_names}

    def _map(self, fn: Callable[[torch.Tensor], torch.Tensor]):
        return self._from_fields({k: f.map(fn) for k, f in self._fields().items()}, self._settings())

    def __len__(self) -> int:
        return len(getattr(self, "_" + self._field_names[0]))

    def isempty(self) -> bool:
        return len(self) == 0

    @property
    def device(self) -> torch.device:
        return getattr(self, "_" + self._field_names[0]).first().device

    def clone(self):
        """A copy whose tensors are cloned (gradients flow back to the originals, as ``Tensor.clone``)."""
        return self._map(lambda t: t.clone())

    def detach(self):
        """A copy whose tensors are detached from the autograd graph (storage shared)."""
        return self._map(lambda t: t.detach())

    def to(self, device: Any):
        """A copy on ``device`` (self if already there). Integer index tensors keep their dtype."""
        device = torch.device(device)
        if self.device == device:
            return self
        return self._map(lambda t: t.to(device))

    def cpu(self):
        return self.to("cpu")

    def extend(self, n: int):
        """Each element repeated ``n`` times, in the order m0, m0, ..., m1, m1, ... (as ``Meshes.extend``)."""
        n = check_int(n, "n", min=1)
        return self._from_fields({k: f.extend(n) for k, f in self._fields().items()}, self._settings())

    def __getitem__(self, index: Any):
        """A new textures object for the selected meshes. ``index`` is an int (a batch of one), a slice, a
        list of ints, a 1-D LongTensor or an (N,) BoolTensor; out-of-range indices raise ``IndexError``.
        Selecting nothing gives an empty batch (len 0) keeping device and channel count."""
        idx = _normalize_index(index, len(self))
        return self._from_fields({k: f.select(idx) for k, f in self._fields().items()}, self._settings())

    def join_batch(self, textures: Sequence["TexturesBase"]):
        """This batch followed by each of ``textures`` (same class, settings, channels and device)."""
        if isinstance(textures, TexturesBase):
            textures = [textures]
        textures = list(textures)
        for i, t in enumerate(textures):
            if type(t) is not type(self):
                raise TypeError(f"textures[{i}]: expected {type(self).__name__}, got {type(t).__name__}")
            if t._settings() != self._settings():
                raise ValueError(f"textures[{i}]: expected the same settings {self._settings()}, "
                                 f"got {t._settings()}")
            if t.device != self.device:
                raise ValueError(f"textures[{i}]: expected device {self.device}, got {t.device}")
            self._check_joinable(t, f"textures[{i}]")
        fields = {k: _Field.cat([getattr(x, "_" + k) for x in [self] + textures]) for k in self._field_names}
        return self._from_fields(fields, self._settings())

    def _check_joinable(self, other: "TexturesBase", name: str) -> None:
        """Subclasses check channel counts etc. agree."""

    def _check_meshes(self, meshes: Any) -> None:
        if meshes is None:
            raise ValueError(f"meshes: expected a Meshes object for {type(self).__name__}, got None")
        if len(meshes) != len(self):
            raise ValueError(f"meshes: expected a batch of {len(self)} meshes to match the textures, "
                             f"got {len(meshes)}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(N={len(self)}, device={self.device})"
