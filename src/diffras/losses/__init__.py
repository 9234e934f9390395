"""Losses and metrics for inverse rendering (PyTorch3D's definitions and defaults where it has them).

- point clouds: :func:`chamfer_distance`, :func:`knn_points`, :func:`knn_gather` (memory-bounded);
- images: :func:`silhouette_iou`, :func:`psnr`;
- mesh regularisers on ``Meshes``: :func:`mesh_edge_loss`, :func:`mesh_laplacian_smoothing`,
  :func:`mesh_normal_consistency`, and the sparse :func:`laplacian` / :func:`cot_laplacian` matrices.
"""
from .chamfer import chamfer_distance
from .image import psnr, silhouette_iou
from .knn import KNN, knn_gather, knn_points
from .laplacian import cot_laplacian, laplacian
from .mesh import mesh_edge_loss, mesh_laplacian_smoothing, mesh_normal_consistency

__all__ = [
    "KNN",
    "chamfer_distance",
    "cot_laplacian",
    "knn_gather",
    "knn_points",
    "laplacian",
    "mesh_edge_loss",
    "mesh_laplacian_smoothing",
    "mesh_normal_consistency",
    "psnr",
    "silhouette_iou",
]
