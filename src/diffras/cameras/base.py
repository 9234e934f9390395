"""The camera base class: batched parameters, world -> view -> NDC -> screen, as PyTorch3D.

Coordinate frames (docs/conventions.md): world and view space are +X left, +Y up, +Z into the
screen; ``X_view = X_world @ R + T`` (row vectors, ``R`` (N, 3, 3), ``T`` (N, 3)). NDC has +X left,
+Y up, the shorter image side spanning [-1, 1]. Screen space is in pixels, x right, y down, origin at
the top-left corner of the top-left pixel, pixel (i, j) centred at (j + 0.5, i + 0.5).

Every parameter is stored as an (N, ...) tensor that keeps the autograd graph of what was passed, and
every transform is recomputed from the parameters on demand, so gradients reach R, T and the
intrinsics through every method.
"""
from __future__ import annotations

import copy
from typing import Any, Dict, Optional, Sequence, Tuple

import torch

from .._validation import _describe, check_tensor
from ..transforms import Rotate, Transform3d, Translate

__all__ = ["CamerasBase", "get_ndc_to_screen_transform", "get_screen_to_ndc_transform", "join_cameras_as_batch"]


def _resolve_device_dtype(device, values: Dict[str, Any]) -> Tuple[torch.device, torch.dtype]:
    tensors = {k: v for k, v in values.items() if isinstance(v, torch.Tensor)}
    dtype = None
    for name, t in tensors.items():
        if not t.is_floating_point():
            raise TypeError(f"{name}: expected a floating-point tensor, got dtype {t.dtype}")
        dtype = t.dtype if dtype is None else torch.promote_types(dtype, t.dtype)
    if device is None:
        first = None
        for name, t in tensors.items():
            if device is None:
                device, first = t.device, name
            elif t.device != device:
                raise ValueError(f"{name}: expected device {device} (the device of {first}), got {t.device}")
        if device is None:
            device = torch.empty(0).device  # torch's default device, never a hard-coded one
    return torch.device(device), dtype or torch.get_default_dtype()


def batch_params(device, specs: Dict[str, Tuple[Any, Tuple[int, ...]]]) -> Tuple[int, Dict[str, torch.Tensor]]:
    """Turn numbers / sequences / tensors into finite (N, *trailing) tensors on one device/dtype.

    ``specs`` maps a name to ``(value, trailing_shape)``; a value with ``len(trailing_shape)``
    dimensions gets a batch dimension of 1. Batch sizes must be 1 or a common N (then expanded,
    which keeps the autograd graph). Returns N and the tensors.
    """
    values = {k: v for k, (v, _) in specs.items()}
    device, dtype = _resolve_device_dtype(device, values)
    out = {}
    for name, (value, trailing) in specs.items():
        if isinstance(value, torch.Tensor):
            t = value.to(device=device, dtype=dtype)
        else:
            if isinstance(value, bool) or isinstance(value, str):
                raise TypeError(f"{name}: expected a number, sequence or tensor, got {_describe(value)}")
            try:
                t = torch.as_tensor(value, dtype=dtype, device=device)
            except (TypeError, ValueError, RuntimeError) as e:
                raise TypeError(f"{name}: expected a number, sequence or tensor, got {_describe(value)}") from e
        if t.dim() == len(trailing):
            t = t[None]
        spec = "(N" + "".join(f", {s}" for s in trailing) + ")"
        if t.dim() != len(trailing) + 1 or tuple(t.shape[1:]) != tuple(trailing) or t.shape[0] == 0:
            raise ValueError(f"{name}: expected shape {spec}, got {tuple(t.shape)}")
        check_tensor(t, name, finite=True)
        out[name] = t
    n, first = 1, None
    for name, t in out.items():
        if t.shape[0] == 1 or t.shape[0] == n:
            continue
        if first is not None:
            raise ValueError(f"{name}: expected batch size 1 or {n} (the batch of {first}), got {t.shape[0]}")
        n, first = t.shape[0], name
    for name, t in out.items():
        out[name] = t.expand((n,) + t.shape[1:])
    return n, out


def _check_positive(t: torch.Tensor, name: str) -> None:
    if bool((t <= 0).any()):
        raise ValueError(f"{name}: expected values > 0, got {t.detach().min().item()}")


