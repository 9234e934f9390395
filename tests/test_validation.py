import math

import pytest
import torch

from diffras import _validation as v


def test_check_tensor_type_and_dtype():
    with pytest.raises(TypeError, match="verts: expected a torch.Tensor"):
        v.check_tensor([1.0], "verts")
    with pytest.raises(TypeError, match="faces: expected an integer tensor"):
        v.check_tensor(torch.zeros(2, 3), "faces", dtype="int")
    with pytest.raises(TypeError, match="verts: expected a floating-point tensor"):
        v.check_tensor(torch.zeros(2, 3, dtype=torch.long), "verts", dtype="float")


def test_check_tensor_symbolic_shapes_bind_across_calls():
    sizes = {}
    v.check_tensor(torch.zeros(2, 5, 3), "verts", shape=("N", "V", 3), sizes=sizes)
    v.check_tensor(torch.zeros(2, 7, 3), "faces", shape=("N", None, 3), sizes=sizes)
    with pytest.raises(ValueError, match="colors: expected size V=5"):
        v.check_tensor(torch.zeros(2, 4, 3), "colors", shape=("N", "V", 3), sizes=sizes)
    with pytest.raises(ValueError, match=r"verts: expected shape \(\*, 3\)"):
        v.check_tensor(torch.zeros(2, 4), "verts", shape=(None, 3))


def test_check_finite_and_ranges():
    with pytest.raises(ValueError, match="verts: expected finite values, got 2"):
        v.check_tensor(torch.tensor([0.0, math.nan, math.inf]), "verts", finite=True)
    with pytest.raises(ValueError, match=r"faces: expected indices in \[0, 3\)"):
        v.check_index_range(torch.tensor([0, 3]), "faces", 3)
    v.check_index_range(torch.tensor([0, -1]), "faces", 3, allow=(-1,))
    with pytest.raises(ValueError, match=r"got 1 out of range \(min -2, max -2\)"):
        v.check_index_range(torch.tensor([0, -1, -2]), "faces", 3, allow=(-1,))
    with pytest.raises(ValueError, match=r"got 2 out of range \(min -1, max 5\)"):
        v.check_index_range(torch.tensor([2, -1, 0, 5], dtype=torch.int32), "faces", 3)
    ok = torch.tensor([0, 2, 1])
    assert v.check_index_range(ok, "faces", 3) is ok


def test_scalars_and_image_size():
    assert v.check_int(3, "k", min=1) == 3
    with pytest.raises(TypeError, match="k: expected an int"):
        v.check_int(3.0, "k")
    with pytest.raises(TypeError, match="k: expected an int"):
        v.check_int(True, "k")
    with pytest.raises(ValueError, match="k: expected an int >= 1, got 0"):
        v.check_int(0, "k", min=1)
    with pytest.raises(ValueError, match="sigma: expected a number > 0"):
        v.check_float(0.0, "sigma", min=0.0, min_exclusive=True)
    with pytest.raises(ValueError, match="sigma: expected a finite number"):
        v.check_float(float("nan"), "sigma")
    assert v.check_image_size(64) == (64, 64)
    assert v.check_image_size((32, 48)) == (32, 48)
    with pytest.raises(ValueError, match=r"image_size\[1\]: expected an int >= 1"):
        v.check_image_size((32, 0))
    with pytest.raises(ValueError, match="image_size: expected an int <="):
        v.check_image_size(10**6)
    with pytest.raises(ValueError, match="image_size: expected an int or an"):
        v.check_image_size((1, 2, 3))


def test_same_device():
    a = torch.zeros(1)
    assert v.check_same_device(a=a, b=None, c=torch.ones(2)) == a.device
    meta = torch.zeros(1, device="meta")
    with pytest.raises(ValueError, match="b: expected device cpu"):
        v.check_same_device(a=a, b=meta)
