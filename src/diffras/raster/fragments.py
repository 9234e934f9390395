"""The contract between visibility and shading: ``Fragments``."""
from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Optional, Tuple

import torch

from .._validation import check_index_range, check_tensor
from ._rule import CLIP_SUM_MIN, EPS, edge, pixel_center

__all__ = ["Fragments", "compute_fragments", "scatter_packed"]


_FUSED = [True]


@contextmanager
def fused_kernels(enabled: bool):
    """Context manager: ``with fused_kernels(False):`` forces the plain-torch path of every fused CPU kernel
    (fragments, interpolation, texture sampling, lighting) inside the block, e.g. to benchmark the fused
    kernels against the reference path, or to debug. Not thread-safe (a process-wide switch)."""
    old = _FUSED[0]
    _FUSED[0] = bool(enabled)
    try:
        yield
    finally:
        _FUSED[0] = old


def use_fused(*tensors: torch.Tensor) -> bool:
    """Whether the fused Numba kernels may run on ``tensors``: CPU float32/float64 tensors of one dtype, and
    not inside ``fused_kernels(False)``. Anything else (other devices, mixed or other dtypes) takes the
    plain-torch path, which has the same semantics."""
    dtypes = {t.dtype for t in tensors}
    return (_FUSED[0] and all(t.device.type == "cpu" for t in tensors) and len(dtypes) == 1
            and dtypes <= {torch.float32, torch.float64})


def scatter_packed(values: torch.Tensor, slot: torch.Tensor, shape, fill: float = 0.0) -> torch.Tensor:
    """Dense (*shape, *values.shape[1:]) from packed ``values`` (P, *) at flat indices ``slot`` (P,) int64 into
    ``shape``, ``fill`` elsewhere. Differentiable w.r.t. ``values`` (gradients flow to the P rows only).

    The one packed -> dense scatter of diffras (fragments, textures, shading, the blend shim use it)."""
    shape = tuple(int(s) for s in shape)
    total = 1
    for s in shape:
        total *= s
    rest = tuple(values.shape[1:])
    # In place on a fresh buffer (recorded by autograd): an out-of-place index_put would copy it once more.
    out = values.new_full((total,) + rest, fill)
    if slot.numel():
        out.index_put_((slot,), values)
    return out.view(shape + rest)


