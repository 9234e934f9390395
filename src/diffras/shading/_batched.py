"""A small base for batched scene properties (lights, materials): tensors with a leading batch dim.

Every property is stored as a tensor whose first dimension is 1 or N (the batch size of the object);
size-1 properties broadcast over the batch. Python numbers and nested sequences become tensors of the
default dtype; tensors keep their device and autograd history (so a light location or material colour
can be optimised). When shading, :func:`batch_view` moves a property to the dtype and device of the
points being shaded, so float32 lights shade float64 meshes and vice versa without surprises.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

import torch

from .._validation import as_tensor, check_finite, check_same_device

__all__: list = []


def batch_view(prop: torch.Tensor, like: torch.Tensor, name: str, *, channels: bool = True) -> torch.Tensor:
    """View a per-batch property so it broadcasts against ``like``.

    Args:
        prop: (M, C) if ``channels`` else (M,), with M = 1 or M = B.
        like: (B, *, 3) tensor being shaded (points or normals); B is its first dimension.
        name: argument name for the error message.

    Returns:
        (M, 1, ..., 1, C) (or (M, 1, ..., 1)) on ``like``'s device and dtype, differentiable.
    """
    B = like.shape[0]
    M = prop.shape[0]
    if M not in (1, B):
        raise ValueError(
            f"{name}: expected a batch of 1 or {B} (the batch of the points being shaded), got {M}"
        )
    prop = prop.to(device=like.device, dtype=like.dtype)
    mid = (1,) * (like.dim() - 2)
    if channels:
        return prop.view((M,) + mid + (prop.shape[-1],))
    return prop.view((M,) + mid + (1,))[..., 0]


class BatchedProperties:
    """Base class: named tensor properties with a shared leading batch dimension (1 or N).

    Subclasses list their properties in ``_PROPS`` as ``name -> kind``: ``"color"`` (a (N, C) tensor,
    a C-sequence meaning batch 1, or a nested sequence), ``"vec3"`` (like colour with C = 3) or ``"scalar"``
    ((N,) tensor or a number).
    """

    _PROPS: Dict[str, str] = {}

    def __init__(self, *, device: Any = None, dtype: Optional[torch.dtype] = None, **values: Any) -> None:
        tensors = {k: v for k, v in values.items() if isinstance(v, torch.Tensor)}
        dev = check_same_device(**tensors)
        if device is not None:
            dev = torch.device(device)
        if dtype is None:
            floats = [t.dtype for t in tensors.values() if t.is_floating_point()]
            dtype = floats[0] if floats else torch.get_default_dtype()
            for d in floats[1:]:
                dtype = torch.promote_types(dtype, d)
        props: Dict[str, torch.Tensor] = {}
        for name, kind in self._PROPS.items():
            props[name] = self._convert(values[name], name, kind, dev, dtype)
        self._set(props)

    # --- construction helpers -------------------------------------------------------------------
    @staticmethod
    def _convert(value: Any, name: str, kind: str, device: Any, dtype: torch.dtype) -> torch.Tensor:
        t = as_tensor(value, name, dtype=dtype, device=device)
        if not t.is_floating_point():
            raise TypeError(f"{name}: expected a floating-point tensor, got dtype {t.dtype}")
        if kind == "scalar":
            if t.dim() == 0:
                t = t.reshape(1)
            if t.dim() != 1:
                raise ValueError(f"{name}: expected a number or shape (N,), got shape {tuple(t.shape)}")
        else:
            if t.dim() == 1:
                t = t[None]
            if t.dim() != 2 or t.shape[0] == 0 or (kind == "vec3" and t.shape[-1] != 3) or t.shape[-1] == 0:
                want = "(N, 3)" if kind == "vec3" else "(N, C)"
                raise ValueError(f"{name}: expected shape {want} or a single vector, got shape {tuple(t.shape)}")
        if t.shape[0] == 0:
            raise ValueError(f"{name}: expected a batch of at least 1, got shape {tuple(t.shape)}")
        check_finite(t, name)
        return t

    def _set(self, props: Dict[str, torch.Tensor]) -> None:
        sizes = {n: t.shape[0] for n, t in props.items()}
        big = {s for s in sizes.values() if s != 1}
        if len(big) > 1:
            detail = ", ".join(f"{n}: {s}" for n, s in sizes.items())
            raise ValueError(f"{type(self).__name__}: expected every property to have batch 1 or N, got {detail}")
        self._N = big.pop() if big else 1
        self._props = props
        for n, t in props.items():
            object.__setattr__(self, n, t)

    def __setattr__(self, name: str, value: Any) -> None:
        # ``lights.location = torch.tensor(...)`` (a PyTorch3D idiom) re-validates and keeps the batch consistent.
        if name in self._PROPS and "_props" in self.__dict__:
            old = self._props[name]
            dev = value.device if isinstance(value, torch.Tensor) else old.device
            dt = value.dtype if isinstance(value, torch.Tensor) and value.is_floating_point() else old.dtype
            props = dict(self._props)
            props[name] = self._convert(value, name, self._PROPS[name], dev, dt)
            self._replace(props)._validate()  # on a copy first: a rejected value leaves self unchanged
            self._set(props)
            return
        object.__setattr__(self, name, value)

    def _validate(self) -> None:
        """Hook: subclass checks across properties (run after construction and assignment)."""

    def _replace(self, props: Dict[str, torch.Tensor]) -> "BatchedProperties":
        other = self.__class__.__new__(self.__class__)
        other._extra_init_from(self)
        other._set(props)
        return other

    def _extra_init_from(self, src: "BatchedProperties") -> None:
        """Hook for subclasses holding non-tensor settings that copies must keep."""

    # --- batch protocol ----------------------------------------------------------------------
    def __len__(self) -> int:
        return self._N

    @property
    def device(self) -> torch.device:
        return next(iter(self._props.values())).device

    @property
    def dtype(self) -> torch.dtype:
        return next(iter(self._props.values())).dtype

    def clone(self):
        return self._replace({n: t.clone() for n, t in self._props.items()})

    def detach(self):
        return self._replace({n: t.detach() for n, t in self._props.items()})

    def to(self, device: Any = None, dtype: Optional[torch.dtype] = None):
        return self._replace({n: t.to(device=device, dtype=dtype) for n, t in self._props.items()})

    def cpu(self):
        return self.to("cpu")

    def __getitem__(self, index: Any):
        """Select batch elements (int, slice, list, LongTensor or BoolTensor); size-1 props are kept."""
        if isinstance(index, int):
            if not -self._N <= index < self._N:
                raise IndexError(f"index: expected an int in [-{self._N}, {self._N}), got {index}")
            index = [index]
        props = {}
        for n, t in self._props.items():
            props[n] = t if t.shape[0] == 1 else t[index]
        return self._replace(props)

    def gather_props(self, batch_idx: torch.Tensor):
        """Return a copy whose batch-N properties are indexed by ``batch_idx`` ((P,) int64, values in
        [0, N)), e.g. ``verts_packed_to_mesh_idx()`` to light packed vertices. Batch-1 props stay."""
        props = {}
        for n, t in self._props.items():
            props[n] = t if t.shape[0] == 1 else t[batch_idx.to(t.device)]
        other = self._replace(props)
        return other

    def __repr__(self) -> str:
        fields = ", ".join(f"{n}={tuple(t.shape)}" for n, t in self._props.items())
        return f"{type(self).__name__}(N={self._N}, {fields})"
