"""PLY point clouds: round trips through save_pointcloud / load_pointcloud, files written by hand."""
import pytest
import torch

from diffras.io import load_pointcloud, save_pointcloud
from diffras.structures import Pointclouds


def test_round_trip_float_and_uint8_colours(tmp_path):
    g = torch.Generator().manual_seed(0)
    pts = torch.randn(50, 3, generator=g)
    nrm = torch.randn(50, 3, generator=g)
    col = torch.rand(50, 3, generator=g)
    pc = Pointclouds([pts], normals=[nrm], features=[col])
    save_pointcloud(pc, tmp_path / "a.ply")
    back = load_pointcloud(tmp_path / "a.ply")
    assert len(back) == 1
    assert torch.equal(back.points_packed(), pts) and torch.equal(back.normals_packed(), nrm)
    assert torch.equal(back.features_packed(), col)  # float colours: exact
    save_pointcloud(pc, str(tmp_path / "b.ply"), colors_as_uint8=True)
    back = load_pointcloud(str(tmp_path / "b.ply"))
    assert back.features_packed().dtype == torch.float32
    assert float((back.features_packed() - col).abs().max()) <= 0.5 / 255 + 1e-7
    # k / 255 values survive the 8-bit round trip exactly.
    save_pointcloud(back, tmp_path / "c.ply", colors_as_uint8=True)
    assert torch.equal(load_pointcloud(tmp_path / "c.ply").features_packed(), back.features_packed())
    # Points only, and an empty cloud.
    save_pointcloud(Pointclouds([pts]), tmp_path / "d.ply")
    d = load_pointcloud(tmp_path / "d.ply")
    assert d.normals_packed() is None and d.features_packed() is None and torch.equal(d.points_packed(), pts)
    save_pointcloud(Pointclouds([torch.zeros(0, 3)]), tmp_path / "e.ply")
    assert load_pointcloud(tmp_path / "e.ply").isempty()


def test_reads_ascii_file_written_elsewhere(tmp_path):
    # As Open3D / MeshLab write them: uchar RGBA colours (alpha ignored, as PyTorch3D), normals, a face.
    text = """ply
format ascii 1.0
element vertex 3
property float x
property float y
property float z
property float nx
property float ny
property float nz
property uchar red
property uchar green
property uchar blue
property uchar alpha
element face 1
property list uchar int vertex_indices
end_header
0 0 0 0 0 1 255 0 0 255
1 0 0 0 1 0 0 51 0 128
0 1 0.5 1 0 0 0 0 255 0
3 0 1 2
"""
    (tmp_path / "o3d.ply").write_text(text)
    pc = load_pointcloud(tmp_path / "o3d.ply", device="cpu")
    assert pc.points_packed().tolist() == [[0, 0, 0], [1, 0, 0], [0, 1, 0.5]]
    assert pc.normals_packed().tolist() == [[0, 0, 1], [0, 1, 0], [1, 0, 0]]
    torch.testing.assert_close(pc.features_packed(), torch.tensor([[1.0, 0, 0], [0, 0.2, 0], [0, 0, 1.0]]))


def test_bad_input(tmp_path):
    pc = Pointclouds([torch.rand(3, 3)], features=[torch.rand(3, 4)])
    with pytest.raises(ValueError, match="3 channels"):
        save_pointcloud(pc, tmp_path / "a.ply")
    with pytest.raises(ValueError, match="one cloud"):
        save_pointcloud(Pointclouds([torch.rand(3, 3)] * 2), tmp_path / "a.ply")
    with pytest.raises(ValueError, match=r"\.ply"):
        save_pointcloud(Pointclouds([torch.rand(3, 3)]), tmp_path / "a.obj")
    with pytest.raises(TypeError, match="data: expected a Pointclouds"):
        save_pointcloud(torch.rand(3, 3), tmp_path / "a.ply")
    with pytest.raises(FileNotFoundError):
        load_pointcloud(tmp_path / "missing.ply")
    with pytest.raises(ValueError, match=r"\.ply"):
        load_pointcloud(tmp_path / "a.obj")
    (tmp_path / "half.ply").write_text("ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nproperty float y\n"
                                       "property float z\nproperty float nx\nend_header\n0 0 0 1\n")
    with pytest.raises(ValueError, match="nx"):
        load_pointcloud(tmp_path / "half.ply")
    (tmp_path / "empty.ply").write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        load_pointcloud(tmp_path / "empty.ply")
