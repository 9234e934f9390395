"""Volumes: views, coordinate frames (against the documented formulas), copies and bad input."""
import pytest
import torch

from diffras.structures import Volumes


def _world_brute(local, size_dhw, voxel_size, translation):
    # x_world = x_local * (size_xyz - 1) * 0.5 * voxel_size - translation, coordinate by coordinate.
    size_xyz = (size_dhw[2], size_dhw[1], size_dhw[0])
    return [local[i] * (size_xyz[i] - 1) * 0.5 * voxel_size[i] - translation[i] for i in range(3)]


def test_padded_and_list_views():
    a, b = torch.rand(2, 3, 4, 5), torch.rand(2, 5, 2, 3)
    v = Volumes(densities=[a, b], features=[a * 2, b * 2])
    assert v.densities().shape == (2, 2, 5, 4, 5)
    assert v.get_grid_sizes().tolist() == [[3, 4, 5], [5, 2, 3]]
    assert torch.equal(v.densities_list()[0], a) and torch.equal(v.densities_list()[1], b)
    assert torch.equal(v.features_list()[1], b * 2)
    # padding is zeros, at the end of each spatial dimension
    assert v.densities()[1, :, :, 2:].abs().sum() == 0 and v.densities()[0, :, 3:].abs().sum() == 0
    assert Volumes(torch.rand(1, 1, 2, 2, 2)).features_list() is None
    assert len(v) == 2


def test_documented_example_and_round_trip():
    v = Volumes(densities=torch.zeros(1, 1, 5, 5, 5), voxel_size=1.0)
    local = v.world_to_local_coords(torch.tensor([[[-2.0, 0.0, 2.0]]]))
    assert torch.allclose(local, torch.tensor([[[-1.0, 0.0, 1.0]]]))
    v = Volumes(torch.rand(2, 1, 3, 4, 6, dtype=torch.float64), voxel_size=torch.tensor([[0.5, 1.0, 2.0], [1.0, 1.0, 1.0]]),
                volume_translation=torch.tensor([[1.0, -2.0, 3.0]]))
    p = torch.randn(2, 7, 5, 3, dtype=torch.float64)
    assert torch.allclose(v.local_to_world_coords(v.world_to_local_coords(p)), p)
    # Transform3d form agrees with the direct one
    t = v.get_local_to_world_coords_transform()
    assert torch.allclose(t.transform_points(p.reshape(2, -1, 3)).reshape(p.shape), v.local_to_world_coords(p))
    w2l = v.get_world_to_local_coords_transform().transform_points(p.reshape(2, -1, 3)).reshape(p.shape)
    assert torch.allclose(w2l, v.world_to_local_coords(p))


@pytest.mark.parametrize("align_corners", [True, False])
def test_coord_grid_resamples_the_volume(align_corners):
    dens = torch.rand(2, 3, 4, 5, 6, dtype=torch.float64)
    v = Volumes(dens, voxel_size=0.3, volume_translation=(0.1, 0.2, 0.3), align_corners=align_corners)
    grid = v.get_coord_grid(world_coordinates=False)
    assert grid.shape == (2, 4, 5, 6, 3)
    out = torch.nn.functional.grid_sample(dens, grid, align_corners=align_corners)
    assert torch.allclose(out, dens, atol=1e-12)


def test_coord_grid_world_matches_formula():
    vs, tr = (0.5, 1.0, 2.0), (1.0, -2.0, 3.0)
    v = Volumes(torch.rand(1, 1, 3, 4, 5), voxel_size=vs, volume_translation=tr)
    grid = v.get_coord_grid(world_coordinates=True)[0]
    D, H, W = 3, 4, 5
    for k in range(D):
        for i in range(H):
            for j in range(W):
                local = (-1 + 2 * j / (W - 1), -1 + 2 * i / (H - 1), -1 + 2 * k / (D - 1))
                want = _world_brute(local, (D, H, W), vs, tr)
                assert torch.allclose(grid[k, i, j], torch.tensor(want), atol=1e-6)


def test_coord_grid_heterogeneous_each_volume_its_own_frame():
    a, b = torch.rand(1, 3, 4, 5, dtype=torch.float64), torch.rand(1, 5, 2, 3, dtype=torch.float64)
    v = Volumes([a, b])
    grid = v.get_coord_grid(world_coordinates=False)
    for n, vol in enumerate((a, b)):
        d, h, w = vol.shape[1:]
        g = grid[n, :d, :h, :w]
        assert torch.allclose(g[0, 0, 0], torch.tensor([-1.0, -1.0, -1.0], dtype=torch.float64))
        assert torch.allclose(g[-1, -1, -1], torch.tensor([1.0, 1.0, 1.0], dtype=torch.float64))
        out = torch.nn.functional.grid_sample(vol[None], g[None], align_corners=True)[0]
        assert torch.allclose(out, vol)


