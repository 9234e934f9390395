"""``RasterSettings``: every knob of the mesh rasterizer, validated once, with PyTorch3D's meanings."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple, Union

from .._validation import check_choice, check_float, check_image_size, check_int

__all__ = ["RasterSettings", "BACKENDS"]

#: Visibility backends accepted by ``backend`` ("auto": numba for CPU tensors, torch otherwise).
BACKENDS = ("auto", "numba", "torch", "reference")


@dataclass(frozen=True)
class RasterSettings:
    """Settings of :func:`diffras.raster.rasterize_meshes` / :class:`diffras.raster.MeshRasterizer`.

    Same names and meanings as PyTorch3D's ``RasterizationSettings`` so that code can switch.

    Args:
        image_size: an int (square image) or ``(H, W)``; stored as the ``(H, W)`` tuple. Each side in
            ``[1, 16384]``; default 256, as PyTorch3D. NDC spans [-1, 1] on the shorter side (docs/conventions.md).
        blur_radius: >= 0, in *squared* NDC units (as PyTorch3D): a face is kept for a pixel whose
            centre lies inside it or whose squared distance to it is below ``blur_radius``.
        faces_per_pixel: K >= 1, the number of nearest faces kept per pixel.
        bin_size: screen tile size in pixels for the binned backends; ``None`` chooses automatically,
            ``0`` asks for no binning. Never changes the result, only the speed.
        max_faces_per_bin: capacity hint for the binned backends; ``None`` chooses automatically. Never
            makes a backend drop faces (bins grow when needed).
        perspective_correct: perspective-correct barycentrics (and hence depth interpolation in view
            space). ``None``: decided from the camera, True for perspective cameras, as PyTorch3D.
        clip_barycentric_coords: clamp barycentrics to be >= 0 and renormalise before computing the
            depth and returning them (useful with ``blur_radius > 0``, where pixels outside a face get
            it). ``None``: True exactly when ``blur_radius > 0``, as PyTorch3D.
        cull_backfaces: drop faces whose projected corners have ``face_area < 0`` with PyTorch3D's
            ``face_area = (x0 - x1) * (y2 - y1) - (y0 - y1) * (x2 - x1)`` in NDC (facing away from the
            camera for meshes with outward normals ``(v1 - v0) x (v2 - v0)``).
        z_clip_value: if set, faces crossing the plane ``z_view = z_clip_value`` are clipped to the part
            in front of it (one or two pieces whose fragments map back to the original face, with
            barycentrics relative to it) and faces wholly behind it are culled. ``None`` in
            ``MeshRasterizer``/``rasterize_meshes``: ``znear / 2`` for perspective cameras that have a
            ``znear`` (as PyTorch3D), otherwise no clipping, in which case, under perspective, faces with
            any vertex at ``z_view <= 0`` are culled (their projection is meaningless).
        cull_to_frustum: drop faces whose three vertices all lie beyond the same side of the image
            (x or y; expanded by ``sqrt(blur_radius)`` so no visible fragment is lost). Only a speed-up.
        backend: visibility backend, one of ``"auto"``, ``"numba"``, ``"torch"``, ``"reference"``.
    """

    image_size: Union[int, Tuple[int, int]] = 256
    blur_radius: float = 0.0
    faces_per_pixel: int = 1
    bin_size: Optional[int] = None
    max_faces_per_bin: Optional[int] = None
    perspective_correct: Optional[bool] = None
    clip_barycentric_coords: Optional[bool] = None
    cull_backfaces: bool = False
    z_clip_value: Optional[float] = None
    cull_to_frustum: bool = False
    backend: str = "auto"

    def __post_init__(self) -> None:
        # frozen dataclass: normalise through object.__setattr__ so the stored values are canonical.
        put = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        put("image_size", check_image_size(self.image_size, "image_size"))
        put("blur_radius", check_float(self.blur_radius, "blur_radius", min=0.0))
        # K beyond a few thousand would allocate N*H*W*K buffers no one wants; refuse it clearly.
        put("faces_per_pixel", check_int(self.faces_per_pixel, "faces_per_pixel", min=1, max=1024))
        if self.bin_size is not None:
            put("bin_size", check_int(self.bin_size, "bin_size", min=0, max=4096))
        if self.max_faces_per_bin is not None:
            put("max_faces_per_bin", check_int(self.max_faces_per_bin, "max_faces_per_bin", min=1))
        for name in ("perspective_correct", "clip_barycentric_coords"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, bool):
                raise TypeError(f"{name}: expected a bool or None, got {type(value).__name__} {value!r}")
        for name in ("cull_backfaces", "cull_to_frustum"):
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise TypeError(f"{name}: expected a bool, got {type(value).__name__} {value!r}")
        if self.z_clip_value is not None:
            put("z_clip_value", check_float(self.z_clip_value, "z_clip_value", min=0.0, min_exclusive=True))
        if not isinstance(self.backend, str):
            raise TypeError(f"backend: expected a str, got {type(self.backend).__name__} {self.backend!r}")
        check_choice(self.backend, "backend", BACKENDS)

    def resolve_clip_barycentric_coords(self) -> bool:
        """``clip_barycentric_coords`` with ``None`` resolved as PyTorch3D: ``blur_radius > 0``."""
        if self.clip_barycentric_coords is None:
            return self.blur_radius > 0.0
        return self.clip_barycentric_coords
