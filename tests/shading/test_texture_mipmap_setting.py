"""Texture mip-mapping is settable at load time and at shader construction (PyTorch3D-identical sampling with
``False``), without changing the textures object."""
import pytest
import torch

from diffras.cameras import FoVPerspectiveCameras, look_at_view_transform
from diffras.data import cow_path
from diffras.io import load_mesh, load_objs_as_meshes
from diffras.raster import MeshRasterizer, RasterSettings
from diffras.render import MeshRenderer
from diffras.shading import HardPhongShader, PointLights


def _render(mesh, **shader_kw):
    R, T = look_at_view_transform(2.7, 10.0, 150.0)
    cams = FoVPerspectiveCameras(R=R, T=T)
    # 48 px for a 1024 px texture: minified, where mip-mapping changes the result.
    renderer = MeshRenderer(MeshRasterizer(cams, RasterSettings(48)),
                            HardPhongShader(cameras=cams, lights=PointLights(location=[[0.0, 2.0, -3.0]]), **shader_kw))
    return renderer(mesh)


def test_load_time_setting_reaches_the_textures():
    assert load_mesh(cow_path(), texture_mipmap=False).textures.mipmap is False
    assert load_mesh(cow_path()).textures.mipmap == "auto"
    assert load_objs_as_meshes([cow_path()], texture_mipmap=False).textures.mipmap is False


def test_shader_setting_equals_load_time_setting_and_matters():
    auto = load_mesh(cow_path())
    level0 = load_mesh(cow_path(), texture_mipmap=False)
    by_shader = _render(auto, texture_mipmap=False)
    torch.testing.assert_close(by_shader, _render(level0))
    assert auto.textures.mipmap == "auto"  # the shader did not change the mesh's textures
    assert (by_shader - _render(auto)).abs().max() > 1e-3  # minified: the two samplings differ


def test_bad_setting_names_the_argument():
    with pytest.raises(ValueError, match="texture_mipmap"):
        HardPhongShader(texture_mipmap="trilinear")