def parse_image_size(image_size, name: str, device, dtype) -> torch.Tensor:
    """An int, an (H, W) pair, or an (N, 2) sequence/tensor -> positive (B, 2) float tensor (H, W)."""
    if isinstance(image_size, int) and not isinstance(image_size, bool):
        image_size = (image_size, image_size)
    if isinstance(image_size, torch.Tensor):
        t = image_size.detach().to(device=device, dtype=dtype)
    else:
        try:
            t = torch.as_tensor(image_size, dtype=dtype, device=device)
        except (TypeError, ValueError, RuntimeError) as e:
            raise TypeError(f"{name}: expected an int, an (H, W) pair or an (N, 2) tensor, got {_describe(image_size)}") from e
    if t.dim() == 1:
        t = t[None]
    if t.dim() != 2 or t.shape[1] != 2 or t.shape[0] == 0:
        raise ValueError(f"{name}: expected an (H, W) pair or shape (N, 2), got shape {tuple(t.shape)}")
    check_tensor(t, name, finite=True)
    if bool((t < 1).any()) or bool((t != t.round()).any()):
        raise ValueError(f"{name}: expected positive integer sizes, got {t.tolist()}")
    return t


class CamerasBase:
    """Methods shared by every camera; subclasses define ``get_projection_transform``.

    Attributes:
        R: (N, 3, 3) rotation, ``X_view = X_world @ R + T``. Not checked for orthonormality (it
            may drift while optimised); like PyTorch3D, inverses (camera centre, unprojection) use
            ``R^T`` for ``R^-1``, so optimise a rotation parametrisation (axis-angle, 6D) instead.
        T: (N, 3) translation.

    Methods take world points ``(P, 3)`` or ``(N|1, P, 3)``; a batch of 1 (cameras or points)
    broadcasts against the other.
    """

    # Names of the (N, ...) tensor attributes besides R and T; set by each subclass.
    _BATCHED: Tuple[str, ...] = ()
    _in_ndc: bool = True
    image_size: Optional[torch.Tensor] = None

    def _init_batch(self, device, specs: Dict[str, Tuple[Any, Tuple[int, ...]]], R, T) -> None:
        # Defaults as plain sequences so that they never decide the dtype or device.
        if R is None:
            R = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
        if T is None:
            T = (0.0, 0.0, 0.0)
        all_specs = dict(specs)
        all_specs["R"] = (R, (3, 3))
        all_specs["T"] = (T, (3,))
        n, vals = batch_params(device, all_specs)
        self._N = n
        for k, v in vals.items():
            setattr(self, k, v)

    # --- basic properties -----------------------------------------------------------------
    def __len__(self) -> int:
        return self._N

    @property
    def device(self) -> torch.device:
        return self.R.device

    @property
    def dtype(self) -> torch.dtype:
        return self.R.dtype

    def __repr__(self) -> str:
        return f"{type(self).__name__}(N={len(self)}, dtype={self.dtype}, device={self.device})"

    def is_perspective(self) -> bool:
        raise NotImplementedError

    def in_ndc(self) -> bool:
        """True if the projection outputs NDC directly (False: screen-space intrinsics)."""
        return self._in_ndc

    def get_znear(self) -> Optional[torch.Tensor]:
        """(N,) near-plane depths, or None for cameras without one."""
        return getattr(self, "znear", None)

    def get_image_size(self) -> Optional[torch.Tensor]:
        """(N, 2) image sizes (H, W) given at construction, or None."""
        return self.image_size

    # --- transforms -----------------------------------------------------------------------
    def get_world_to_view_transform(self) -> Transform3d:
        """World -> view: ``X_view = X_world @ R + T`` (exact closed-form inverse)."""
        return Rotate(self.R).compose(Translate(self.T))

    def get_projection_transform(self) -> Transform3d:
        """View -> the camera's projection space (NDC, or screen for ``in_ndc() == False``)."""
        raise NotImplementedError

    def get_full_projection_transform(self) -> Transform3d:
        """World -> projection space: world-to-view composed with the projection."""
        return self.get_world_to_view_transform().compose(self.get_projection_transform())

    def transform_points(self, points: torch.Tensor, eps: Optional[float] = None) -> torch.Tensor:
        """World points (P, 3) or (N|1, P, 3) -> projection space (NDC for FoV / in_ndc cameras;
        for ``in_ndc=False`` cameras x, y are the screen-space intrinsics' output, as PyTorch3D).

        ``eps`` clamps the perspective divisor's magnitude (see ``Transform3d.transform_points``).
        """
        return self.get_full_projection_transform().transform_points(points, eps=eps)

    def _image_size_or_own(self, image_size) -> Optional[torch.Tensor]:
        if image_size is None:
            return self.image_size
        return parse_image_size(image_size, "image_size", self.device, self.dtype)

    def get_ndc_camera_transform(self, image_size=None) -> Transform3d:
        """Projection space -> NDC: identity for NDC cameras; for screen-space cameras the map
        that takes ``x_s = fx * X / Z + px`` (pixels, PyTorch3D's screen intrinsics) to
        ``x_ndc = (fx * X / Z - px + W / 2) * 2 / S`` with ``S = min(H, W)``, likewise for y."""
        if self.in_ndc():
            return Transform3d(dtype=self.dtype, device=self.device)
        size = self._image_size_or_own(image_size)
        pp = getattr(self, "principal_point")
        # The intrinsics give the principal point in (+X right, +Y down) image axes while view
        # points are (+X left, +Y up): reflect it about the origin, then screen -> NDC unflipped.
        fix = Translate(torch.cat((-2 * pp, torch.zeros_like(pp[:, :1])), 1))
        return fix.compose(get_screen_to_ndc_transform(self, with_xyflip=False, image_size=size))

    def transform_points_ndc(self, points: torch.Tensor, eps: Optional[float] = None, image_size=None) -> torch.Tensor:
        """World points (P, 3) or (N|1, P, 3) -> NDC in PyTorch3D's non-square convention (the
        shorter image side spans [-1, 1], +X left, +Y up), the space the rasterizer uses. ``z`` is
        the camera's projected depth. ``image_size`` matters only for ``in_ndc() == False``."""
        t = self.get_full_projection_transform()
        if not self.in_ndc():
            t = t.compose(self.get_ndc_camera_transform(image_size))
        return t.transform_points(points, eps=eps)

    def transform_points_screen(
        self, points: torch.Tensor, image_size=None, eps: Optional[float] = None, with_xyflip: bool = True
    ) -> torch.Tensor:
        """World points -> screen pixels (x right, y down, pixel (i, j) centred at (j + .5, i + .5));
        z as in NDC. ``image_size``: int, (H, W) or (N, 2); defaults to the camera's own.

        ``image_size`` comes second, as the diffras contract (and PyTorch3D before 0.5) has it;
        PyTorch3D 0.5+ puts ``eps`` there, so pass both by keyword when porting code."""
        size = self._image_size_or_own(image_size)
        ndc = self.transform_points_ndc(points, eps=eps, image_size=size)
        return get_ndc_to_screen_transform(self, with_xyflip=with_xyflip, image_size=size).transform_points(ndc, eps=eps)

    def unproject_points(
        self,
        xy_depth: torch.Tensor,
        world_coordinates: bool = True,
        scaled_depth_input: bool = False,
        from_ndc: bool = False,
        image_size=None,
    ) -> torch.Tensor:
        """Inverse of :meth:`transform_points` (or of :meth:`transform_points_ndc` if ``from_ndc``).

        Args:
            xy_depth: (P, 3) or (N|1, P, 3): x, y in the projection space (NDC, or the screen
                intrinsics' space for ``in_ndc=False`` unless ``from_ndc``) and the view-space depth
                z (or, if ``scaled_depth_input``, the projected depth that ``transform_points``
                returns).
            world_coordinates: return world points (True) or view-space points (False).
        """
        check_tensor(xy_depth, "xy_depth", dtype="float", device=self.device)
        if xy_depth.dim() not in (2, 3) or xy_depth.shape[-1] != 3:
            raise ValueError(f"xy_depth: expected shape (P, 3) or (N, P, 3), got {tuple(xy_depth.shape)}")
        nb = xy_depth.shape[0] if xy_depth.dim() == 3 else 1
        if nb not in (1, len(self)) and len(self) != 1:
            raise ValueError(f"xy_depth: expected batch size 1 or {len(self)} (the cameras), got {nb}")
        proj = self.get_projection_transform()
        if from_ndc and not self.in_ndc():
            proj = proj.compose(self.get_ndc_camera_transform(image_size))
        to_proj = self.get_world_to_view_transform().compose(proj) if world_coordinates else proj
        if scaled_depth_input:
            xy_sdepth = xy_depth
        else:
            # The projected depth of a view-space point depends only on its z (no camera here has
            # skew into z), so map z through the matrix's z and w columns.
            m = proj.get_matrix().to(xy_depth.dtype)
            pts = xy_depth if xy_depth.dim() == 3 else xy_depth[None]
            z = pts[..., 2:3]
            shape = (-1, 1, 1)
            num = z * m[:, 2, 2].reshape(shape) + m[:, 3, 2].reshape(shape)
            den = z * m[:, 2, 3].reshape(shape) + m[:, 3, 3].reshape(shape)
            sdepth = num / den
            xy = pts[..., :2].expand(sdepth.shape[0], -1, -1)
            xy_sdepth = torch.cat((xy, sdepth), -1)
        out = to_proj.inverse().transform_points(xy_sdepth)
        if xy_depth.dim() == 2 and out.dim() == 3 and out.shape[0] == 1:
            out = out[0]
        return out

    def get_camera_center(self) -> torch.Tensor:
        """(N, 3) camera centres in world coordinates: ``C = -T @ R^T``."""
        return self.get_world_to_view_transform().inverse().get_matrix()[:, 3, :3]

    def with_extrinsics(self, R: Optional[torch.Tensor] = None, T: Optional[torch.Tensor] = None) -> "CamerasBase":
        """A copy whose ``R`` and/or ``T`` are replaced (differentiably), other parameters shared.

        This is what PyTorch3D's per-call ``R=`` / ``T=`` keywords mean (``renderer(mesh, R=R, T=T)``).

        Args:
            R: (N, 3, 3) or (3, 3) float, or None to keep the camera's.
            T: (N, 3) or (3,) float, or None to keep the camera's.
            Batch sizes of the camera, ``R`` and ``T`` must be 1 or a common N (batch 1 broadcasts).
        """
        n, vals = batch_params(self.device, {"R": (self.R if R is None else R, (3, 3)),
                                            "T": (self.T if T is None else T, (3,))})
        if len(self) not in (1, n) and n != 1:
            raise ValueError(f"R, T: expected batch size 1 or {len(self)} (the cameras), got {n}")
        n = max(n, len(self))
        new = self._map(lambda t: t.expand((n,) + t.shape[1:]), n)
        new.R, new.T = (v.to(self.dtype).expand((n,) + v.shape[1:]) for v in (vals["R"], vals["T"]))
        return new

    # --- tensor-like helpers --------------------------------------------------------------
    def _names(self) -> Sequence[str]:
        names = ("R", "T") + tuple(self._BATCHED)
        return names + (("image_size",) if self.image_size is not None else ())

    def _map(self, fn, n: Optional[int] = None) -> "CamerasBase":
        new = copy.copy(self)
        for name in self._names():
            setattr(new, name, fn(getattr(self, name)))
        new._N = new.R.shape[0] if n is None else n
        return new

    def to(self, device=None, dtype: Optional[torch.dtype] = None) -> "CamerasBase":
        """A copy on ``device`` / with float ``dtype`` (differentiable)."""
        return self._map(lambda t: t.to(device=device, dtype=dtype))

    def cpu(self) -> "CamerasBase":
        return self.to("cpu")

    def clone(self) -> "CamerasBase":
        return self._map(torch.clone)

    def detach(self) -> "CamerasBase":
        return self._map(torch.Tensor.detach)

    def __getitem__(self, index) -> "CamerasBase":
        """Cameras selected by an int (kept as a batch of 1), slice, list, or Long/Bool tensor."""
        n = len(self)
        if isinstance(index, bool):
            raise TypeError(f"index: expected an int, slice, list or tensor, got {_describe(index)}")
        if isinstance(index, int):
            if not -n <= index < n:
                raise IndexError(f"index: expected an int in [{-n}, {n}), got {index}")
            index = [index % n]
        elif isinstance(index, torch.Tensor):
            if index.dtype == torch.bool:
                if index.shape != (n,):
                    raise ValueError(f"index: expected a bool tensor of shape ({n},), got {tuple(index.shape)}")
            elif index.is_floating_point():
                raise TypeError(f"index: expected an integer or bool tensor, got dtype {index.dtype}")
            index = index.to(self.device)
        elif not isinstance(index, (list, slice)):
            raise TypeError(f"index: expected an int, slice, list or tensor, got {_describe(index)}")
        new = self._map(lambda t: t[index])
        if len(new) == 0:
            raise ValueError("index: expected to select at least one camera, got none")
        return new


