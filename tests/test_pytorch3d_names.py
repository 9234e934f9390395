"""PyTorch3D code runs with only the import renamed: every name its tutorials import resolves under diffras,
and the aliases are the diffras objects themselves (one implementation)."""
import importlib

import pytest

import diffras
import diffras.renderer  # noqa: F401  (a subpackage the package does not import)

# (module path under pytorch3d, names) as PyTorch3D's published tutorials import them (mesh, camera, io parts).
TUTORIAL_IMPORTS = [
    ("io", ["load_objs_as_meshes", "load_obj", "save_obj", "load_ply", "save_ply", "IO"]),
    ("structures", ["Meshes", "join_meshes_as_batch", "join_meshes_as_scene"]),
    ("vis.texture_vis", ["texturesuv_image_matplotlib"]),
    ("renderer", ["look_at_view_transform", "look_at_rotation", "FoVPerspectiveCameras", "FoVOrthographicCameras",
                  "PointLights", "DirectionalLights", "Materials", "RasterizationSettings", "MeshRenderer",
                  "MeshRasterizer", "SoftPhongShader", "SoftSilhouetteShader", "HardPhongShader", "BlendParams",
                  "TexturesUV", "TexturesVertex"]),
    ("renderer.cameras", ["SfMPerspectiveCameras", "PerspectiveCameras"]),
    ("utils", ["ico_sphere"]),
    ("ops", ["sample_points_from_meshes", "knn_points", "knn_gather", "interpolate_face_attributes"]),
    ("loss", ["chamfer_distance", "mesh_edge_loss", "mesh_laplacian_smoothing", "mesh_normal_consistency"]),
    ("transforms", ["Rotate", "Translate", "so3_exp_map", "so3_log_map", "so3_relative_angle", "Transform3d"]),
    ("transforms.so3", ["so3_exp_map", "so3_relative_angle"]),
]


@pytest.mark.parametrize("path, names", TUTORIAL_IMPORTS)
def test_tutorial_imports_resolve(path, names):
    mod = importlib.import_module(f"diffras.{path}")
    for name in names:
        assert hasattr(mod, name), f"diffras.{path}.{name}"


def test_aliases_are_the_same_objects():
    import diffras.renderer as r

    assert r.RasterizationSettings is diffras.raster.RasterSettings
    assert r.MeshRenderer is diffras.render.MeshRenderer
    assert r.TexturesUV is diffras.shading.TexturesUV
    assert importlib.import_module("diffras.loss").chamfer_distance is diffras.losses.chamfer_distance
    assert importlib.import_module("diffras.utils").ico_sphere is diffras.ops.ico_sphere


def test_rasterization_settings_default_image_size_is_pytorch3ds():
    assert diffras.renderer.RasterizationSettings().image_size == (256, 256)
