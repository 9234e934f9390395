"""``Meshes``: a batch of N triangle meshes with different vertex and face counts (PyTorch3D's API).

Storage: the primary form is **packed** (``verts_packed`` (sum V, 3), ``faces_packed`` (sum F, 3) indexing
``verts_packed``) plus per-mesh counts. The renderer, the normals and the losses all consume packed
tensors, and a fitting loop rebuilds a ``Meshes`` every iteration, so packed-first makes the hot path
free (no copy, no padding) while the list view is ``torch.split`` views and the padded view is a single
scatter, computed lazily and cached. Topology-only data (index maps, edges) is cached separately and
carried over by operations that keep the topology (``offset_verts``, ``update_padded``, ``scale_verts``).

Empty meshes (0 faces, possibly 0 vertices) are allowed inside a batch; ``isempty()`` is True when no
mesh has a face (or N = 0). Such meshes get zero normals, empty lists, and zero bounding boxes.
"""
from __future__ import annotations

from numbers import Real
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch

from .._validation import _describe, check_index_range, check_int, check_tensor
from . import _geometry as geo
from ._meshes_input import parse_lists, parse_padded
from ._packing import first_index, packed_to_padded, padded_index, segment_gather_index, segment_ids

__all__ = ["Meshes"]

IndexLike = Union[int, slice, List[int], torch.Tensor]


