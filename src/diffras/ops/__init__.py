"""Mesh operations: generation (icosphere), subdivision, normalisation, and sampling points on surfaces."""
from .ico_sphere import ico_sphere, subdivide_faces
from .normalize import normalize_to_unit_sphere
from .sample_points import sample_points_from_meshes

# PyTorch3D keeps these in pytorch3d.ops: the same functions, one implementation.
from ..losses.knn import knn_gather, knn_points  # noqa: E402
from ..textures.interpolate import interpolate_face_attributes  # noqa: E402

__all__ = [
    "ico_sphere",
    "interpolate_face_attributes",
    "knn_gather",
    "knn_points",
    "normalize_to_unit_sphere",
    "sample_points_from_meshes",
    "subdivide_faces",
]
