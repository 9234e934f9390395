"""Mesh operations: generation (icosphere), subdivision, and sampling points on surfaces."""
from .ico_sphere import ico_sphere, subdivide_faces
from .sample_points import sample_points_from_meshes

__all__ = ["ico_sphere", "sample_points_from_meshes", "subdivide_faces"]
