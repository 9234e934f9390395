"""``RasterSettings``: every knob of the mesh rasterizer, declared and validated once, with PyTorch3D's meanings.

The one settings object of the raster stack: the public entry points (``rasterize``,
``rasterize_visibility``, ``rasterize_meshes``, ``MeshRasterizer``) build or receive one, resolve its
``None`` defaults once (:meth:`RasterSettings.resolve`), and pass it down unchanged to visibility and
fragments. Defaults live here and nowhere else.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Dict, Optional, Tuple, Union

from .._validation import check_choice, check_float, check_image_size, check_int

__all__ = ["BACKENDS", "FRAGMENT_PATHS", "RasterSettings", "setting_defaults"]

#: An image size as the entry points accept it: an int (square) or (H, W).
ImageSize = Union[int, Tuple[int, int]]
#: Visibility backends accepted by ``backend`` ("auto": numba for CPU tensors, torch otherwise).
BACKENDS = ("auto", "numba", "torch", "reference")
#: Fragment paths accepted by ``fragments`` ("auto": fused for CPU float32/float64 tensors, torch otherwise).
FRAGMENT_PATHS = ("auto", "fused", "torch")


@dataclass(frozen=True)
class RasterSettings:
    """Settings of :func:`diffras.raster.rasterize_meshes` / :class:`diffras.raster.MeshRasterizer`.

    Same names and meanings as PyTorch3D's ``RasterizationSettings`` so that code can switch; diffras adds
    ``backend``, ``keep_covering`` and ``fragments`` at the end.

    Args:
        image_size: an int (square image) or ``(H, W)``; stored as the ``(H, W)`` tuple. Each side in
            ``[1, 16384]``; default 256, as PyTorch3D. NDC spans [-1, 1] on the shorter side (docs/conventions.md).
        blur_radius: >= 0, in *squared* NDC units (as PyTorch3D): a face is kept for a pixel whose
            centre lies inside it or whose squared distance to it is below ``blur_radius``.
        faces_per_pixel: K in ``[1, 1024]``, the number of nearest faces kept per pixel.
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
        backend: visibility backend, one of ``"auto"`` (numba for CPU tensors, torch otherwise),
            ``"numba"``, ``"torch"``, ``"reference"`` (brute force, for tests). All return identical
            ``pix_to_face``.
        keep_covering: which K faces a pixel keeps when more than K are within ``blur_radius``.
            ``True`` (diffras's default): the K nearest, except that the nearest face *covering* the pixel
            centre (the centre strictly inside its triangle; the face a hard render with ``blur_radius=0``
            and K = 1 shows there; the numba backend finds it within its one pass, the others by a second
            hard pass) is always kept: when it is not among the K
            nearest it takes the place of the K-th, so a covered pixel never loses its own face and the
            list stays sorted near to far. ``False``: PyTorch3D's strict rule, the K nearest only; when
            that drops covering faces a warning says on how many pixels. The two differ only on pixels
            where the strict rule drops the covering face (never when ``blur_radius == 0``).
        fragments: how the differentiable fragments (``zbuf``, ``bary_coords``, ``dists``) are computed:
            ``"fused"``, one Numba kernel with a hand-written backward (CPU float32/float64 tensors only;
            tested against the torch path), ``"torch"``, plain torch with autograd (any device), or
            ``"auto"``, fused exactly when the vertices are a CPU float32/float64 tensor. Same values and
            gradients up to rounding; independent of ``backend``. (Faces cut by ``z_clip_value`` are
            pieces the fused kernel does not know: when clipping happens, the torch path is used.)
    """

    image_size: ImageSize = 256
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
    keep_covering: bool = True
    fragments: str = "auto"

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
        for name in ("cull_backfaces", "cull_to_frustum", "keep_covering"):
            check_bool(getattr(self, name), name)
        if self.z_clip_value is not None:
            put("z_clip_value", check_float(self.z_clip_value, "z_clip_value", min=0.0, min_exclusive=True))
        for name, choices in (("backend", BACKENDS), ("fragments", FRAGMENT_PATHS)):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise TypeError(f"{name}: expected a str, got {type(value).__name__} {value!r}")
            check_choice(value, name, choices)

    def resolve_clip_barycentric_coords(self) -> bool:
        """``clip_barycentric_coords`` with ``None`` resolved as PyTorch3D: ``blur_radius > 0``."""
        if self.clip_barycentric_coords is None:
            return self.blur_radius > 0.0
        return self.clip_barycentric_coords

    def resolve(self, *, perspective_correct: bool = False, znear: Optional[float] = None) -> "RasterSettings":
        """A copy with every ``None`` decided, as the raster pipeline below the public entry points needs it.

        Args:
            perspective_correct: the value of ``perspective_correct`` when it is ``None`` (the camera's
                ``is_perspective()`` in ``rasterize_meshes``; False for the functional tier, which knows
                no camera).
            znear: the camera's near plane, if any: ``z_clip_value=None`` becomes ``znear / 2`` when
                perspective-correct (PyTorch3D's rule), otherwise stays None (no clipping).

        Returns:
            :class:`RasterSettings` whose ``perspective_correct`` and ``clip_barycentric_coords`` are bools.
        """
        persp = perspective_correct if self.perspective_correct is None else self.perspective_correct
        z_clip = self.z_clip_value
        if z_clip is None and persp and znear is not None:
            z_clip = znear / 2.0
        return replace(
            self,
            perspective_correct=bool(persp),
            clip_barycentric_coords=self.resolve_clip_barycentric_coords(),
            z_clip_value=z_clip,
        )


def check_bool(value: Any, name: str) -> bool:
    """Check ``value`` is a bool (not 0/1, not None); return it."""
    if not isinstance(value, bool):
        raise TypeError(f"{name}: expected a bool, got {type(value).__name__} {value!r}")
    return value


def setting_defaults() -> Dict[str, Any]:
    """``{field name: default}`` of :class:`RasterSettings` (fields with a default), for the keyword
    defaults of the functional entry points, so that every default is declared once, above."""
    return {f.name: f.default for f in fields(RasterSettings) if f.name != "image_size"}
