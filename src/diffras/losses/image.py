"""Image metrics for inverse rendering: silhouette IoU and PSNR.

PyTorch3D ships neither, so these are diffras' own definitions, stated here in full.
"""
from __future__ import annotations

from typing import Optional

import torch

from .._validation import check_choice, check_float, check_same_device, check_tensor

__all__ = ["psnr", "silhouette_iou"]


def _reduce(values: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    return values


def silhouette_iou(
    pred: torch.Tensor,
    target: torch.Tensor,
    threshold: Optional[float] = 0.5,
    reduction: str = "mean",
) -> torch.Tensor:
    """Intersection over union of silhouettes, image by image.

    Two modes:

    - **hard** (``threshold`` a number, the default 0.5): ``P = pred > threshold``,
      ``T = target > threshold`` (bool masks are used as they are) and
      ``iou[n] = |P & T| / |P | T|`` over the H x W pixels of image n. This is the metric the ``fit``
      command reports (alpha > 0.5). Piecewise constant: it carries no gradient.
    - **soft** (``threshold=None``): for alphas/probabilities in [0, 1],
      ``iou[n] = sum(p * t) / sum(p + t - p * t)``, the fuzzy-set IoU; equal to the hard IoU on
      binary masks and differentiable with respect to both arguments (``1 - iou`` is a usable loss).

    Two empty silhouettes agree perfectly: their IoU is 1 (not 0 / 0).

    Args:
        pred: (N, H, W) float (or bool) predicted silhouettes, e.g. ``images[..., 3]`` of a render.
        target: (N, H, W) float (or bool) reference silhouettes, same shape and device.
        threshold: the binarisation level of the hard IoU, or None for the soft IoU.
        reduction: "mean" (over the N images, default), "sum", or "none" for the (N,) values.

    Returns:
        A scalar, or (N,) for ``reduction="none"``, in [0, 1], in the floating dtype of the inputs
        (the default dtype if both are bool).
    """
    sizes: dict = {}
    check_tensor(pred, "pred", shape=("N", "H", "W"), sizes=sizes)
    check_tensor(target, "target", shape=("N", "H", "W"), sizes=sizes)
    check_same_device(pred=pred, target=target)
    check_choice(reduction, "reduction", ("mean", "sum", "none"))
    for t, name in ((pred, "pred"), (target, "target")):
        if not (t.is_floating_point() or t.dtype == torch.bool):
            raise TypeError(f"{name}: expected a floating-point or bool tensor, got dtype {t.dtype}")
        check_tensor(t, name, finite=True)
    float_dtypes = [t.dtype for t in (pred, target) if t.is_floating_point()]
    dtype = torch.promote_types(*float_dtypes) if len(float_dtypes) == 2 else (
        float_dtypes[0] if float_dtypes else torch.get_default_dtype())

    if threshold is not None:
        threshold = check_float(threshold, "threshold")
        p = pred if pred.dtype == torch.bool else pred > threshold
        t = target if target.dtype == torch.bool else target > threshold
        inter = (p & t).sum((1, 2)).to(dtype)
        union = (p | t).sum((1, 2)).to(dtype)
        iou = torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))
        return _reduce(iou, reduction)

    p = pred.to(dtype)
    t = target.to(dtype)
    for v, name in ((p.detach(), "pred"), (t.detach(), "target")):
        if v.numel() and (float(v.min()) < 0 or float(v.max()) > 1):
            raise ValueError(
                f"{name}: expected values in [0, 1] for the soft IoU (threshold=None), "
                f"got min {float(v.min())}, max {float(v.max())}"
            )
    inter = (p * t).sum((1, 2))
    union = (p + t - p * t).sum((1, 2))
    empty = union <= 0
    # The safe denominator keeps the gradient finite for empty pairs, where the IoU is defined as 1.
    iou = torch.where(empty, torch.ones_like(union), inter / torch.where(empty, torch.ones_like(union), union))
    return _reduce(iou, reduction)


def psnr(
    pred: torch.Tensor,
    target: torch.Tensor,
    max_val: float = 1.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """Peak signal-to-noise ratio in decibels, image by image.

    ``psnr[n] = 10 * log10(max_val**2 / mse[n])`` with ``mse[n]`` the mean squared error over every
    element of image n (all pixels and channels). Identical images give ``+inf``. Differentiable
    (where ``mse > 0``).

    Args:
        pred: (N, *) float, e.g. (N, H, W, C) images with channels last.
        target: same shape, dtype and device as ``pred``.
        max_val: the largest possible value of a pixel (1.0 for images in [0, 1], 255 for 8-bit).
        reduction: "mean" over the N per-image values (default; note this is the mean of the PSNRs,
            not the PSNR of the mean error), "sum", or "none" for (N,).

    Returns:
        A scalar, or (N,) for ``reduction="none"``.
    """
    check_tensor(pred, "pred", dtype="float")
    check_tensor(target, "target", dtype="float")
    if pred.dim() < 1 or pred.numel() == 0:
        raise ValueError(f"pred: expected shape (N, *) with N >= 1 and a non-empty image, got {tuple(pred.shape)}")
    if target.shape != pred.shape:
        raise ValueError(f"target: expected shape {tuple(pred.shape)} (the shape of pred), got {tuple(target.shape)}")
    check_same_device(pred=pred, target=target)
    if target.dtype != pred.dtype:
        raise TypeError(f"target: expected dtype {pred.dtype} (the dtype of pred), got {target.dtype}")
    check_tensor(pred, "pred", finite=True)
    check_tensor(target, "target", finite=True)
    max_val = check_float(max_val, "max_val", min=0.0, min_exclusive=True)
    check_choice(reduction, "reduction", ("mean", "sum", "none"))
    mse = (pred - target).square().reshape(pred.shape[0], -1).mean(1)
    values = 10.0 * torch.log10(max_val**2 / mse)
    return _reduce(values, reduction)