class Fragments:
    """Per-pixel list of the K nearest faces and where the pixel centre lies on each.

    Dense view, PyTorch3D's (see ``docs/conventions.md`` for the symbols and coordinate frames):

    - ``pix_to_face``: (N, H, W, K) int64. ``pix_to_face[n, y, x, k] = f`` means the k-th nearest face
      covering (or within ``blur_radius`` of) the centre of pixel (y, x) of image n is *packed* face f;
      -1 where fewer than k + 1 faces do. Sorted near to far; equal depths keep the lower face index first.
    - ``zbuf``: (N, H, W, K) float, view-space depth of the fragment; -1 where empty.
    - ``bary_coords``: (N, H, W, K, 3) float, barycentric coordinates of the pixel centre with respect to
      face f (perspective-correct for perspective cameras unless disabled); -1 where empty.
    - ``dists``: (N, H, W, K) float, signed squared distance in NDC (x, y) from the pixel centre to the
      face's 2D triangle boundary, negative inside; -1 where empty.

    Packed view (what the shaders use; the P filled slots only, ordered by flat slot index, so each
    pixel's fragments are contiguous and nearest first): for ``p`` in ``[0, P)``,

    - ``slot_idx[p]``: (P,) int64, flat index ``((n * H + y) * W + x) * K + k`` of filled slot p (increasing);
    - ``face_idx[p] = pix_to_face[n, y, x, k]``; ``pixel_idx[p] = (n * H + y) * W + x``;
      ``image_idx[p] = n`` (all (P,) int64);
    - ``bary_packed[p] = bary_coords[n, y, x, k]`` (P, 3), ``zbuf_packed[p]`` (P,), ``dists_packed[p]`` (P,).

    Built by the rasterizer from packed values (``Fragments.from_packed``), the dense ``pix_to_face``, ``zbuf``,
    ``bary_coords`` and ``dists`` are scattered from them on first access and cached (the shaders never
    access them: a render holds only the P packed entries; ``shape`` gives ``(N, H, W, K)``); built from dense
    tensors (``Fragments(pix_to_face, zbuf, bary_coords, dists)``, PyTorch3D's constructor), the packed
    values are gathered from them on first access. Either way both views agree and are differentiable
    with respect to vertex positions and camera parameters; ``pix_to_face`` carries no gradient.
    Immutable: fields cannot be reassigned (as PyTorch3D's frozen dataclass).
    """

    __slots__ = ("_p2f", "_shape", "_dense", "_packed", "_index", "_is_packed")

    def __init__(self, pix_to_face: torch.Tensor, zbuf: torch.Tensor, bary_coords: torch.Tensor,
                 dists: torch.Tensor) -> None:
        object.__setattr__(self, "_p2f", pix_to_face)
        object.__setattr__(self, "_shape", None)
        object.__setattr__(self, "_dense", [zbuf, bary_coords, dists])
        object.__setattr__(self, "_packed", None)
        object.__setattr__(self, "_index", None)
        object.__setattr__(self, "_is_packed", False)

    @classmethod
    def from_packed(cls, pix_to_face: Optional[torch.Tensor], slot_idx: torch.Tensor, bary: torch.Tensor,
                    zbuf: torch.Tensor, dists: torch.Tensor, *, face_idx: Optional[torch.Tensor] = None,
                    shape: Optional[Tuple[int, int, int, int]] = None) -> "Fragments":
        """Fragments from the values of the P filled slots.

        Args:
            pix_to_face: (N, H, W, K) int64, -1 where empty; or None, with ``face_idx`` and ``shape``: the dense
                ``pix_to_face`` is then built from them on first access (the shaders never need it).
            slot_idx: (P,) int64, increasing flat indices into ``pix_to_face`` of exactly its filled slots.
            bary, zbuf, dists: (P, 3), (P,), (P,) float values of those slots (differentiable).
            face_idx: (P,) int64, the face in each slot (taken from ``pix_to_face`` when None).
            shape: ``(N, H, W, K)`` (``pix_to_face.shape`` when None).
        """
        if pix_to_face is None and (face_idx is None or shape is None):
            raise ValueError("pix_to_face: expected a tensor, or face_idx and shape to build it from, got None")
        obj = cls.__new__(cls)
        object.__setattr__(obj, "_p2f", pix_to_face)
        object.__setattr__(obj, "_shape", None if shape is None else tuple(int(v) for v in shape))
        object.__setattr__(obj, "_dense", None)
        object.__setattr__(obj, "_packed", [bary, zbuf, dists])
        object.__setattr__(obj, "_index", (slot_idx, face_idx))
        object.__setattr__(obj, "_is_packed", True)
        return obj

    def __setattr__(self, name, value):
        raise AttributeError(f"Fragments is immutable: cannot assign {name!r}")

    # ---- dense view ----------------------------------------------------------------------------
    @property
    def pix_to_face(self) -> torch.Tensor:
        if self._p2f is None:
            # Built from the packed faces on first access (and kept): -1 everywhere, the faces in their slots.
            slot, face = self._index
            flat = torch.full((math.prod(self._shape),), -1, dtype=torch.int64, device=slot.device)
            flat[slot] = face
            object.__setattr__(self, "_p2f", flat.view(self._shape))
        return self._p2f

    @property
    def shape(self) -> Tuple[int, int, int, int]:
        """``(N, H, W, K)``, the shape of ``pix_to_face`` (without building it)."""
        if self._shape is not None:
            return self._shape
        return tuple(self._p2f.shape) if isinstance(self._p2f, torch.Tensor) else ()

    def _dense_field(self, i: int) -> torch.Tensor:
        """Dense zbuf (i = 0), bary_coords (1) or dists (2); scattered from the packed values (fill -1,
        PyTorch3D's) on first access and cached."""
        if self._dense is None:
            object.__setattr__(self, "_dense", [None, None, None])
        t = self._dense[i]
        if t is None:
            t = scatter_packed(self._packed[(1, 0, 2)[i]], self.slot_idx, self.shape, -1.0)
            self._dense[i] = t
        return t

    @property
    def zbuf(self) -> torch.Tensor:
        return self._dense_field(0)

    @property
    def bary_coords(self) -> torch.Tensor:
        return self._dense_field(1)

    @property
    def dists(self) -> torch.Tensor:
        return self._dense_field(2)

    # ---- packed view ---------------------------------------------------------------------------
    def _slots(self):
        if self._index is None:
            p2f = self._p2f
            if not isinstance(p2f, torch.Tensor) or p2f.dim() != 4:
                raise ValueError(f"fragments.pix_to_face: expected an (N, H, W, K) tensor, got "
                                 f"{getattr(p2f, 'shape', type(p2f).__name__)}")
            flat = p2f.reshape(-1)
            slot = torch.nonzero(flat >= 0).squeeze(1)
            object.__setattr__(self, "_index", (slot, flat[slot]))
        slot, face = self._index
        if face is None:
            face = self.pix_to_face.reshape(-1)[slot]
            object.__setattr__(self, "_index", (slot, face))
        return slot, face

    @property
    def slot_idx(self) -> torch.Tensor:
        return self._slots()[0]

    @property
    def face_idx(self) -> torch.Tensor:
        return self._slots()[1]

    @property
    def pixel_idx(self) -> torch.Tensor:
        return torch.div(self.slot_idx, self.shape[3], rounding_mode="floor")

    @property
    def image_idx(self) -> torch.Tensor:
        N, H, W, K = self.shape
        return torch.div(self.slot_idx, max(H * W * K, 1), rounding_mode="floor")

    @property
    def num_filled(self) -> int:
        """P, the number of filled slots."""
        return int(self.slot_idx.shape[0])

    def _packed_field(self, i: int) -> torch.Tensor:
        """Packed bary (i = 0), zbuf (1) or dists (2); gathered from the dense tensor on first access."""
        if self._packed is None:
            object.__setattr__(self, "_packed", [None, None, None])
        t = self._packed[i]
        if t is None:
            name, dense = (("bary_coords", self._dense[1]), ("zbuf", self._dense[0]), ("dists", self._dense[2]))[i]
            want = tuple(self.shape) + ((3,) if i == 0 else ())
            if not isinstance(dense, torch.Tensor) or tuple(dense.shape) != want:
                got = tuple(dense.shape) if isinstance(dense, torch.Tensor) else type(dense).__name__
                raise ValueError(f"fragments.{name}: expected shape {want}, got {got}")
            t = dense.reshape((-1, 3) if i == 0 else (-1,))[self.slot_idx]
            self._packed[i] = t
        return t

    def _packed_values(self):
        return tuple(self._packed_field(i) for i in range(3))

    @property
    def bary_packed(self) -> torch.Tensor:
        return self._packed_field(0)

    @property
    def zbuf_packed(self) -> torch.Tensor:
        return self._packed_field(1)

    @property
    def dists_packed(self) -> torch.Tensor:
        return self._packed_field(2)

    # ---- helpers -------------------------------------------------------------------------------
    def detach(self) -> "Fragments":
        if self._is_packed:
            slot, face = self._index
            return Fragments.from_packed(self._p2f, slot, *(t.detach() for t in self._packed), face_idx=face,
                                         shape=self._shape)
        return Fragments(self._p2f, *(t.detach() if isinstance(t, torch.Tensor) else t for t in self._dense))

    def nearest(self) -> "Fragments":
        """The K = 1 slice (each pixel's nearest fragment), from the packed values (no dense copy)."""
        N, H, W, K = self.shape
        if K == 1:
            return self
        slot, face = self._slots()
        keep = torch.nonzero(slot % K == 0).squeeze(1)
        bary, zbuf, dists = self._packed_values()
        p2f = self._p2f[..., :1] if self._p2f is not None else None
        return Fragments.from_packed(p2f, torch.div(slot[keep], K, rounding_mode="floor"), bary[keep], zbuf[keep],
                                     dists[keep], face_idx=face[keep], shape=(N, H, W, 1))

    def __iter__(self):
        # Unpacks like PyTorch3D's namedtuple: ``pix_to_face, zbuf, bary, dists = fragments``.
        return iter((self.pix_to_face, self.zbuf, self.bary_coords, self.dists))

    def __repr__(self) -> str:
        return f"Fragments(pix_to_face={self.shape}, filled={self.num_filled})"


