"""Textures attached to ``Meshes``: per-vertex features, UV-mapped images with mipmaps, per-face atlases.

Three classes with PyTorch3D's names and conventions, all duck-typed to the same interface (see
:class:`TexturesBase`): ``len``, ``clone``, ``detach``, ``to``, ``extend``, indexing, ``join_batch``,
``join_scene``, ``sample_textures(fragments, meshes) -> (N, H, W, K, C)``,
``sample_textures_packed(fragments, meshes) -> (P, C)`` (the P filled fragments only, what the shaders use)
and ``faces_verts_textures_packed(meshes) -> (sum F, 3, C)``.

- :class:`TexturesVertex`: features per vertex, interpolated barycentrically over each face.
- :class:`TexturesUV`: an image per mesh addressed by per-corner UV coordinates (``uv.py``, sampling and
  mip-mapping in ``mipmap.py``; :func:`sample_texture` is the plain-tensor verb).
- :class:`TexturesAtlas`: an R x R grid of colours per face, looked up by barycentric coordinates.

Also re-exported from :mod:`diffras.shading` under the same names. Symbols as in ``docs/conventions.md``.
"""
from .atlas import TexturesAtlas
from .base import TexturesBase
from .mipmap import sample_texture
from .uv import TexturesUV
from .vertex import TexturesVertex

__all__ = ["TexturesAtlas", "TexturesBase", "TexturesUV", "TexturesVertex", "sample_texture"]
