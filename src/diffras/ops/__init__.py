"""Mesh operations: generation (icosphere), subdivision, normalisation, and sampling points on surfaces."""
from .ico_sphere import ico_sphere, subdivide_faces
from .normalize import normalize_to_unit_sphere
from .sample_points import sample_points_from_meshes

__all__ = ["ico_sphere", "normalize_to_unit_sphere", "sample_points_from_meshes", "subdivide_faces"]