def as_fragments(fragments) -> Fragments:
    """``fragments`` itself, or a :class:`Fragments` wrapping any object with PyTorch3D's fields
    (``pix_to_face``, ``zbuf``, ``bary_coords``, ``dists``; missing ones are None), e.g. PyTorch3D's own."""
    if isinstance(fragments, Fragments):
        return fragments
    if not hasattr(fragments, "pix_to_face"):
        raise TypeError(f"fragments: expected a Fragments (or an object with pix_to_face, zbuf, bary_coords and "
                        f"dists), got {type(fragments).__name__}")
    return Fragments(fragments.pix_to_face, getattr(fragments, "zbuf", None), getattr(fragments, "bary_coords", None),
                     getattr(fragments, "dists", None))


# ---------------------------------------------------------------------------------------------
# Differentiable fragment math. Recomputed in torch from ``pix_to_face`` so that autograd gives exact
# gradients on any device; only the filled (pixel, k) slots are touched, so the work scales with the
# fragments found, not with N * H * W * K. Expressions and their order follow PyTorch3D's kernels
# (and diffras.raster.visibility, which decides which faces are here).
# ---------------------------------------------------------------------------------------------

# The rule's constants and edge function come from the leaf module every raster backend shares.
_EPS = EPS
_CLIP_SUM_MIN = CLIP_SUM_MIN
_edge = edge


