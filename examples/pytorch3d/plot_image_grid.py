"""The tutorials' local helper ``image_grid`` (PyTorch3D keeps it in docs/tutorials/utils), written for these ports."""
import matplotlib.pyplot as plt


def image_grid(images, rows=None, cols=None, fill: bool = True, show_axes: bool = False, rgb: bool = True):
    """Plot a grid of images (N, H, W, C) with matplotlib; returns the figure."""
    if (rows is None) != (cols is None):
        raise ValueError("Specify either both rows and cols or neither.")
    if rows is None:
        rows, cols = len(images), 1
    gridspec_kw = {"wspace": 0.0, "hspace": 0.0} if fill else {}
    fig, axarr = plt.subplots(rows, cols, gridspec_kw=gridspec_kw, figsize=(15, 9))
    bleed = 0
    fig.subplots_adjust(left=bleed, bottom=bleed, right=(1 - bleed), top=(1 - bleed))
    for ax, im in zip(axarr.ravel(), images):
        ax.imshow(im[..., :3] if rgb else im[..., 3])
        if not show_axes:
            ax.set_axis_off()
    return fig