def test_voxel_size_forms_agree():
    d = torch.rand(3, 1, 3, 3, 3)
    p = torch.randn(3, 4, 3)
    ref = Volumes(d, voxel_size=(0.5, 0.5, 0.5)).world_to_local_coords(p)
    for vs in (0.5, torch.tensor([0.5]), torch.tensor([0.5, 0.5, 0.5]), torch.full((3, 3), 0.5), torch.full((3, 1), 0.5)):
        assert torch.allclose(Volumes(d, voxel_size=vs).world_to_local_coords(p), ref)


def test_getitem_clone_to_update_padded():
    v = Volumes([torch.rand(2, 3, 4, 5), torch.rand(2, 2, 2, 2), torch.rand(2, 4, 4, 4)], voxel_size=torch.tensor([[1.0], [2.0], [3.0]]),
                volume_translation=torch.tensor([[0.0, 0, 0], [1, 1, 1], [2, 2, 2]]))
    sub = v[[2, 0]]
    assert sub.get_grid_sizes().tolist() == [[4, 4, 4], [3, 4, 5]]
    p = torch.randn(2, 5, 3)
    assert torch.allclose(sub.world_to_local_coords(p)[0], v.world_to_local_coords(torch.stack([p[1], p[1], p[0]]))[2])
    assert len(v[1]) == 1 and len(v[0:2]) == 2 and len(v[torch.tensor([True, False, True])]) == 2
    c = v.clone()
    c.densities().zero_()
    assert v.densities().abs().sum() > 0
    assert v.to("cpu") is v and v.to("cpu", copy=True) is not v
    new = v.update_padded(torch.ones_like(v.densities()))
    assert new.densities().min() == 1 and new.features() is None and torch.equal(new.get_grid_sizes(), v.get_grid_sizes())
    with pytest.raises(ValueError, match="new_densities"):
        v.update_padded(torch.ones(3, 2, 4, 4, 4))


def test_gradients_reach_placement_and_grids():
    vs = torch.tensor([0.7], dtype=torch.float64, requires_grad=True)
    tr = torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64, requires_grad=True)
    d = torch.rand(1, 1, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    v = Volumes(d[0][None].expand(2, -1, -1, -1, -1), voxel_size=vs, volume_translation=tr)
    (v.get_coord_grid().sum() + v.densities().sum()).backward()
    assert vs.grad is not None and tr.grad is not None and torch.allclose(d.grad, torch.full_like(d, 2.0))


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        (dict(densities=torch.rand(1, 1, 3, 3)), ValueError, "densities: expected shape"),
        (dict(densities=torch.ones(1, 1, 3, 3, 3, dtype=torch.long)), TypeError, "densities: expected a floating"),
        (dict(densities=torch.full((1, 1, 3, 3, 3), float("nan"))), ValueError, "densities: expected finite"),
        (dict(densities=torch.rand(1, 1, 1, 3, 3)), ValueError, "D, H, W >= 2"),
        (dict(densities=[torch.rand(1, 2, 2, 2), torch.rand(2, 2, 2, 2)]), ValueError, r"densities\[1\]: expected 1 channels"),
        (dict(densities=torch.rand(1, 1, 2, 2, 2), features=torch.rand(1, 3, 3, 2, 2)), ValueError, "features: expected shape"),
        (dict(densities=torch.rand(2, 1, 2, 2, 2), voxel_size=torch.ones(3, 3)), ValueError, "voxel_size"),
        (dict(densities=torch.rand(1, 1, 2, 2, 2), voxel_size=0.0), ValueError, "voxel_size: expected non-zero"),
        (dict(densities=torch.rand(1, 1, 2, 2, 2), volume_translation=1.0), ValueError, "volume_translation"),
        (dict(densities="cube"), TypeError, "densities"),
    ],
)
def test_bad_input(kwargs, err, match):
    with pytest.raises(err, match=match):
        Volumes(**kwargs)


def test_bad_points_and_index():
    v = Volumes(torch.rand(2, 1, 2, 2, 2))
    with pytest.raises(ValueError, match="points_3d_world"):
        v.world_to_local_coords(torch.rand(3, 4, 3))
    with pytest.raises(IndexError):
        v[5]
