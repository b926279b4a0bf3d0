"""Turning one Omniglot PNG into the two forms the package uses: 105x105 ink and a 28x28 uint8 image.

Every 28x28 image of the package (the episode cache and the challenge runs) goes through ``to_small_image``, so a
classifier trained on episodes sees challenge images prepared exactly the same way.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps

IMAGE_SIZE = 28
# Antialiased downsampling. (The MAML code asked for LANCZOS on mode-"1" images, which Pillow silently turns into
# NEAREST; converting to greyscale first gives the intended smooth strokes.)
# (Pillow < 9.1 has no Image.Resampling.)
RESIZE_FILTER = getattr(Image, "Resampling", Image).LANCZOS
RESIZE_FILTER_NAME = "lanczos"


def open_png(png_bytes: bytes) -> Image.Image:
    """Decode PNG bytes (Omniglot: 105x105, mode "1", white background) into a PIL image."""
    image = Image.open(io.BytesIO(png_bytes))
    image.load()
    return image


def ink_mask(image: Image.Image) -> np.ndarray:
    """Return a bool array, True where there is ink (Omniglot draws black strokes on white)."""
    return np.asarray(image.convert("L")) < 128


def to_small_image(image: Image.Image, size: int = IMAGE_SIZE) -> np.ndarray:
    """Return a ``(size, size)`` uint8 array with strokes 255 and background 0 (strokes = 1 after scaling)."""
    strokes_bright = ImageOps.invert(image.convert("L"))
    return np.asarray(strokes_bright.resize((size, size), resample=RESIZE_FILTER), dtype=np.uint8)
