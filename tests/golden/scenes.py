"""The golden-image scenes: one definition shared by ``test_golden.py`` and ``regenerate.py``.

Every scene renders a small batch of views (128 x 128, float32, the default "auto" raster backend) and
returns an (N, H, W, C) image batch in [0, 1]; its golden file is the 1 x N grid of the views as PNG.
Depth is stored as grey ``(zfar_shown - z) / (zfar_shown - znear_shown)`` over a fixed range.
"""
from __future__ import annotations

import functools
import math
import os
from pathlib import Path
from typing import Callable, Dict, Optional

import torch

from diffras.cameras import FoVPerspectiveCameras, look_at_view_transform
from diffras.io import load_mesh
from diffras.raster import MeshRasterizer, RasterSettings
from diffras.render import MeshRenderer
from diffras.shading import (BlendParams, DirectionalLights, HardDepthShader, HardFlatShader, HardGouraudShader,
                             HardPhongShader, Materials, NormalShader, PointLights, SoftGouraudShader,
                             SoftPhongShader, SoftSilhouetteShader, TexturesUV)

GOLDEN_DIR = Path(__file__).resolve().parent
SIZE = 128
SHARED = Path(os.environ.get("DIFFRAS_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
MESHES = SHARED / "meshes"

# Tolerance of the comparison (stated once, used by the test): images are 8-bit PNGs, so a re-render must
# match to within quantisation almost everywhere; a few silhouette pixels may flip between backends or
# platforms where a pixel centre lies on an edge to within float rounding.
MAX_MEAN_ABS = 1.0 / 255  # mean absolute difference over all pixels and channels
MAX_BAD_FRACTION = 0.005  # fraction of pixels whose largest channel difference exceeds 2 / 255
BAD_THRESHOLD = 2.0 / 255


def _cameras(n_views: int = 2, dist: float = 2.7, elev: float = 15.0, azims=(30.0, 200.0)) -> FoVPerspectiveCameras:
    R, T = look_at_view_transform(dist, elev, torch.tensor(azims[:n_views]))
    return FoVPerspectiveCameras(R=R, T=T, fov=60.0)


def _normalised(mesh):
    """Centre the mesh's bounding box at the origin and scale its largest side to 2."""
    bb = mesh.get_bounding_boxes()[0]
    centre = bb.mean(dim=1)
    scale = 2.0 / float((bb[:, 1] - bb[:, 0]).max())
    return mesh.offset_verts(-centre).scale_verts(scale)


@functools.lru_cache(maxsize=None)
def _cow_cached():
    from diffras.data import load_cow

    return load_cow()


def _cow():
    return _cow_cached()


def _hard(cams):
    return MeshRasterizer(cams, RasterSettings(image_size=SIZE, faces_per_pixel=1))


def _soft(cams, sigma=1e-4, k=50):
    # PyTorch3D's tutorial settings: with blur_radius > 0 the K nearest (by clipped depth) include
    # neighbouring faces, so K must be large (50) for the covering face to be among them.
    return MeshRasterizer(cams, RasterSettings(image_size=SIZE, faces_per_pixel=k,
                                               blur_radius=math.log(1.0 / 1e-4 - 1.0) * sigma))


def _lights():
    return PointLights(location=((1.0, 2.0, -3.0),))


def cow_hard_phong():
    cams = _cameras()
    return MeshRenderer(_hard(cams), HardPhongShader(cameras=cams, lights=_lights()))(_cow())


def cow_soft_phong():
    cams = _cameras()
    bp = BlendParams(sigma=1e-4, gamma=1e-4, background_color=(0.2, 0.3, 0.4))
    return MeshRenderer(_soft(cams), SoftPhongShader(cameras=cams, lights=_lights(), blend_params=bp))(_cow())


def cow_soft_gouraud():
    cams = _cameras()
    return MeshRenderer(_soft(cams), SoftGouraudShader(cameras=cams, lights=_lights()))(_cow())


def cow_hard_flat():
    cams = _cameras()
    return MeshRenderer(_hard(cams), HardFlatShader(cameras=cams, lights=_lights()))(_cow())


def cow_hard_gouraud():
    cams = _cameras()
    return MeshRenderer(_hard(cams), HardGouraudShader(cameras=cams, lights=_lights()))(_cow())


def cow_directional_shiny():
    cams = _cameras()
    lights = DirectionalLights(direction=((0.5, 1.0, -1.0),), specular_color=((0.6, 0.6, 0.6),))
    mats = Materials(shininess=20.0, specular_color=((1.0, 0.9, 0.8),))
    return MeshRenderer(_hard(cams), HardPhongShader(cameras=cams, lights=lights, materials=mats))(_cow())


def cow_silhouette():
    cams = _cameras()
    sil = MeshRenderer(_soft(cams), SoftSilhouetteShader(BlendParams(sigma=1e-4)))(_cow())
    return sil[..., 3:]


def cow_depth():
    cams = _cameras()
    z = MeshRenderer(_hard(cams), HardDepthShader(cameras=cams))(_cow())
    near, far = 1.5, 4.0  # the cow at distance 2.7 lies in between; the background (zfar = 100) is 0
    return ((far - z) / (far - near)).clamp(0.0, 1.0)


def cow_normals():
    cams = _cameras()
    return MeshRenderer(_hard(cams), NormalShader(cameras=cams))(_cow())


def _dolphins():
    return _normalised(load_mesh(MESHES / "vertex_colors" / "dolphins_colored.ply"))


def dolphins_hard_gouraud():
    cams = _cameras(dist=2.4, elev=30.0, azims=(0.0, 120.0))
    return MeshRenderer(_hard(cams), HardGouraudShader(cameras=cams, lights=_lights()))(_dolphins())


def dolphins_soft_phong():
    cams = _cameras(dist=2.4, elev=30.0, azims=(0.0, 120.0))
    return MeshRenderer(_soft(cams), SoftPhongShader(cameras=cams, lights=_lights()))(_dolphins())


def box_glb_hard_phong():
    cams = _cameras(dist=3.2, elev=25.0, azims=(35.0, 215.0))
    mesh = _normalised(load_mesh(MESHES / "gltf" / "BoxTextured.glb"))
    # Its UVs run over [0, 6] and glTF's default sampler wraps (REPEAT); load_mesh keeps PyTorch3D's
    # "border" default, so ask for wrap addressing here.
    t = mesh.textures
    mesh.textures = TexturesUV(t.maps_padded(), t.faces_uvs_padded(), t.verts_uvs_padded(), padding_mode="wrap")
    return MeshRenderer(_hard(cams), HardPhongShader(cameras=cams, lights=_lights()))(mesh)


def cow_glb_hard_phong():
    cams = _cameras()
    mesh = load_mesh(MESHES / "cow_mesh" / "cow.glb")
    return MeshRenderer(_hard(cams), HardPhongShader(cameras=cams, lights=_lights()))(mesh)


# name -> (render function, path of the shared file it needs or None)
SCENES: Dict[str, tuple] = {
    "cow_hard_phong": (cow_hard_phong, None),
    "cow_soft_phong": (cow_soft_phong, None),
    "cow_hard_flat": (cow_hard_flat, None),
    "cow_hard_gouraud": (cow_hard_gouraud, None),
    "cow_soft_gouraud": (cow_soft_gouraud, None),
    "cow_directional_shiny": (cow_directional_shiny, None),
    "cow_silhouette": (cow_silhouette, None),
    "cow_depth": (cow_depth, None),
    "cow_normals": (cow_normals, None),
    "dolphins_hard_gouraud": (dolphins_hard_gouraud, MESHES / "vertex_colors" / "dolphins_colored.ply"),
    "dolphins_soft_phong": (dolphins_soft_phong, MESHES / "vertex_colors" / "dolphins_colored.ply"),
    "box_glb_hard_phong": (box_glb_hard_phong, MESHES / "gltf" / "BoxTextured.glb"),
    "cow_glb_hard_phong": (cow_glb_hard_phong, MESHES / "cow_mesh" / "cow.glb"),
}


def render(name: str) -> torch.Tensor:
    """(H, N * W, C) grid of the scene's views, detached, in [0, 1]."""
    from diffras.vis import image_grid

    fn, _ = SCENES[name]
    with torch.no_grad():
        images = fn()
    return image_grid(images.clamp(0.0, 1.0), rows=1)


def missing_input(name: str) -> Optional[Path]:
    need = SCENES[name][1]
    return need if need is not None and not need.is_file() else None


def golden_path(name: str) -> Path:
    return GOLDEN_DIR / f"{name}.png"


ALL: Callable[[], list] = lambda: list(SCENES)