def pop_call_extrinsics(cameras: Optional["CamerasBase"], kwargs: Dict[str, Any]) -> Optional["CamerasBase"]:
    """PyTorch3D's per-call keywords of rasterizers and renderers, taken out of ``kwargs``: ``R`` / ``T``
    replace the cameras' extrinsics for the call (:meth:`CamerasBase.with_extrinsics`); ``eps`` is accepted
    and unused (diffras's projection has a fixed divisor guard). Returns the cameras to use."""
    kwargs.pop("eps", None)
    R, T = kwargs.pop("R", None), kwargs.pop("T", None)
    if R is None and T is None:
        return cameras
    if cameras is None:
        raise ValueError("R, T: expected cameras (at construction or as cameras=) whose extrinsics they replace")
    return cameras.with_extrinsics(R=R, T=T)


def join_cameras_as_batch(cameras_list: Sequence[CamerasBase]) -> CamerasBase:
    """One batch of ``sum(len(c))`` cameras from cameras of one class with the same flags
    (``degrees``, ``in_ndc``), on one device; differentiable (parameters are concatenated)."""
    if not isinstance(cameras_list, (list, tuple)) or not cameras_list:
        raise ValueError(f"cameras_list: expected a non-empty list of cameras, got {_describe(cameras_list)}")
    first = cameras_list[0]
    if not isinstance(first, CamerasBase):
        raise TypeError(f"cameras_list[0]: expected a diffras camera, got {_describe(first)}")
    for i, c in enumerate(cameras_list[1:], 1):
        if type(c) is not type(first):
            raise TypeError(f"cameras_list[{i}]: expected {type(first).__name__} (as cameras_list[0]), got {_describe(c)}")
        if c.device != first.device:
            raise ValueError(f"cameras_list[{i}]: expected device {first.device} (as cameras_list[0]), got {c.device}")
        if c.in_ndc() != first.in_ndc() or getattr(c, "degrees", None) != getattr(first, "degrees", None):
            raise ValueError(f"cameras_list[{i}]: expected the flags (in_ndc, degrees) of cameras_list[0], got others")
        if (c.image_size is None) != (first.image_size is None):
            raise ValueError(f"cameras_list[{i}]: expected an image_size iff cameras_list[0] has one")
    dtype = first.dtype
    for c in cameras_list[1:]:
        dtype = torch.promote_types(dtype, c.dtype)
    new = copy.copy(first)
    for name in first._names():
        setattr(new, name, torch.cat([getattr(c, name).to(dtype) for c in cameras_list], 0))
    new._N = new.R.shape[0]
    return new


