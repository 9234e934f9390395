"""One test per input rule of Meshes and its methods: clear TypeError/ValueError naming the argument."""
from __future__ import annotations

import pytest
import torch

from diffras.structures import Meshes

V = torch.rand(4, 3)
F = torch.tensor([[0, 1, 2], [0, 2, 3]])


@pytest.mark.parametrize("verts, faces, exc, match", [
    # kinds
    ("abc", [F], TypeError, "verts"),
    ([V], "abc", TypeError, "faces"),
    (torch.rand(1, 4, 3), [F], TypeError, "faces"),
    ([V], F[None], TypeError, "faces"),
    ([V, V], [F], ValueError, "faces"),
    # dtypes
    ([V.long()], [F], TypeError, r"verts\[0\]"),
    ([V], [F.float()], TypeError, r"faces\[0\]"),
    ([V, V.double()], [F, F], TypeError, r"verts\[1\]"),
    (torch.rand(1, 4, 3).long(), F[None], TypeError, "verts"),
    (torch.rand(1, 4, 3), F[None].float(), TypeError, "faces"),
    # shapes
    ([torch.rand(4, 2)], [F], ValueError, r"verts\[0\]"),
    ([V], [torch.tensor([0, 1, 2])], ValueError, r"faces\[0\]"),
    ([V], [torch.tensor([[0, 1, 2, 3]])], ValueError, r"faces\[0\]"),
    (torch.rand(4, 3), F, ValueError, "verts"),
    (torch.rand(2, 4, 3), F[None], ValueError, "faces"),
    (torch.rand(1, 4, 3), torch.zeros(1, 2, 4, dtype=torch.int64), ValueError, "faces"),
    # finiteness
    ([torch.tensor([[0.0, 0, 0], [1, 0, float("nan")], [0, 1, 0], [0, 0, 1]])], [F], ValueError, "verts"),
    (torch.tensor([[[0.0, 0, 0], [1, 0, float("inf")], [0, 1, 0], [0, 0, 1]]]), F[None], ValueError, "verts"),
    # index ranges
    ([V], [torch.tensor([[0, 1, 4]])], ValueError, r"faces\[0\]"),
    ([V, V[:3]], [F, torch.tensor([[0, 1, 3]])], ValueError, r"faces\[1\].*\[0, 3\)"),
    ([V], [torch.tensor([[0, -1, 2]])], ValueError, r"faces\[0\]"),
    (V[None], torch.tensor([[[0, 1, 4]]]), ValueError, "faces"),
    (V[None], torch.tensor([[[0, 1, -2]]]), ValueError, "faces"),
    # -1 only as whole trailing padding rows
    (V[None], torch.tensor([[[0, 1, -1]]]), ValueError, "all -1"),
    (V[None], torch.tensor([[[-1, -1, -1], [0, 1, 2]]]), ValueError, "end"),
])
def test_constructor_rejects(verts, faces, exc, match):
    with pytest.raises(exc, match=match):
        Meshes(verts, faces)


def test_constructor_rejects_device_mismatch():
    meta_faces = F.to("meta")
    with pytest.raises(ValueError, match="faces"):
        Meshes([V], [meta_faces])
    with pytest.raises(ValueError, match="verts"):
        Meshes([V, V.to("meta")], [F, F])
    with pytest.raises(ValueError, match="faces"):
        Meshes(V[None], meta_faces[None])


def test_padded_faces_with_trailing_padding_accepted():
    m = Meshes(V[None].expand(2, 4, 3), torch.tensor([[[0, 1, 2], [-1, -1, -1]], [[0, 1, 2], [1, 2, 3]]]))
    assert m.num_faces_per_mesh().tolist() == [1, 2]
    assert not m.equisized


def test_method_inputs_rejected():
    m = Meshes([V, V[:3]], [F, F[:1]])
    with pytest.raises(TypeError, match="offsets"):
        m.offset_verts([1.0, 2.0, 3.0])
    with pytest.raises(TypeError, match="offsets"):
        m.offset_verts(torch.ones(3, dtype=torch.int64))
    with pytest.raises(ValueError, match="offsets"):
        m.offset_verts(torch.ones(6, 3))
    with pytest.raises(ValueError, match="offsets"):
        m.offset_verts(torch.tensor([0.0, float("nan"), 0.0]))
    with pytest.raises(ValueError, match="offsets"):
        m.offset_verts(torch.ones(3, device="meta"))
    with pytest.raises(ValueError, match="offsets"):
        m.offset_verts_(torch.ones(2, 3))
    with pytest.raises(ValueError, match="scale"):
        m.scale_verts(torch.ones(3))
    with pytest.raises(ValueError, match="scale"):
        m.scale_verts(float("inf"))
    with pytest.raises(TypeError, match="scale"):
        m.scale_verts("2")
    with pytest.raises(ValueError, match="new_verts_padded"):
        m.update_padded(torch.rand(2, 3, 3))
    with pytest.raises(TypeError, match="new_verts_padded"):
        m.update_padded(torch.rand(2, 4, 3).long())
    with pytest.raises(ValueError, match="new_verts_padded"):
        m.update_padded(torch.full((2, 4, 3), float("nan")))
    with pytest.raises(IndexError):
        m.get_mesh_verts_faces(2)
    with pytest.raises(TypeError, match="dtype"):
        m.to(dtype=torch.int64)
