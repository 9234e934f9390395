"""Reading user images safely: a clear ``ValueError`` for anything Pillow cannot or should not decode.

Pillow decodes lazily: ``Image.open`` reads only the header, so the pixel count is checked before a single
pixel is decoded. A header that claims 900 megapixels (a "decompression bomb", a few hundred bytes on disk)
is refused with a sentence instead of Pillow's ``DecompressionBombError`` or a multi-GB allocation.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Optional

import numpy as np

from .mesh_data import PathLike

__all__ = ["MAX_IMAGE_PIXELS", "read_image"]

#: Largest image (width x height) diffras decodes: 16384 x 16384, the largest image side the rasterizer
#: accepts. Such an image takes 4 GiB as float32 RGBA.
MAX_IMAGE_PIXELS = 16384 * 16384


def read_image(path: PathLike, name: str, mode: str = "RGBA", max_pixels: Optional[int] = MAX_IMAGE_PIXELS) -> np.ndarray:
    """Decode one image file as a float32 array in [0, 1]: (H, W, C) for ``mode`` "RGBA"/"RGB", (H, W) for "L";
    ``mode="auto"``: RGBA for images with alpha or a palette, else greyscale "L".

    Args:
        path: the image file.
        name: what to call it in error messages (an option such as ``"--image"``).
        mode: Pillow mode to convert to.
        max_pixels: refuse images with more pixels than this (None: no limit beyond Pillow's own).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not an image Pillow can read, truncated, or more than ``max_pixels`` pixels; the message
            starts with ``name`` and gives the path.
    """
    from PIL import Image

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{name}: {str(p)!r} does not exist")
    try:
        with warnings.catch_warnings():
            # Pillow warns between its two bomb limits; the check below decides instead.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(p) as im:
                w, h = im.size
                if max_pixels is None or w * h <= max_pixels:
                    if mode == "auto":
                        mode = "RGBA" if im.mode in ("RGBA", "LA", "P", "PA") else "L"
                    return np.asarray(im.convert(mode), dtype=np.float32) / 255.0
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        # UnidentifiedImageError and truncated files are OSErrors; a bad header can be any of these.
        raise ValueError(f"{name}: cannot read {str(p)!r} as an image ({type(e).__name__}: {e})") from e
    raise ValueError(f"{name}: {str(p)!r} is {w}x{h} ({w * h / 1e6:.0f} megapixels); expected at most "
                     f"{max_pixels / 1e6:.0f} megapixels")