def _away_from_zero(x: torch.Tensor, floor: float) -> torch.Tensor:
    """``x`` with magnitudes below ``floor`` replaced by ``+-floor`` (sign kept, 0 -> +floor).

    A denominator guard whose backward stays finite: the replaced entries are constants, so no
    gradient flows through a near-zero division.
    """
    small = x.abs() < floor
    return torch.where(small, torch.where(x < 0, -floor, floor).to(x.dtype), x)


def _segment_dist2(px, py, ax, ay, bx, by):
    """Squared distance from p to segment (a, b); a segment with squared length <= 1e-8 counts as b."""
    dx, dy = bx - ax, by - ay
    l2 = dx * dx + dy * dy
    short = l2 <= _EPS
    # Double-where: the division never sees a tiny l2, so its backward is finite too.
    t = (dx * (px - ax) + dy * (py - ay)) / torch.where(short, torch.ones_like(l2), l2)
    t = t.clamp(0.0, 1.0)
    ex, ey = px - (ax + t * dx), py - (ay + t * dy)
    seg = ex * ex + ey * ey
    qx, qy = px - bx, py - by
    return torch.where(short, qx * qx + qy * qy, seg)


def fragment_values(
    fv: torch.Tensor,
    px: torch.Tensor,
    py: torch.Tensor,
    *,
    perspective_correct: bool,
    clip_barycentric_coords: bool,
):
    """Barycentrics, depth and signed distance of M (face, pixel centre) pairs.

    Args:
        fv: (M, 3, 3) float, the face of each pair, corners ``(x_ndc, y_ndc, z_view)``.
        px, py: (M,) float, the pixel centre of each pair in NDC.
        perspective_correct, clip_barycentric_coords: as in :class:`RasterSettings`.

    Returns:
        ``(bary (M, 3), zbuf (M,), dists (M,))`` with the meanings of :class:`Fragments`: ``bary`` is
        perspective-corrected and/or clipped as asked, ``zbuf = sum(bary * z)``, ``dists`` the squared
        2D distance to the triangle boundary, negative when the (unclipped) barycentrics are all > 0.
        Finite, with finite gradients, for any finite input (degenerate faces included).
    """
    x0, y0, z0 = fv[:, 0].unbind(-1)
    x1, y1, z1 = fv[:, 1].unbind(-1)
    x2, y2, z2 = fv[:, 2].unbind(-1)
    area = _away_from_zero(_edge(x2, y2, x0, y0, x1, y1) + _EPS, _EPS)
    w0 = _edge(px, py, x1, y1, x2, y2) / area
    w1 = _edge(px, py, x2, y2, x0, y0) / area
    w2 = _edge(px, py, x0, y0, x1, y1) / area
    if perspective_correct:
        t0 = w0 * z1 * z2
        t1 = w1 * z0 * z2
        t2 = w2 * z0 * z1
        denom = _away_from_zero(t0 + t1 + t2, _EPS)
        w0, w1, w2 = t0 / denom, t1 / denom, t2 / denom
    w = torch.stack((w0, w1, w2), dim=-1)
    inside = (w > 0).all(dim=-1)
    if clip_barycentric_coords:
        c = w.clamp_min(0.0)
        w = c / c.sum(dim=-1, keepdim=True).clamp_min(_CLIP_SUM_MIN)
    zbuf = w[:, 0] * z0 + w[:, 1] * z1 + w[:, 2] * z2
    dist = torch.minimum(
        torch.minimum(_segment_dist2(px, py, x0, y0, x1, y1), _segment_dist2(px, py, x0, y0, x2, y2)),
        _segment_dist2(px, py, x1, y1, x2, y2),
    )
    return w, zbuf, torch.where(inside, -dist, dist)