def _ndc_to_screen_matrix(image_size: torch.Tensor, with_xyflip: bool):
    h, w = image_size.unbind(1)
    half_s = torch.minimum(h, w) / 2.0
    sx = -half_s if with_xyflip else half_s
    zero, one = torch.zeros_like(h), torch.ones_like(h)
    # screen = scale * ndc + offset; the flip turns +X left/+Y up into x right/y down.
    off_x = w / 2.0 if with_xyflip else -w / 2.0
    off_y = h / 2.0 if with_xyflip else -h / 2.0
    fwd = torch.stack((sx, zero, zero, zero, zero, sx, zero, zero, zero, zero, one, zero, off_x, off_y, zero, one), 1)
    inv = torch.stack(
        (1 / sx, zero, zero, zero, zero, 1 / sx, zero, zero, zero, zero, one, zero, -off_x / sx, -off_y / sx, zero, one), 1
    )
    return fwd.reshape(-1, 4, 4), inv.reshape(-1, 4, 4)


def get_ndc_to_screen_transform(cameras: CamerasBase, with_xyflip: bool = False, image_size=None) -> Transform3d:
    """NDC -> screen pixels for ``image_size`` ((H, W), int or (N, 2); default the cameras' own).

    With ``with_xyflip`` (what ``transform_points_screen`` uses): ``x_s = W/2 - S/2 * x_ndc``,
    ``y_s = H/2 - S/2 * y_ndc``, ``S = min(H, W)``, so pixel (i, j)'s NDC centre lands on
    (j + 0.5, i + 0.5). Without it the axes keep NDC's orientation: ``x_s = S/2 * x_ndc - W/2``.
    z is unchanged.
    """
    size = image_size if image_size is not None else cameras.get_image_size()
    if size is None:
        raise ValueError("image_size: expected an image size for screen coordinates (the cameras have none), got None")
    size = parse_image_size(size, "image_size", cameras.device, cameras.dtype)
    fwd, inv = _ndc_to_screen_matrix(size, with_xyflip)
    return Transform3d._make(fwd, inv)


def get_screen_to_ndc_transform(cameras: CamerasBase, with_xyflip: bool = False, image_size=None) -> Transform3d:
    """Inverse of :func:`get_ndc_to_screen_transform`."""
    return get_ndc_to_screen_transform(cameras, with_xyflip=with_xyflip, image_size=image_size).inverse()
