"""Blending: turn the K shaded fragments of each pixel into one RGBA pixel.

Three rules, PyTorch3D's exactly:

- :func:`hard_rgb_blend`: the nearest fragment's colour; alpha 1 where a face covers the pixel, else the
  background colour with alpha 0. Not differentiable w.r.t. geometry.
- :func:`softmax_rgb_blend`: SoftRas's aggregation (Liu et al., ICCV 2019): each fragment's coverage
  probability ``sigmoid(-dist / sigma)`` and a depth weight ``exp(z_inv / gamma)`` blend the colours and the
  background; alpha = ``1 - prod_k (1 - prob_k)``. Differentiable w.r.t. colours, dists and zbuf.
- :func:`sigmoid_alpha_blend`: silhouettes: nearest colour, alpha = ``1 - prod_k (1 - prob_k)``.

Shapes (docs/conventions.md): ``colors`` (N, H, W, K, C), fragments (N, H, W, K); outputs (N, H, W, C + 1),
i.e. RGBA for C = 3.

One implementation: :func:`blend_packed` blends a packed list of the P filled fragments (what the packed
shading path produces); the dense functions above pack their filled slots and call it. On the CPU in
float32/float64 it runs fused numba kernels with a hand-written backward (``_blend_numba``), elsewhere the
packed torch path (``_blend_torch``, also the tests' reference); neither builds an (N, H, W, K, C) tensor.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional, Sequence, Union

import torch

from .._validation import MAX_IMAGE_SIDE, check_choice, check_float, check_int, check_same_device, check_tensor
from ..raster.fragments import Fragments
from ._blend_numba import HARD, SIGMOID, SOFTMAX, FusedBlend, pixel_ranges
from ._blend_numba import _EPS  # PyTorch3D's epsilon in softmax_rgb_blend
from ._blend_torch import blend_torch

__all__ = ["BlendParams", "blend_packed", "hard_rgb_blend", "sigmoid_alpha_blend", "softmax_rgb_blend"]

_RULES = {"hard": HARD, "sigmoid": SIGMOID, "softmax": SOFTMAX}
# The output image is allocated whole: refuse shapes whose (N, H, W, C + 1) output alone would not fit.
_MAX_OUT_BYTES = 8 * 2**30
# The fused kernels serve CPU float32/float64; tests switch this off to run the torch path on the CPU.
_FUSED_CPU = True


@dataclass(frozen=True)
class BlendParams:
    """Parameters of the blending functions (defaults PyTorch3D's).

    Args:
        sigma: > 0, width of the sigmoid turning the signed squared NDC distance into coverage
            probability; larger gives blurrier edges. For SoftRas-consistent results rasterize with
            ``blur_radius = log(1 / 1e-4 - 1) * sigma``.
        gamma: > 0, temperature of the depth weighting; larger makes far faces show through more.
        background_color: a C-sequence or a (C,) tensor (may require grad); C = 3 for RGB, or 1 (broadcast).
        znear, zfar: the depth range mapped to [1, 0] in the softmax depth weights (and the "empty" depth of
            the depth shaders), used when neither the call nor the cameras give one. ``znear < zfar``.
    """

    sigma: float = 1e-4
    gamma: float = 1e-4
    background_color: Union[Sequence[float], torch.Tensor] = (1.0, 1.0, 1.0)
    znear: float = 1.0
    zfar: float = 100.0

    def __post_init__(self) -> None:
        check_float(self.sigma, "sigma", min=0.0, min_exclusive=True)
        check_float(self.gamma, "gamma", min=0.0, min_exclusive=True)
        znear = check_float(self.znear, "znear")
        zfar = check_float(self.zfar, "zfar")
        if not znear < zfar:
            raise ValueError(f"znear, zfar: expected znear < zfar, got {znear} and {zfar}")
        bg = self.background_color
        if isinstance(bg, torch.Tensor):
            check_tensor(bg, "background_color", ndim=1, dtype="float", finite=True)
        else:
            try:
                vals = [float(v) for v in bg]
            except (TypeError, ValueError) as e:
                raise TypeError(f"background_color: expected a sequence of numbers or a tensor, got {bg!r}") from e
            if not vals or not all(math.isfinite(v) for v in vals):
                raise ValueError(f"background_color: expected a non-empty sequence of finite numbers, got {bg!r}")


def _check_inputs(colors: torch.Tensor, fragments: Fragments, blend_params: Any, *, needs: Sequence[str]) -> None:
    if not isinstance(fragments, Fragments):
        raise TypeError(f"fragments: expected a Fragments, got {type(fragments).__name__}")
    if not isinstance(blend_params, BlendParams):
        raise TypeError(f"blend_params: expected a BlendParams, got {type(blend_params).__name__}")
    sizes: dict = {}
    check_tensor(fragments.pix_to_face, "fragments.pix_to_face", shape=("N", "H", "W", "K"), dtype="int", sizes=sizes)
    check_tensor(colors, "colors", shape=("N", "H", "W", "K", None), dtype="float", sizes=sizes)
    for name in needs:
        check_tensor(getattr(fragments, name), f"fragments.{name}", shape=("N", "H", "W", "K"), dtype="float",
                     sizes=sizes)


def _background(blend_params: BlendParams, colors: torch.Tensor) -> torch.Tensor:
    """(C,) background on the colours' device and dtype."""
    bg = blend_params.background_color
    bg = bg.to(device=colors.device, dtype=colors.dtype) if isinstance(bg, torch.Tensor) else \
        torch.tensor([float(v) for v in bg], device=colors.device, dtype=colors.dtype)
    C = colors.shape[-1]
    if bg.shape[0] == 1:
        return bg.expand(C)
    if bg.shape[0] != C:
        raise ValueError(f"background_color: expected {C} values (the channels of colors) or 1, got {bg.shape[0]}")
    return bg


def blend_packed(
    rule: str,
    colors: torch.Tensor,
    slots: torch.Tensor,
    zbuf: Optional[torch.Tensor],
    dists: Optional[torch.Tensor],
    shape: Sequence[int],
    blend_params: Optional[BlendParams] = None,
    znear: Union[float, torch.Tensor, None] = None,
    zfar: Union[float, torch.Tensor, None] = None,
) -> torch.Tensor:
    """Blend a packed list of filled fragments into (N, H, W, C + 1) images.

    The packed entry p is the fragment in slot ``slots[p]`` of the flat (N, H, W, K) fragment grid:
    ``slots[p] = ((n * H + y) * W + x) * K + k`` for slot k of pixel (n, y, x). Slots absent from the list
    are empty (``pix_to_face == -1``). The result is exactly that of the dense function for ``rule`` on the
    scattered fragments, with colour 0 in empty slots: ``"hard"`` is :func:`hard_rgb_blend`, ``"sigmoid"``
    :func:`sigmoid_alpha_blend`, ``"softmax"`` :func:`softmax_rgb_blend` (see their formulas).

    Args:
        rule: ``"hard"``, ``"sigmoid"`` or ``"softmax"``.
        colors: (P, C) float, the shaded colour of each filled fragment.
        slots: (P,) int64, strictly increasing flat slot indices in ``[0, N * H * W * K)``.
        zbuf: (P,) float view-space depth of each fragment (read by ``"softmax"``; may be None otherwise).
        dists: (P,) float signed squared NDC distance (read by ``"softmax"`` and ``"sigmoid"``; may be None
            for ``"hard"``).
        shape: ``(N, H, W, K)`` of the fragment grid.
        blend_params: ``sigma``, ``gamma``, ``background_color``, default planes; default ``BlendParams()``.
        znear, zfar: for ``"softmax"``: numbers or (N,) tensors (per image), default the blend params'.

    Returns:
        (N, H, W, C + 1) with the dtype and device of ``colors``; differentiable w.r.t. ``colors``, ``zbuf``,
        ``dists``, a background tensor and ``znear``/``zfar`` tensors (as far as the rule reads them).
    """
    blend_params = BlendParams() if blend_params is None else blend_params
    if not isinstance(blend_params, BlendParams):
        raise TypeError(f"blend_params: expected a BlendParams, got {type(blend_params).__name__}")
    code = _RULES[check_choice(rule, "rule", tuple(_RULES))]
    if not isinstance(shape, (tuple, list, torch.Size)) or len(shape) != 4:
        raise ValueError(f"shape: expected (N, H, W, K), got {shape!r}")
    N = check_int(shape[0], "shape[0] (N)", min=0)
    H = check_int(shape[1], "shape[1] (H)", min=1, max=MAX_IMAGE_SIDE)
    W = check_int(shape[2], "shape[2] (W)", min=1, max=MAX_IMAGE_SIDE)
    K = check_int(shape[3], "shape[3] (K)", min=1)
    sizes: dict = {}
    check_tensor(colors, "colors", shape=("P", None), dtype="float", sizes=sizes)
    check_tensor(slots, "slots", shape=("P",), dtype="int", sizes=sizes)
    C = colors.shape[1]
    out_bytes = N * H * W * (C + 1) * colors.element_size()
    if out_bytes > _MAX_OUT_BYTES:
        raise ValueError(f"shape: expected an output of at most {_MAX_OUT_BYTES / 2**30:.0f} GiB, got {tuple(shape)} "
                         f"with {C + 1} channels ({out_bytes / 2**30:.1f} GiB); render fewer images per call")
    needs = {"zbuf": code == SOFTMAX, "dists": code != HARD}
    given = {"zbuf": zbuf, "dists": dists}
    for name, t in given.items():
        if t is None:
            if needs[name]:
                raise TypeError(f"{name}: expected a (P,) float tensor for rule {rule!r}, got None")
        else:
            check_tensor(t, name, shape=("P",), dtype="float", sizes=sizes)
    check_same_device(colors=colors, slots=slots, zbuf=zbuf, dists=dists)
    fused = _FUSED_CPU and colors.device.type == "cpu" and colors.dtype in (torch.float32, torch.float64)
    if not fused:  # the fused path checks them in its pixel_ranges pass
        _check_slots(slots, N * H * W * K)
    n_pixels = N * H * W
    # The sigmoid rule never shows the background (PyTorch3D): it is not read, so not checked either.
    bg = colors.new_zeros(C) if code == SIGMOID else _background(blend_params, colors)
    slots = slots.to(torch.int64).contiguous()
    if fused:
        begin, end, bad = pixel_ranges(slots.numpy(), K, n_pixels)
        if bad:  # out of range or out of order: the check of the torch path names which (and raises)
            _check_slots(slots, N * H * W * K)
        ranges = (slots.numpy(), K, begin, end)
    dists = dists.to(colors.dtype) if needs["dists"] else colors.new_zeros(0)
    if code == SOFTMAX:
        zn = _plane(blend_params.znear if znear is None else znear, "znear", N, colors)
        zf = _plane(blend_params.zfar if zfar is None else zfar, "zfar", N, colors)
        image = None
        if isinstance(zn, torch.Tensor) and zn.dim():
            image = slots // (H * W * K)
            zn = zn[image]
        if isinstance(zf, torch.Tensor) and zf.dim():
            image = slots // (H * W * K) if image is None else image
            zf = zf[image]
        zinv = (zf - zbuf.to(colors.dtype)) / (zf - zn)
    else:
        zinv = colors.new_zeros(0)
    if fused:
        out = FusedBlend.apply(colors.contiguous(), dists.contiguous(), zinv.contiguous(), bg, ranges, code,
                               blend_params.sigma, blend_params.gamma)
    else:
        first = slots % K == 0
        out = blend_torch(code, colors, slots // K, first, dists, zinv, bg, n_pixels, blend_params.sigma,
                          blend_params.gamma)
    return out.reshape(N, H, W, C + 1)


def _check_slots(slots: torch.Tensor, total: int) -> None:
    if slots.numel() == 0:
        return
    lo, hi = int(slots[0]), int(slots[-1])
    if slots.numel() > 1 and not bool((slots[1:] > slots[:-1]).all()):
        raise ValueError("slots: expected strictly increasing flat slot indices, got a decrease or a repeat")
    if lo < 0 or hi >= total:
        raise ValueError(f"slots: expected indices in [0, {total}) (N * H * W * K), got min {lo}, max {hi}")


def _pack(colors: torch.Tensor, fragments: Fragments):
    """The filled slots of dense fragments: (slots (P,), colors (P, C), zbuf (P,), dists (P,))."""
    slots = (fragments.pix_to_face.reshape(-1) >= 0).nonzero()[:, 0]
    flat = colors.reshape(-1, colors.shape[-1])
    return slots, flat[slots], fragments.zbuf.reshape(-1)[slots], fragments.dists.reshape(-1)[slots]


def hard_rgb_blend(colors: torch.Tensor, fragments: Fragments, blend_params: Optional[BlendParams] = None) -> torch.Tensor:
    """Nearest-fragment colour, background where no face covers the pixel.

    Args:
        colors: (N, H, W, K, C) shaded colour of every fragment.
        fragments: uses ``pix_to_face`` (N, H, W, K).
        blend_params: uses ``background_color``; default ``BlendParams()``.

    Returns:
        (N, H, W, C + 1): ``out[..., :C] = colors[..., 0, :]`` where ``pix_to_face[..., 0] >= 0`` else the
        background; ``out[..., C]`` (alpha) is 1 there and 0 on the background.
    """
    blend_params = BlendParams() if blend_params is None else blend_params
    _check_inputs(colors, fragments, blend_params, needs=())
    # Only slot 0 is read: pack just that slice (K = 1).
    slots = (fragments.pix_to_face[..., 0].reshape(-1) >= 0).nonzero()[:, 0]
    cols = colors[..., 0, :].reshape(-1, colors.shape[-1])[slots]
    return blend_packed("hard", cols, slots, None, None, fragments.pix_to_face.shape[:3] + (1,), blend_params)


def sigmoid_alpha_blend(colors: torch.Tensor, fragments: Fragments,
                        blend_params: Optional[BlendParams] = None) -> torch.Tensor:
    """Silhouette blending: nearest colour, soft alpha from the 2D distances (SoftRas).

    Args:
        colors: (N, H, W, K, C).
        fragments: uses ``pix_to_face`` and ``dists`` (N, H, W, K).
        blend_params: uses ``sigma``.

    Returns:
        (N, H, W, C + 1): ``out[..., :C] = colors[..., 0, :]`` (no background substitution, as PyTorch3D);
        alpha ``= 1 - prod_k (1 - sigmoid(-dists_k / sigma))`` over the filled slots (0 where none).
        Differentiable w.r.t. ``dists`` and ``colors``.
    """
    blend_params = BlendParams() if blend_params is None else blend_params
    _check_inputs(colors, fragments, blend_params, needs=("dists",))
    slots, _, _, dists = _pack(colors, fragments)
    # The colour is slot 0's whatever it holds (PyTorch3D), so only alpha goes through the packed blend.
    alpha = blend_packed("sigmoid", colors.new_zeros((slots.shape[0], 0)), slots, None, dists,
                         fragments.pix_to_face.shape, blend_params)
    return torch.cat([colors[..., 0, :], alpha], dim=-1)


def softmax_rgb_blend(
    colors: torch.Tensor,
    fragments: Fragments,
    blend_params: Optional[BlendParams] = None,
    znear: Union[float, torch.Tensor, None] = None,
    zfar: Union[float, torch.Tensor, None] = None,
) -> torch.Tensor:
    """SoftRas's soft aggregation of the K fragments, exactly as PyTorch3D's ``softmax_rgb_blend``.

    With ``mask = pix_to_face >= 0``, ``eps = 1e-10``:

    - ``prob_k = sigmoid(-dists_k / sigma) * mask_k``
    - ``z_inv_k = (zfar - zbuf_k) / (zfar - znear) * mask_k``, ``z_max = max(max_k z_inv_k, eps)``
    - ``w_k = prob_k * exp((z_inv_k - z_max) / gamma)``, background weight
      ``delta = max(exp((eps - z_max) / gamma), eps)``
    - ``rgb = (sum_k w_k colors_k + delta * background) / (sum_k w_k + delta)``
    - ``alpha = 1 - prod_k (1 - prob_k)``

    Args:
        colors: (N, H, W, K, C).
        fragments: uses ``pix_to_face``, ``dists``, ``zbuf`` (N, H, W, K).
        blend_params: ``sigma``, ``gamma``, ``background_color`` (and ``znear``/``zfar`` as defaults).
        znear, zfar: numbers or (N,) tensors (per image, e.g. a camera batch's planes); default
            ``blend_params.znear`` / ``blend_params.zfar`` (1 and 100, PyTorch3D's defaults).

    Returns:
        (N, H, W, C + 1), differentiable w.r.t. colours, ``dists``, ``zbuf``, the background and the planes.
        Colours of empty slots are never read (PyTorch3D multiplies them by a zero weight).
    """
    blend_params = BlendParams() if blend_params is None else blend_params
    _check_inputs(colors, fragments, blend_params, needs=("dists", "zbuf"))
    slots, cols, zbuf, dists = _pack(colors, fragments)
    return blend_packed("softmax", cols, slots, zbuf, dists, fragments.pix_to_face.shape, blend_params,
                        znear=znear, zfar=zfar)


def _plane(value: Any, name: str, N: int, like: torch.Tensor) -> Union[float, torch.Tensor]:
    """A number, a 0-d tensor, or an (N,) tensor (one plane per image) on ``like``'s device and dtype."""
    if isinstance(value, torch.Tensor):
        check_tensor(value, name, dtype="float", finite=True)
        if value.dim() == 0 or value.numel() == 1:
            return value.reshape(()).to(device=like.device, dtype=like.dtype)
        if value.dim() != 1 or value.shape[0] != N:
            raise ValueError(f"{name}: expected a number or shape ({N},) (one per image), got {tuple(value.shape)}")
        value = value.to(device=like.device, dtype=like.dtype)
        if not value.requires_grad and bool((value == value[0]).all()):
            # One plane for every image (a camera batch's usual planes): no per-fragment gather.
            return value[0]
        return value
    return check_float(value, name)
