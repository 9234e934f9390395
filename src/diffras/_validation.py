"""Input checks shared by every public entry point.

One style everywhere: a check names the argument and says "expected ..., got ...",
raising ``TypeError`` for the wrong kind of object (not a tensor, integer where a float is
needed) and ``ValueError`` for the right kind with a wrong value (shape, range, NaN, device).
These are real checks, never ``assert``: they must survive ``python -O``.

Shape specs are tuples whose entries are ints (exact size), ``None`` (any size) or strings
(a symbol that must agree across the arguments checked with the same ``sizes`` dict), e.g.
``check_tensor(verts, "verts", shape=("N", "V", 3), sizes=sizes)``.
"""
from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import torch

ShapeSpec = Sequence[Union[int, str, None]]

__all__ = [
    "check_tensor",
    "check_finite",
    "check_index_range",
    "check_int",
    "check_float",
    "check_choice",
    "check_same_device",
    "check_image_size",
    "as_tensor",
]

# Bounds that keep a typo (image_size=1e6) from allocating terabytes inside a kernel.
MAX_IMAGE_SIDE = 16384


def _describe(x: Any) -> str:
    if isinstance(x, torch.Tensor):
        return f"tensor of shape {tuple(x.shape)}, dtype {x.dtype}, device {x.device}"
    return f"{type(x).__name__} {x!r}" if not isinstance(x, (list, tuple)) else f"{type(x).__name__} of length {len(x)}"


def check_tensor(
    x: Any,
    name: str,
    *,
    shape: Optional[ShapeSpec] = None,
    ndim: Optional[int] = None,
    dtype: Optional[str] = None,
    device: Optional[torch.device] = None,
    finite: bool = False,
    sizes: Optional[Dict[str, int]] = None,
) -> torch.Tensor:
    """Check that ``x`` is a tensor with the given properties and return it.

    Args:
        x: the object to check.
        name: the argument name used in the error message.
        shape: expected shape; see the module docstring for the spec.
        ndim: expected number of dimensions (when only that matters).
        dtype: ``"float"`` (any floating dtype), ``"int"`` (any integer dtype, not bool),
            ``"bool"``, or ``None`` for any.
        device: if given, ``x`` must be on this device.
        finite: if True, NaN or inf values raise ``ValueError``.
        sizes: a dict that binds symbolic sizes across several calls.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {_describe(x)}")
    if dtype == "float" and not x.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor, got dtype {x.dtype}")
    if dtype == "int" and (x.is_floating_point() or x.is_complex() or x.dtype == torch.bool):
        raise TypeError(f"{name}: expected an integer tensor, got dtype {x.dtype}")
    if dtype == "bool" and x.dtype != torch.bool:
        raise TypeError(f"{name}: expected a bool tensor, got dtype {x.dtype}")
    if ndim is not None and x.dim() != ndim:
        raise ValueError(f"{name}: expected {ndim} dimensions, got shape {tuple(x.shape)}")
    if shape is not None:
        _check_shape(x, name, shape, sizes if sizes is not None else {})
    if device is not None and x.device != torch.device(device):
        raise ValueError(f"{name}: expected a tensor on device {device}, got device {x.device}")
    if finite:
        check_finite(x, name)
    return x


def _check_shape(x: torch.Tensor, name: str, shape: ShapeSpec, sizes: Dict[str, int]) -> None:
    spec = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
    if x.dim() != len(shape):
        raise ValueError(f"{name}: expected shape {spec}, got {tuple(x.shape)}")
    for axis, (want, got) in enumerate(zip(shape, x.shape)):
        if want is None:
            continue
        if isinstance(want, str):
            bound = sizes.setdefault(want, got)
            if bound != got:
                raise ValueError(
                    f"{name}: expected size {want}={bound} in dimension {axis} "
                    f"(to match the other arguments), got shape {tuple(x.shape)}"
                )
        elif want != got:
            raise ValueError(f"{name}: expected shape {spec}, got {tuple(x.shape)}")


def check_finite(x: torch.Tensor, name: str) -> torch.Tensor:
    """Raise ``ValueError`` if a floating tensor holds NaN or inf."""
    if x.is_floating_point() and x.numel() and not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"{name}: expected finite values, got {bad} NaN/inf entries")
    return x


def check_index_range(idx: torch.Tensor, name: str, upper: int, *, allow: Tuple[int, ...] = ()) -> torch.Tensor:
    """Check every entry of integer tensor ``idx`` lies in ``[0, upper)`` (or is in ``allow``,
    e.g. ``allow=(-1,)`` for padding)."""
    if idx.numel() == 0:
        return idx
    lo, hi = torch.aminmax(idx)  # one pass: the common all-valid case never builds a mask
    if int(lo) >= 0 and int(hi) < upper:
        return idx
    valid = (idx >= 0) & (idx < upper)
    for a in allow:
        valid |= idx == a
    if not bool(valid.all()):
        bad = idx[~valid]
        pad = f" or one of {allow}" if allow else ""
        raise ValueError(
            f"{name}: expected indices in [0, {upper}){pad}, got {bad.numel()} out of range "
            f"(min {int(bad.min())}, max {int(bad.max())})"
        )
    return idx


def check_int(value: Any, name: str, *, min: Optional[int] = None, max: Optional[int] = None) -> int:
    """Check ``value`` is an integer (not bool, not float) within ``[min, max]``; return it as int."""
    if isinstance(value, torch.Tensor) and value.dim() == 0 and not value.is_floating_point():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name}: expected an int, got {_describe(value)}")
    value = int(value)
    if min is not None and value < min:
        raise ValueError(f"{name}: expected an int >= {min}, got {value}")
    if max is not None and value > max:
        raise ValueError(f"{name}: expected an int <= {max}, got {value}")
    return value


def check_float(
    value: Any,
    name: str,
    *,
    min: Optional[float] = None,
    max: Optional[float] = None,
    min_exclusive: bool = False,
) -> float:
    """Check ``value`` is a finite real number within the bounds; return it as float."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name}: expected a number, got {_describe(value)}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value}")
    if min is not None and (value <= min if min_exclusive else value < min):
        op = ">" if min_exclusive else ">="
        raise ValueError(f"{name}: expected a number {op} {min}, got {value}")
    if max is not None and value > max:
        raise ValueError(f"{name}: expected a number <= {max}, got {value}")
    return value


