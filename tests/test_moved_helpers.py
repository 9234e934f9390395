"""Helpers the examples use live in the library's packages (ops, cameras, shading); workflows re-exports them."""
import math

import pytest
import torch

import diffras
from diffras.cameras import sphere_cameras
from diffras.ops import ico_sphere, normalize_to_unit_sphere
from diffras.shading import soft_blur_radius


def test_same_objects_through_the_old_names():
    assert diffras.workflows.normalize_to_unit_sphere is normalize_to_unit_sphere
    assert diffras.workflows.sphere_cameras is sphere_cameras
    assert diffras.workflows.soft_blur_radius is soft_blur_radius


def test_soft_blur_radius_value_and_validation():
    assert soft_blur_radius(1e-4) == pytest.approx(math.log(1e4 - 1) * 1e-4)
    assert soft_blur_radius(0.5) == 0.0
    for bad in (0.0, -1e-3, 0.6, float("nan")):
        with pytest.raises(ValueError, match="sigma"):
            soft_blur_radius(bad)
    with pytest.raises(TypeError, match="sigma"):
        soft_blur_radius("0.1")


def test_normalize_to_unit_sphere_and_type_check():
    mesh = ico_sphere(1)
    moved = mesh.offset_verts(torch.tensor([5.0, -2.0, 1.0]).expand_as(mesh.verts_packed()) * 1.0)
    scaled = moved.scale_verts(7.0) if hasattr(moved, "scale_verts") else moved
    out = normalize_to_unit_sphere(scaled)
    assert float(out.verts_packed().norm(dim=-1).max()) == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(TypeError, match="meshes"):
        normalize_to_unit_sphere(torch.zeros(3, 3))


def test_sphere_cameras_disjoint_phases():
    a, b = sphere_cameras(8), sphere_cameras(8, phase=1.0)
    assert a.R.shape == (8, 3, 3)
    assert not torch.allclose(a.get_camera_center(), b.get_camera_center())
    assert torch.allclose(a.get_camera_center().norm(dim=-1), torch.full((8,), 2.7), atol=1e-5)
