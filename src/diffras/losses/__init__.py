"""Losses and metrics for inverse rendering (PyTorch3D's definitions and defaults where it has them).

- point clouds: :func:`chamfer_distance`, :func:`knn_points`, :func:`knn_gather` (memory-bounded);
- images: :func:`silhouette_iou`, :func:`psnr`.
"""
from .chamfer import chamfer_distance
from .image import psnr, silhouette_iou
from .knn import KNN, knn_gather, knn_points

__all__ = sorted([
    "KNN",
    "chamfer_distance",
    "knn_gather",
    "knn_points",
    "psnr",
    "silhouette_iou",
])