def pixel_centers_of(flat_pix: torch.Tensor, image_size, dtype: torch.dtype):
    """NDC centre (px, py) of pixels given by flat index ``n * H * W + y * W + x`` (M,) int64.

    Same formula as :func:`diffras.raster.pixels.pixel_centers_ndc` (PyTorch3D's placement)."""
    H, W = image_size
    S = float(min(H, W))
    x = flat_pix % W
    y = (flat_pix // W) % H
    px = pixel_center(x.to(dtype), W, S)
    py = pixel_center(y.to(dtype), H, S)
    return px, py


def scatter_fragments(
    pix_to_face: torch.Tensor,
    slot: torch.Tensor,
    bary: torch.Tensor,
    zbuf: torch.Tensor,
    dists: torch.Tensor,
) -> Fragments:
    """:class:`Fragments` from values at M filled slots (kept packed; the dense view is built on demand).

    Args:
        pix_to_face: (N, H, W, K) int64, the final face indices (-1 where empty).
        slot: (M,) int64 increasing flat indices into ``pix_to_face`` of its filled slots.
        bary, zbuf, dists: (M, 3), (M,), (M,) values of those slots (differentiable).
    """
    return Fragments.from_packed(pix_to_face, slot, bary, zbuf, dists)


def compute_fragments(
    face_verts: torch.Tensor,
    pix_to_face: torch.Tensor,
    *,
    perspective_correct: bool = False,
    clip_barycentric_coords: bool = False,
    fused: Optional[bool] = None,
    verts_faces: Optional[Tuple[torch.Tensor, torch.Tensor]] = None,
    filled_per_pixel: Optional[torch.Tensor] = None,
) -> Fragments:
    """Differentiable :class:`Fragments` from a visibility result and the projected faces.

    Args:
        face_verts: (F, 3, 3) float, packed faces, corners ``(x_ndc, y_ndc, z_view)`` (the input of
            :func:`diffras.raster.rasterize_visibility`); gradients flow back to it.
        pix_to_face: (N, H, W, K) int64 indices into ``face_verts``, -1 where empty.
        perspective_correct, clip_barycentric_coords: as in :class:`RasterSettings`.
        fused: use the fused CPU kernel (one numba pass, hand-written backward, tested against the
            torch path); None: when ``face_verts`` is a float32/float64 CPU tensor. False: plain
            torch autograd (any device). ``fused_kernels(False)`` forces False.
        verts_faces: optional ``(verts (V, 3), faces (F, 3))`` with ``face_verts == verts[faces]``; the
            fused kernel then reads and differentiates ``verts`` directly (no (F, 3, 3) gradient).
        filled_per_pixel: optional (N, H, W) int32 list lengths, from the rasterizer: each pixel's lists then
            fill its first slots, and only those are read (the rest of ``pix_to_face`` may be uninitialised).

    Returns:
        :class:`Fragments` holding the packed values of the P filled slots (the dense view is built
        on first access). Work and memory scale with P, not with N * H * W * K.
    """
    if fused is None or not _FUSED[0]:
        fused = use_fused(face_verts)
    flat = pix_to_face.reshape(-1)
    N, H, W, K = pix_to_face.shape
    if filled_per_pixel is not None:
        from ._fragments_numba import listed_slots

        check_tensor(filled_per_pixel, "filled_per_pixel", shape=(N, H, W), dtype="int")
        check_index_range(filled_per_pixel, "filled_per_pixel", K + 1)  # the kernel reads K slots at most
        slot, faces = listed_slots(flat.cpu(), filled_per_pixel.reshape(-1).cpu(), K)
        slot, faces = slot.to(flat.device), faces.to(flat.device)
    elif fused and flat.dtype == torch.int64 and flat.device.type == "cpu":
        from ._fragments_numba import filled_slots

        slot, faces = filled_slots(flat)
    else:
        slot = torch.nonzero(flat >= 0).squeeze(1)
        faces = flat[slot]
    if fused:
        from ._fragments_numba import fused_fragments_packed

        if verts_faces is None:
            verts = face_verts.reshape(-1, 3)
            corner = torch.arange(face_verts.shape[0] * 3, device=face_verts.device).view(-1, 3)
        else:
            verts, corner = verts_faces
        bary, zbuf, dists = fused_fragments_packed(verts, corner, slot, faces, (H, W, K), perspective_correct,
                                                   clip_barycentric_coords)
        # Only the packed lists are kept: the dense (N, H, W, K) int64 pix_to_face (134 MiB for 8 views at
        # 512^2, K = 8) is freed here and rebuilt only if someone reads it.
        return Fragments.from_packed(None, slot, bary, zbuf, dists, face_idx=faces, shape=(N, H, W, K))
    px, py = pixel_centers_of(torch.div(slot, K, rounding_mode="floor"), (H, W), face_verts.dtype)
    bary, zbuf, dists = fragment_values(
        face_verts[faces],
        px,
        py,
        perspective_correct=perspective_correct,
        clip_barycentric_coords=clip_barycentric_coords,
    )
    return Fragments.from_packed(None, slot, bary, zbuf, dists, face_idx=faces, shape=(N, H, W, K))
