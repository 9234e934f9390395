"""PyTorch3D's texture_vis: UV positions on the map, drawn by PIL and matplotlib."""
import numpy as np
import torch

from diffras.shading import TexturesUV
from diffras.vis import texturesuv_image_matplotlib, texturesuv_image_PIL
from diffras.vis.texture_vis import texture_uv_centers


def _tex(align_corners=True):
    maps = torch.zeros(1, 11, 21, 3)
    uvs = torch.tensor([[[0.0, 0.0], [1.0, 1.0], [0.5, 0.5]]])
    return TexturesUV(maps=maps, faces_uvs=torch.tensor([[[0, 1, 2]]]), verts_uvs=uvs, align_corners=align_corners)


def test_centers_follow_the_uv_convention():
    # UV (0, 0) is the bottom-left: with align_corners the centre of the last row's first pixel.
    torch.testing.assert_close(texture_uv_centers(_tex()), torch.tensor([[0.0, 10.0], [20.0, 0.0], [10.0, 5.0]],
                                                                        dtype=torch.float64))
    torch.testing.assert_close(texture_uv_centers(_tex(False))[0], torch.tensor([-0.5, 10.5], dtype=torch.float64))


def test_pil_image_marks_the_uvs():
    img = np.asarray(texturesuv_image_PIL(_tex(), radius=0.5, color="red"))
    assert img.shape == (11, 21, 3)
    assert img[5, 10, 0] == 255 and img[10, 0, 0] == 255 and img[0, 20, 0] == 255
    assert img[2, 3].sum() == 0


def test_matplotlib_draws_a_circle_per_uv():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.figure()
    texturesuv_image_matplotlib(_tex(), subsample=None)
    assert len(plt.gca().patches) == 3
    plt.close("all")
