"""The one image decoding of sr-models: training loaders, the image processors and (through them) the pipelines.

Every image becomes 8-bit RGB the same way:
- 16-bit images (PNG "I;16" greyscale, uint16 arrays) keep their high byte, as Pillow decodes 16-bit colour PNGs;
  32-bit integer ("I") images are read as 16-bit values;
- alpha is **dropped** (the stored colour under it is kept), as Pillow's `convert("RGB")`, torchvision's
  `decode_image(mode=RGB)`, timm's loaders and transformers' `load_image` do; it is not composited over a
  background (transformers' `convert_to_rgb` composites over white, which would differ from training);
- float arrays are taken as already decoded; with `do_rescale=True` a float image whose values are all in [0, 1]
  triggers transformers' warning (it would be rescaled twice: pass `do_rescale=False`).
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Union

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

__all__ = ["open_image", "read_image", "decode_image", "decode_array"]

_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_ALPHA_MODES = {"RGBA": "RGB", "RGBa": "RGB", "LA": "L", "La": "L", "PA": "RGB"}
ArrayImage = Union[np.ndarray, torch.Tensor]


def open_image(path: Union[str, Path]) -> Image.Image:
    """Open and decode an image file fully, as stored (label maps keep their values), or raise `OSError` naming it."""
    try:
        with Image.open(path) as image:
            image.load()
            return image.copy()
    except (OSError, UnidentifiedImageError, ValueError) as e:
        raise OSError(f"cannot read image {path}: {e}") from e


def decode_image(image: Image.Image, source: object = "image") -> Image.Image:
    """Any Pillow image -> 8-bit RGB (16-bit scaled, alpha dropped; see the module docstring)."""
    if image.mode in _SIXTEEN_BIT_MODES:
        values = np.asarray(image).astype(np.int64)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise ValueError(f"{source}: {image.mode} image values {values.min()}..{values.max()} are not 16-bit")
        image = Image.fromarray((values >> 8).astype(np.uint8))
    elif image.mode == "F":
        raise ValueError(f"{source}: 32-bit float images (mode F) have no defined range; save them as 8- or 16-bit")
    elif image.mode in _ALPHA_MODES:
        image = image.convert(_ALPHA_MODES[image.mode])
    elif image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA").convert("RGB")  # palette transparency: drop it like an alpha channel
    return image if image.mode == "RGB" else image.convert("RGB")


def read_image(path: Union[str, Path]) -> Image.Image:
    """An image file as 8-bit RGB (`open_image` + `decode_image`); errors name the file."""
    return decode_image(open_image(path), path)


def decode_array(image: ArrayImage, channel_axis: int, do_rescale: bool = True,
                 source: object = "image") -> ArrayImage:
    """An image array or tensor, channels on `channel_axis` (1, 3 or 4 of them, or none for (H, W)): uint16 -> uint8
    by the high byte, alpha dropped, other integer types checked to be 8-bit, floats passed through (with
    transformers' warning when `do_rescale` would rescale values already in [0, 1])."""
    if image.ndim == 3 and image.shape[channel_axis] == 4:
        image = image.narrow(channel_axis, 0, 3) if isinstance(image, torch.Tensor) else image.take(
            range(3), axis=channel_axis)
    if isinstance(image, torch.Tensor):
        if image.is_floating_point():
            _check_float(image, do_rescale)
            return image
        return torch.from_numpy(decode_array(image.cpu().numpy(), channel_axis, do_rescale, source)).to(image.device)
    if image.dtype == np.uint16:
        return (image >> 8).astype(np.uint8)
    if image.dtype == np.bool_ or not (np.issubdtype(image.dtype, np.number)):
        raise TypeError(f"{source}: {image.dtype} arrays are not images; pass uint8, uint16 or float arrays")
    if np.issubdtype(image.dtype, np.floating):
        _check_float(image, do_rescale)
        return image
    if image.dtype != np.uint8:
        if image.size and (image.min() < 0 or image.max() > 255):
            raise ValueError(f"{source}: {image.dtype} image values {image.min()}..{image.max()} do not fit 8 bits; "
                             f"pass uint16 for 16-bit images or floats in [0, 1] with do_rescale=False")
        image = image.astype(np.uint8)
    return image


def _check_float(image: ArrayImage, do_rescale: bool) -> None:
    """transformers' warning for float images already in [0, 1] that `do_rescale` would divide by 255 again."""
    if do_rescale and 0 not in image.shape and image.min() >= 0 and image.max() <= 1:
        warnings.warn("It looks like you are trying to rescale already rescaled images. If the input images "
                      "have pixel values between 0 and 1, set `do_rescale=False` to avoid rescaling them again.",
                      UserWarning, stacklevel=3)