def check_choice(value: Any, name: str, choices: Sequence[Any]) -> Any:
    """Check ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name}: expected one of {list(choices)}, got {value!r}")
    return value


def check_same_device(**tensors: Optional[torch.Tensor]) -> Optional[torch.device]:
    """Check all given tensors (None entries ignored) share one device; return it."""
    device = None
    first = None
    for name, t in tensors.items():
        if t is None:
            continue
        if device is None:
            device, first = t.device, name
        elif t.device != device:
            raise ValueError(f"{name}: expected device {device} (the device of {first}), got {t.device}")
    return device


def check_image_size(image_size: Any, name: str = "image_size") -> Tuple[int, int]:
    """Normalise an int or (H, W) pair to ``(H, W)`` with ``1 <= side <= MAX_IMAGE_SIDE``."""
    if isinstance(image_size, torch.Tensor):
        image_size = image_size.tolist()
    if isinstance(image_size, (list, tuple)):
        if len(image_size) != 2:
            raise ValueError(f"{name}: expected an int or an (H, W) pair, got {_describe(image_size)}")
        h = check_int(image_size[0], f"{name}[0]", min=1, max=MAX_IMAGE_SIDE)
        w = check_int(image_size[1], f"{name}[1]", min=1, max=MAX_IMAGE_SIDE)
        return h, w
    s = check_int(image_size, name, min=1, max=MAX_IMAGE_SIDE)
    return s, s


def as_tensor(value: Any, name: str, *, dtype: Optional[torch.dtype] = None, device: Any = None) -> torch.Tensor:
    """Convert a number, list or array to a floating tensor (keeping a tensor's dtype/device unless
    told otherwise), raising ``TypeError`` naming ``name`` if it cannot."""
    if isinstance(value, torch.Tensor):
        if not (value.is_floating_point() or dtype is not None):
            value = value.to(torch.get_default_dtype())
        return value.to(dtype=dtype or value.dtype, device=device or value.device)
    try:
        t = torch.as_tensor(value, dtype=dtype or torch.get_default_dtype(), device=device)
    except (TypeError, ValueError, RuntimeError) as e:
        raise TypeError(f"{name}: expected a number, sequence or tensor, got {_describe(value)}") from e
    return t