def _has_inference_tensor(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return value.is_inference()
    if isinstance(value, (tuple, list)):
        return any(_has_inference_tensor(v) for v in value)
    return False


class Meshes:
    """A batch of N triangle meshes.

    Args:
        verts: a list of N ``(V_i, 3)`` float tensors, or a padded ``(N, V, 3)`` float tensor (then every
            mesh has all V vertices, as in PyTorch3D). Finite values; all on one device, one dtype.
        faces: a list of N ``(F_i, 3)`` integer tensors indexing the vertices of their own mesh, or a padded
            ``(N, F, 3)`` integer tensor whose unused rows are ``-1`` (rows all -1, only at the end).
            Stored as int64.
        textures: ``None`` or a textures object with ``len(textures) == N`` (see the textures contract).
        verts_normals: ``None``, or vertex normals to use instead of computed ones, as PyTorch3D: a list of N
            ``(V_i, 3)`` or a padded ``(N, V, 3)`` float tensor. They are returned by ``verts_normals_*()`` as
            given (not renormalised) until the vertices change in place (``offset_verts_``,
            ``scale_verts_``), which recomputes them from the faces; copies (``clone``, ``detach``, ``to``) keep
            them; new meshes with other vertices (``offset_verts``, ``update_padded``, indexing) compute their own.

    Layouts (symbols of ``docs/conventions.md``): ``verts_list()`` / ``faces_list()`` give per-mesh tensors
    with local indices; ``verts_padded()`` (N, V, 3) padded with 0 and ``faces_padded()`` (N, F, 3) with
    local indices padded with -1; ``verts_packed()`` (sum V, 3) and ``faces_packed()`` (sum F, 3) whose
    indices point into ``verts_packed()``. Gradients flow from every view back to the input vertices.
    A mesh may be empty (0 faces, even 0 vertices): it keeps its place in every view, with zero normals and
    a zero bounding box. Out-of-range batch indices raise ``IndexError`` (so ``for mesh in meshes`` works).

    Example:
        >>> import torch
        >>> from diffras.structures import Meshes
        >>> tri = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]])
        >>> quad = torch.tensor([[0.0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1]])
        >>> m = Meshes([tri, quad], [torch.tensor([[0, 1, 2]]), torch.tensor([[0, 1, 2], [0, 2, 3]])])
        >>> m.num_faces_per_mesh().tolist(), m.verts_padded().shape
        ([1, 2], torch.Size([2, 4, 3]))
        >>> m.faces_packed()[1:].tolist()  # indices into verts_packed(): the quad's start at 3
        [[3, 4, 5], [3, 5, 6]]
        >>> m.faces_normals_packed()[0].tolist(), m.faces_areas_packed().tolist()
        ([0.0, 0.0, 1.0], [0.5, 0.5, 0.5])
    """

    def __init__(self, verts: Union[Sequence[torch.Tensor], torch.Tensor], faces: Any, textures: Any = None, *,
                 verts_normals: Union[Sequence[torch.Tensor], torch.Tensor, None] = None):
        if isinstance(verts, torch.Tensor):
            parsed = parse_padded(verts, faces)
        elif isinstance(verts, (list, tuple)):
            parsed = parse_lists(verts, faces)
        else:
            raise TypeError(f"verts: expected a list of (V_i, 3) tensors or an (N, V, 3) tensor, got {_describe(verts)}")
        self._setup(*parsed, textures=textures)
        if verts_normals is not None:
            self._given_normals = self._parse_normals(verts_normals)

    def _parse_normals(self, normals: Union[Sequence[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """(sum V, 3) packed normals from a list of N (V_i, 3) or a padded (N, V, 3) tensor."""
        if isinstance(normals, torch.Tensor):
            check_tensor(normals, "verts_normals", shape=(len(self), self._max_verts(), 3), dtype="float",
                         finite=True, device=self.device)
            flat = normals.reshape(-1, 3)
            packed = flat if flat.shape[0] == self._verts_packed.shape[0] else flat[self.verts_padded_to_packed_idx()]
        elif isinstance(normals, (list, tuple)):
            if len(normals) != len(self):
                raise ValueError(f"verts_normals: expected a list of {len(self)} tensors (one per mesh), got {len(normals)}")
            for i, (n, nv) in enumerate(zip(normals, self._nv)):
                check_tensor(n, f"verts_normals[{i}]", shape=(nv, 3), dtype="float", finite=True, device=self.device)
            packed = torch.cat(list(normals), 0) if normals else self._verts_packed.new_zeros(0, 3)
        else:
            raise TypeError(f"verts_normals: expected a list of (V_i, 3) tensors or an (N, V, 3) tensor, "
                            f"got {_describe(normals)}")
        return packed.to(self.dtype)

    # -- construction -------------------------------------------------------------------------------------
    def _setup(self, verts_packed, faces_packed, num_verts, num_faces, *, textures=None, topo=None) -> None:
        self._verts_packed = verts_packed
        self._faces_packed = faces_packed
        self._num_verts = num_verts
        self._num_faces = num_faces
        # Python copies of the counts: split sizes and maxima without a device sync each time.
        self._nv: List[int] = num_verts.tolist()
        self._nf: List[int] = num_faces.tolist()
        self._topo: Dict[str, Any] = dict(topo) if topo else {}
        self._geom: Dict[str, Any] = {}
        self._textures = None
        self.textures = textures
        # Normals given by the caller (PyTorch3D's ``verts_normals=``); None: computed from the faces.
        self._given_normals: Optional[torch.Tensor] = None

    @classmethod
    def _from_packed(cls, verts_packed, faces_packed, num_verts, num_faces, textures=None, topo=None) -> "Meshes":
        """Build from already validated packed data (internal; no checks)."""
        m = cls.__new__(cls)
        m._setup(verts_packed, faces_packed, num_verts, num_faces, textures=textures, topo=topo)
        return m

    @property
    def textures(self):
        """``None`` or the textures object (batch size N)."""
        return self._textures

    @textures.setter
    def textures(self, textures) -> None:
        if textures is not None:
            if not hasattr(textures, "__len__"):
                raise TypeError(f"textures: expected None or a textures object, got {_describe(textures)}")
            if len(textures) != len(self):
                raise ValueError(f"textures: expected batch size {len(self)} (the number of meshes), got {len(textures)}")
            tdev = getattr(textures, "device", None)
            if tdev is not None and len(self) and torch.device(tdev) != self.device:
                raise ValueError(f"textures: expected device {self.device} (the device of verts), got {tdev}")
        self._textures = textures

    # -- basic properties ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._nv)

    @property
    def device(self) -> torch.device:
        return self._verts_packed.device

    @property
    def dtype(self) -> torch.dtype:
        """Floating dtype of the vertices."""
        return self._verts_packed.dtype

    @property
    def equisized(self) -> bool:
        """True if every mesh has the same number of vertices and the same number of faces."""
        return len(set(self._nv)) <= 1 and len(set(self._nf)) <= 1

    @property
    def valid(self) -> torch.Tensor:
        """(N,) bool: True for meshes with at least one face."""
        return self._num_faces > 0

    def isempty(self) -> bool:
        """True if the batch holds no mesh or no mesh has a face."""
        return len(self) == 0 or not any(self._nf)

    def __repr__(self) -> str:
        return (f"Meshes(N={len(self)}, verts={sum(self._nv)}, faces={sum(self._nf)}, "
                f"dtype={self.dtype}, device={self.device}, textures={type(self._textures).__name__})")

    # -- caches -------------------------------------------------------------------------------------------
    def _topo_get(self, key, fn):
        value = self._topo.get(key)
        # Topology cached under ``torch.inference_mode`` is made of inference tensors, which autograd refuses
        # to save; the cache is carried to ``offset_verts`` results, so outside inference mode it is rebuilt.
        if value is None or (not torch.is_inference_mode_enabled() and _has_inference_tensor(value)):
            value = self._topo[key] = fn()
        return value

    def _geom_get(self, key, fn):
        if key not in self._geom:
            self._geom[key] = fn()
        return self._geom[key]

    # -- packed views -------------------------------------------------------------------------------------
    def verts_packed(self) -> torch.Tensor:
        """(sum V, 3) float: all vertices, mesh after mesh."""
        return self._verts_packed

    def faces_packed(self) -> torch.Tensor:
        """(sum F, 3) int64: all faces, indices into ``verts_packed()``."""
        return self._faces_packed

    # -- counts and index maps ----------------------------------------------------------------------------
    def num_verts_per_mesh(self) -> torch.Tensor:
        """(N,) int64."""
        return self._num_verts

    def num_faces_per_mesh(self) -> torch.Tensor:
        """(N,) int64."""
        return self._num_faces

    def mesh_to_verts_packed_first_idx(self) -> torch.Tensor:
        """(N,) int64: index in ``verts_packed()`` of each mesh's first vertex."""
        return self._topo_get("v_first", lambda: first_index(self._num_verts))

    def mesh_to_faces_packed_first_idx(self) -> torch.Tensor:
        """(N,) int64: index in ``faces_packed()`` of each mesh's first face."""
        return self._topo_get("f_first", lambda: first_index(self._num_faces))

    def verts_packed_to_mesh_idx(self) -> torch.Tensor:
        """(sum V,) int64: the mesh each packed vertex belongs to."""
        return self._topo_get("v_mesh", lambda: segment_ids(self._num_verts, self._verts_packed.shape[0]))

    def faces_packed_to_mesh_idx(self) -> torch.Tensor:
        """(sum F,) int64: the mesh each packed face belongs to."""
        return self._topo_get("f_mesh", lambda: segment_ids(self._num_faces, self._faces_packed.shape[0]))

    def _max_verts(self) -> int:
        return max(self._nv, default=0)

    def _max_faces(self) -> int:
        return max(self._nf, default=0)

    def verts_padded_to_packed_idx(self) -> torch.Tensor:
        """(sum V,) int64: entry i is the flat index into ``verts_padded().view(N * V, 3)`` of packed vertex i,
        so ``verts_padded().view(-1, 3)[idx] == verts_packed()``."""
        return self._topo_get(
            "v_pad_idx", lambda: padded_index(self._num_verts, self._max_verts(), self._verts_packed.shape[0]))

    def faces_padded_to_packed_idx(self) -> torch.Tensor:
        """(sum F,) int64: flat index into ``faces_padded().view(N * F, 3)`` of every packed face."""
        return self._topo_get(
            "f_pad_idx", lambda: padded_index(self._num_faces, self._max_faces(), self._faces_packed.shape[0]))

    def _faces_local_packed(self) -> torch.Tensor:
        # Faces with per-mesh (local) vertex indices, packed.
        def fn():
            if len(self) == 1:
                return self._faces_packed
            off = self.mesh_to_verts_packed_first_idx()[self.faces_packed_to_mesh_idx()]
            return self._faces_packed - off.unsqueeze(1)

        return self._topo_get("faces_local", fn)

    # -- list and padded views ----------------------------------------------------------------------------
    def verts_list(self) -> List[torch.Tensor]:
        """List of N ``(V_i, 3)`` float tensors (views of the packed vertices)."""
        # A fresh list each call, so a caller appending to it cannot corrupt the cache.
        return list(self._geom_get("verts_list", lambda: torch.split(self._verts_packed, self._nv)))

    def faces_list(self) -> List[torch.Tensor]:
        """List of N ``(F_i, 3)`` int64 tensors with local (per-mesh) vertex indices."""
        return list(self._topo_get("faces_list", lambda: torch.split(self._faces_local_packed(), self._nf)))

    def _pad_verts_like(self, x: torch.Tensor) -> torch.Tensor:
        # (sum V, C) per-vertex values -> (N, V, C) padded with 0; a free view when all meshes have V verts.
        n, v = len(self), self._max_verts()
        if n and all(c == v for c in self._nv):
            return x.view(n, v, *x.shape[1:])
        return packed_to_padded(x, self._num_verts, v, 0.0)

    def _pad_faces_like(self, x: torch.Tensor, pad_value: float = 0.0) -> torch.Tensor:
        n, f = len(self), self._max_faces()
        if n and all(c == f for c in self._nf):
            return x.view(n, f, *x.shape[1:])
        return packed_to_padded(x, self._num_faces, f, pad_value)

    def verts_padded(self) -> torch.Tensor:
        """(N, V, 3) float, V = max V_i, rows past V_i are 0."""
        return self._geom_get("verts_padded", lambda: self._pad_verts_like(self._verts_packed))

    def faces_padded(self) -> torch.Tensor:
        """(N, F, 3) int64 local vertex indices, F = max F_i, rows past F_i are -1."""
        return self._topo_get("faces_padded", lambda: self._pad_faces_like(self._faces_local_packed(), -1))

    def get_mesh_verts_faces(self, index: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(verts (V_i, 3), faces (F_i, 3))`` of mesh ``index`` (local face indices)."""
        i = self._normalize_int(index)
        return self.verts_list()[i], self.faces_list()[i]

    # -- edges --------------------------------------------------------------------------------------------
    def _edges(self):
        def fn():
            e, f2e = geo.unique_edges(self._faces_packed, self._verts_packed.shape[0])
            return e, f2e
        return self._topo_get("edges", fn)

    def edges_packed(self) -> torch.Tensor:
        """(E, 2) int64 unique undirected edges ``v0 < v1`` (indices into ``verts_packed()``), sorted
        lexicographically, hence grouped by mesh."""
        return self._edges()[0]

    def faces_packed_to_edges_packed(self) -> torch.Tensor:
        """(sum F, 3) int64: entry ``[f, i]`` is the index in ``edges_packed()`` of the edge opposite corner i,
        i.e. of ``(v[(i+1)%3], v[(i+2)%3])``."""
        return self._edges()[1]

    def edges_packed_to_mesh_idx(self) -> torch.Tensor:
        """(E,) int64: the mesh each edge belongs to."""
        return self._topo_get("e_mesh", lambda: self.verts_packed_to_mesh_idx()[self.edges_packed()[:, 0]])

    def num_edges_per_mesh(self) -> torch.Tensor:
        """(N,) int64."""
        return self._topo_get(
            "e_num", lambda: torch.bincount(self.edges_packed_to_mesh_idx(), minlength=len(self)).to(torch.int64))

    def mesh_to_edges_packed_first_idx(self) -> torch.Tensor:
        """(N,) int64: index in ``edges_packed()`` of each mesh's first edge."""
        return self._topo_get("e_first", lambda: first_index(self.num_edges_per_mesh()))

    # -- geometry -----------------------------------------------------------------------------------------
    def faces_normals_packed(self) -> torch.Tensor:
        """(sum F, 3) unit normals ``(v1 - v0) x (v2 - v0)`` normalised; zero for degenerate faces."""
        return self._geom_get("f_normals", lambda: geo.face_normals(self._verts_packed, self._faces_packed))

    def faces_normals_padded(self) -> torch.Tensor:
        """(N, F, 3), padded with 0."""
        return self._pad_faces_like(self.faces_normals_packed())

    def faces_normals_list(self) -> List[torch.Tensor]:
        """List of N ``(F_i, 3)``."""
        return list(torch.split(self.faces_normals_packed(), self._nf))

    def faces_areas_packed(self) -> torch.Tensor:
        """(sum F,) triangle areas."""
        return self._geom_get("f_areas", lambda: geo.face_areas(self._verts_packed, self._faces_packed))

    def verts_normals_packed(self) -> torch.Tensor:
        """(sum V, 3) area-weighted unit vertex normals (sum of the adjacent faces' ``(v1-v0) x (v2-v0)``,
        normalised); zero for vertices no face uses. Normals given to the constructor are returned as given."""
        if self._given_normals is not None:
            return self._given_normals
        return self._geom_get("v_normals", lambda: geo.vertex_normals(self._verts_packed, self._faces_packed))

    def verts_normals_padded(self) -> torch.Tensor:
        """(N, V, 3), padded with 0."""
        return self._pad_verts_like(self.verts_normals_packed())

    def verts_normals_list(self) -> List[torch.Tensor]:
        """List of N ``(V_i, 3)``."""
        return list(torch.split(self.verts_normals_packed(), self._nv))

    def get_bounding_boxes(self) -> torch.Tensor:
        """(N, 3, 2) float: ``[:, :, 0]`` the per-axis minimum, ``[:, :, 1]`` the maximum of each mesh's
        vertices; zeros for meshes without vertices."""
        return self._geom_get("bbox", lambda: geo.bounding_boxes(self.verts_padded(), self._num_verts))

    # -- vertex updates -----------------------------------------------------------------------------------
    def _check_offsets(self, offsets: torch.Tensor) -> torch.Tensor:
        check_tensor(offsets, "offsets", dtype="float", finite=True, device=self.device)
        if offsets.shape not in (self._verts_packed.shape, (3,)):
            raise ValueError(
                f"offsets: expected shape {tuple(self._verts_packed.shape)} (sum V, 3) or (3,), got {tuple(offsets.shape)}")
        # Keep the mesh's dtype; the cast is differentiable.
        return offsets.to(self.dtype)

    def _with_verts(self, verts_packed: torch.Tensor) -> "Meshes":
        return Meshes._from_packed(verts_packed, self._faces_packed, self._num_verts, self._num_faces,
                                   self._textures, self._topo)

    def offset_verts(self, offsets: torch.Tensor) -> "Meshes":
        """New ``Meshes`` with vertices ``verts_packed() + offsets``; ``offsets`` is (sum V, 3) or (3,).
        Differentiable in both; the textures object is shared, not copied."""
        return self._with_verts(self._verts_packed + self._check_offsets(offsets))

    def offset_verts_(self, offsets: torch.Tensor) -> "Meshes":
        """In-place ``offset_verts`` (rebinds the vertex tensor, so autograd history is kept); returns self."""
        self._verts_packed = self._verts_packed + self._check_offsets(offsets)
        self._geom = {}
        self._given_normals = None
        return self

    def _check_scale(self, scale) -> torch.Tensor:
        if isinstance(scale, Real) and not isinstance(scale, bool):
            scale = self._verts_packed.new_tensor(float(scale))
        check_tensor(scale, "scale", dtype="float", finite=True, device=self.device)
        if scale.dim() == 0:
            return scale.to(self.dtype)
        if scale.shape != (len(self),):
            raise ValueError(f"scale: expected a number or shape ({len(self)},) (N), got {tuple(scale.shape)}")
        return scale.to(self.dtype)[self.verts_packed_to_mesh_idx()].unsqueeze(1)

    def scale_verts(self, scale: Union[float, torch.Tensor]) -> "Meshes":
        """New ``Meshes`` with every vertex multiplied by ``scale`` (a number, a 0-d tensor or (N,) per mesh)."""
        return self._with_verts(self._verts_packed * self._check_scale(scale))

    def scale_verts_(self, scale: Union[float, torch.Tensor]) -> "Meshes":
        """In-place ``scale_verts``; returns self."""
        self._verts_packed = self._verts_packed * self._check_scale(scale)
        self._geom = {}
        self._given_normals = None
        return self

    def update_padded(self, new_verts_padded: torch.Tensor) -> "Meshes":
        """New ``Meshes`` with the same faces and textures and vertices taken from ``new_verts_padded``
        (N, V, 3) (same shape as ``verts_padded()``; rows past V_i ignored). Differentiable."""
        check_tensor(new_verts_padded, "new_verts_padded", shape=(len(self), self._max_verts(), 3),
                     dtype="float", finite=True, device=self.device)
        flat = new_verts_padded.to(self.dtype).reshape(-1, 3)
        if flat.shape[0] != self._verts_packed.shape[0]:
            flat = flat[self.verts_padded_to_packed_idx()]
        return self._with_verts(flat)

    # -- copies, devices, batching ------------------------------------------------------------------------
    def clone(self) -> "Meshes":
        """Deep copy (``torch.clone``, differentiable); textures cloned too."""
        tex = self._textures.clone() if self._textures is not None else None
        out = Meshes._from_packed(self._verts_packed.clone(), self._faces_packed.clone(), self._num_verts.clone(),
                                  self._num_faces.clone(), tex)
        return out._keep_normals(self, torch.clone)

    def detach(self) -> "Meshes":
        """Copy with detached vertices (and textures)."""
        tex = self._textures.detach() if self._textures is not None else None
        out = Meshes._from_packed(self._verts_packed.detach(), self._faces_packed, self._num_verts,
                                  self._num_faces, tex, self._topo)
        return out._keep_normals(self, torch.Tensor.detach)

    def _keep_normals(self, source: "Meshes", fn) -> "Meshes":
        if source._given_normals is not None:
            self._given_normals = fn(source._given_normals)
        return self

    def to(self, device=None, dtype: Optional[torch.dtype] = None) -> "Meshes":
        """Meshes on ``device`` (vertices cast to ``dtype`` if given); returns ``self`` if nothing changes."""
        if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
            raise TypeError(f"dtype: expected a floating torch.dtype, got {dtype!r}")
        device = self.device if device is None else torch.device(device)
        if device.type != "cpu" and device.index is None and device.type == self.device.type:
            device = self.device
        dtype = self.dtype if dtype is None else dtype
        if device == self.device and dtype == self.dtype:
            return self
        tex = self._textures
        if tex is not None and device != self.device:
            tex = tex.to(device)
        out = Meshes._from_packed(self._verts_packed.to(device=device, dtype=dtype), self._faces_packed.to(device),
                                  self._num_verts.to(device), self._num_faces.to(device), tex)
        return out._keep_normals(self, lambda t: t.to(device=device, dtype=dtype))

    def cpu(self) -> "Meshes":
        return self.to("cpu")

    def cuda(self) -> "Meshes":
        return self.to("cuda")

    def _normalize_int(self, index) -> int:
        n = len(self)
        i = int(index)
        if not -n <= i < n:
            raise IndexError(f"index: expected an int in [-{n}, {n}), got {i}")
        return i % n

    def _select(self, sel: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        # Packed data of meshes ``sel`` (M,) in that order.
        nv, nf = self._num_verts[sel], self._num_faces[sel]
        vidx = segment_gather_index(self._num_verts, sel)
        fidx = segment_gather_index(self._num_faces, sel)
        faces_local = self._faces_local_packed()[fidx]
        faces = faces_local + first_index(nv)[segment_ids(nf, faces_local.shape[0])].unsqueeze(1)
        return self._verts_packed[vidx], faces, nv, nf

    def __getitem__(self, index: IndexLike) -> "Meshes":
        """Sub-batch: ``int`` (a batch of one), ``slice``, list of ints, int64 or bool tensor."""
        n = len(self)
        if isinstance(index, bool):
            raise TypeError(f"index: expected an int, slice, list or tensor, got {_describe(index)}")
        if isinstance(index, int) or (isinstance(index, torch.Tensor) and index.dim() == 0
                                      and not index.is_floating_point() and index.dtype != torch.bool):
            sel = torch.tensor([self._normalize_int(index)], dtype=torch.int64, device=self.device)
        elif isinstance(index, slice):
            rows = list(range(n))[index]
            sel = torch.tensor(rows, dtype=torch.int64, device=self.device)
            if index.step is not None and index.step < 0:
                index = rows  # tensors (hence textures) do not take negative-step slices
        elif isinstance(index, (list, tuple)):
            if not all(isinstance(i, int) and not isinstance(i, bool) for i in index):
                raise TypeError(f"index: expected a list of ints, got {index!r}")
            sel = torch.tensor([self._normalize_int(i) for i in index], dtype=torch.int64, device=self.device)
        elif isinstance(index, torch.Tensor):
            if index.dtype == torch.bool:
                if index.shape != (n,):
                    raise IndexError(f"index: expected a bool mask of shape ({n},), got {tuple(index.shape)}")
                sel = index.to(self.device).nonzero().view(-1)
            else:
                check_tensor(index, "index", ndim=1, dtype="int")
                sel = index.to(device=self.device, dtype=torch.int64)
                if sel.numel() and bool(((sel < -n) | (sel >= n)).any()):
                    raise IndexError(f"index: expected indices in [-{n}, {n}), got min {int(sel.min())}, max {int(sel.max())}")
                sel = sel % max(n, 1)
        else:
            raise TypeError(f"index: expected an int, slice, list or tensor, got {_describe(index)}")
        tex = self._textures[index] if self._textures is not None else None
        return Meshes._from_packed(*self._select(sel), textures=tex)

    def extend(self, n: int) -> "Meshes":
        """Each mesh repeated ``n`` times, in the order m0, m0, ..., m1, m1, ...; copies (differentiable)."""
        n = check_int(n, "n", min=1)
        sel = torch.arange(len(self), device=self.device).repeat_interleave(n)
        tex = self._textures.extend(n) if self._textures is not None else None
        return Meshes._from_packed(*self._select(sel), textures=tex)

    def split(self, split_sizes: Sequence[int]) -> List["Meshes"]:
        """Consecutive sub-batches of the given sizes (which must sum to N)."""
        if not isinstance(split_sizes, (list, tuple)):
            raise TypeError(f"split_sizes: expected a list of ints, got {_describe(split_sizes)}")
        sizes = [check_int(s, f"split_sizes[{i}]", min=0) for i, s in enumerate(split_sizes)]
        if sum(sizes) != len(self):
            raise ValueError(f"split_sizes: expected sizes summing to {len(self)} (N), got {sum(sizes)}")
        starts = [sum(sizes[:i]) for i in range(len(sizes))]
        return [self[a:a + s] for a, s in zip(starts, sizes)]

    def has_verts_normals(self) -> bool:
        """True when vertex normals were given to the constructor (PyTorch3D: when they are stored)."""
        return self._given_normals is not None

    def submeshes(self, face_indices: Union[Sequence[Sequence[torch.Tensor]], Sequence[torch.Tensor], torch.Tensor]
                  ) -> "Meshes":
        """A batch of submeshes, each keeping the selected faces of one mesh (PyTorch3D's semantics).

        Args:
            face_indices: one entry per mesh: a list of 1-D int64 tensors (one per submesh; an empty list gives
                no submesh of that mesh), or a (num_submeshes, F_sub) tensor, or for the whole batch an
                (N, num_submeshes, F_sub) tensor. Indices are local to their mesh.

        Returns:
            ``Meshes`` of length ``sum(len(ids) for ids in face_indices)``, ordered mesh by mesh. Each keeps
            only the vertices its faces use, in increasing original index order (faces renumbered
            accordingly), and the matching part of the textures when the textures support ``submeshes``.
        """
        if len(face_indices) != len(self):
            raise ValueError(f"face_indices: expected one entry per mesh ({len(self)}), got {len(face_indices)}")
        sub_verts, sub_faces, sub_vert_ids, per_mesh = [], [], [], []
        for i, (ids_per_mesh, faces, verts) in enumerate(zip(face_indices, self.faces_list(), self.verts_list())):
            kept = []
            for j, ids in enumerate(ids_per_mesh):
                check_tensor(ids, f"face_indices[{i}][{j}]", ndim=1, dtype="int", device=self.device)
                check_index_range(ids, f"face_indices[{i}][{j}]", faces.shape[0])
                chosen = faces[ids]
                # The kept vertices in increasing order; each face index becomes its rank among them.
                vert_ids, local = torch.unique(chosen, sorted=True, return_inverse=True)
                sub_verts.append(verts[vert_ids])
                sub_faces.append(local.view(-1, 3))
                kept.append(vert_ids)
            sub_vert_ids.append(kept)
            per_mesh.append(list(ids_per_mesh))
        textures = None
        if self._textures is not None:
            if not hasattr(self._textures, "submeshes"):
                raise ValueError(f"meshes.textures: {type(self._textures).__name__} does not support submeshes")
            textures = self._textures.submeshes(sub_vert_ids, per_mesh)
        return Meshes(sub_verts, sub_faces, textures=textures)
