"""``image_grid``: a borderless matplotlib grid of images, as the PyTorch3D tutorials' helper."""
import matplotlib

matplotlib.use("Agg")  # scripts save figures instead of showing them
import matplotlib.pyplot as plt  # noqa: E402


def image_grid(images, rows=None, cols=None, fill: bool = True, show_axes: bool = False, rgb: bool = True):
    """Plot (N, H, W, C) images in a rows x cols grid (one column if neither is given); ``rgb`` shows
    channels :3, otherwise channel 3 (alpha). Returns the figure."""
    if (rows is None) != (cols is None):
        raise ValueError("rows, cols: expected both or neither, got one")
    if rows is None:
        rows, cols = len(images), 1
    fig, axes = plt.subplots(rows, cols, gridspec_kw={"wspace": 0.0, "hspace": 0.0} if fill else {}, figsize=(15, 9))
    fig.subplots_adjust(left=0, bottom=0, right=1, top=1)
    axes = list(getattr(axes, "ravel", lambda: [axes])())
    for ax, im in zip(axes, images):
        ax.imshow(im[..., :3] if rgb else im[..., 3])
    for ax in axes if not show_axes else []:
        ax.set_axis_off()
    return fig
