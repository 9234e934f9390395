import sys

import numpy as np
import pytest
import torch
from PIL import Image

from diffras.vis import composite, image_grid, save_image, save_images, save_turntable


def test_save_image_rgb_rgba_grey_roundtrip(tmp_path):
    g = torch.Generator().manual_seed(0)
    for C, mode in ((3, "RGB"), (4, "RGBA"), (1, "L")):
        img = torch.rand(5, 7, C, generator=g)
        p = save_image(tmp_path / f"a{C}.png", img)
        back = np.asarray(Image.open(p))
        assert Image.open(p).mode == mode
        want = np.round(img.numpy() * 255).astype(np.uint8)
        np.testing.assert_array_equal(back.reshape(want.shape), want)
    p = save_image(tmp_path / "sub" / "g.png", np.full((3, 4), 0.5))
    assert np.asarray(Image.open(p)).shape == (3, 4)


def test_save_image_orientation_row0_is_top(tmp_path):
    img = torch.zeros(4, 6, 3)
    img[0, 0] = 1.0  # top-left red/white
    p = save_image(tmp_path / "o.png", img)
    arr = np.asarray(Image.open(p))
    assert arr[0, 0].tolist() == [255, 255, 255] and arr[-1, -1].tolist() == [0, 0, 0]


def test_save_image_clamps_out_of_range(tmp_path):
    p = save_image(tmp_path / "c.png", torch.tensor([[[-1.0, 2.0, 0.5]]]))
    assert np.asarray(Image.open(p))[0, 0].tolist() == [0, 255, 128]


def test_save_images_pattern_and_folder(tmp_path):
    imgs = torch.rand(3, 4, 5, 3)
    paths = save_images(tmp_path / "v_{i:02d}.png", imgs)
    assert [p.name for p in paths] == ["v_00.png", "v_01.png", "v_02.png"]
    paths = save_images(tmp_path / "folder", imgs)
    assert [p.name for p in paths] == ["image_000.png", "image_001.png", "image_002.png"]
    assert all(p.exists() for p in paths)


def test_image_grid_layout():
    imgs = torch.arange(5, dtype=torch.float32).view(5, 1, 1, 1).expand(5, 2, 3, 1)
    grid = image_grid(imgs)  # cols = ceil(sqrt 5) = 3, rows = 2
    assert grid.shape == (4, 9, 1)
    for i in range(5):
        r, c = divmod(i, 3)
        assert (grid[r * 2:(r + 1) * 2, c * 3:(c + 1) * 3] == i).all()
    assert (grid[2:, 6:] == 0).all()
    assert image_grid(imgs, rows=1).shape == (2, 15, 1)
    assert image_grid(imgs, cols=2).shape == (6, 6, 1)
    x = torch.rand(2, 2, 2, 3, requires_grad=True)
    image_grid(x, rows=2).sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))


def test_composite():
    rgba = torch.tensor([[[[0.2, 0.4, 0.6, 0.25]]]])
    out = composite(rgba, (1.0, 0.0, 0.5))
    torch.testing.assert_close(out, torch.tensor([[[[0.2 * 0.25 + 0.75, 0.1, 0.15 + 0.375]]]]))
    bg = torch.rand(1, 1, 1, 3)
    torch.testing.assert_close(composite(rgba, bg), rgba[..., :3] * 0.25 + bg * 0.75)
    x = rgba.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: composite(t, (0.3, 0.3, 0.3)), (x.double().detach().requires_grad_(),))


def test_save_turntable_gif(tmp_path):
    frames = torch.rand(4, 8, 10, 4)
    p = save_turntable(tmp_path / "t.gif", frames, fps=10)
    im = Image.open(p)
    assert im.n_frames == 4 and im.size == (10, 8)
    assert im.info["duration"] == 100


def test_save_turntable_mp4_missing_ffmpeg_is_clear(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # simulate the plugin being absent
    with pytest.raises(ImportError, match="imageio-ffmpeg"):
        save_turntable(tmp_path / "t.mp4", torch.rand(2, 4, 4, 3))


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="image: expected shape"):
        save_image(tmp_path / "x.png", torch.rand(4, 4, 2))
    with pytest.raises(ValueError, match="image: expected finite"):
        save_image(tmp_path / "x.png", torch.tensor([[float("nan")]]))
    with pytest.raises(TypeError, match="image: expected a floating-point"):
        save_image(tmp_path / "x.png", torch.zeros(4, 4, 3, dtype=torch.uint8))
    with pytest.raises(TypeError, match="image"):
        save_image(tmp_path / "x.png", [[0.0]])
    with pytest.raises(ValueError, match="images: expected shape \\(N, H, W, C\\)"):
        save_images(tmp_path, torch.rand(2, 4, 4, 3, 1))
    with pytest.raises(ValueError, match="rows, cols"):
        image_grid(torch.rand(5, 2, 2, 3), rows=2, cols=2)
    with pytest.raises(ValueError, match="rows"):
        image_grid(torch.rand(5, 2, 2, 3), rows=0)
    with pytest.raises(ValueError, match="fps"):
        save_turntable(tmp_path / "t.gif", torch.rand(2, 4, 4, 3), fps=0)
    with pytest.raises(ValueError, match="path: expected a .gif or .mp4"):
        save_turntable(tmp_path / "t.avi", torch.rand(2, 4, 4, 3))
    with pytest.raises(ValueError, match="rgba"):
        composite(torch.rand(4, 4, 3))
    with pytest.raises(ValueError, match="background"):
        composite(torch.rand(4, 4, 4), (1.0, 1.0))
