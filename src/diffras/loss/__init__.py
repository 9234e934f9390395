"""PyTorch3D's ``pytorch3d.loss`` names, as aliases of :mod:`diffras.losses`."""
from ..losses import chamfer_distance, mesh_edge_loss, mesh_laplacian_smoothing, mesh_normal_consistency

__all__ = ["chamfer_distance", "mesh_edge_loss", "mesh_laplacian_smoothing", "mesh_normal_consistency"]
