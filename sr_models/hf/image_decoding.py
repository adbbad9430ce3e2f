"""The training decoding (`sr_models.data.images`) for every sr-models image processor and pipeline.

Processors: `TrainingDecoding.process_image` decodes PIL images and arrays as the loaders do (16-bit scaled, alpha
dropped, float images in [0, 1] warned about). Pipelines: `decode_pipeline_input` does the same for the paths, URLs
and PIL images transformers' `load_image` would otherwise convert with `convert("RGB")` (which clips 16-bit images);
URLs are fetched with a timeout (the call's `timeout=`, else `SR_MODELS_HUB_TIMEOUT`).
EXIF orientation is not applied, as in training (torchvision's and our loaders read the stored pixels).
"""
from __future__ import annotations

import os
from io import BytesIO
from typing import Any, Optional

import httpx2
import numpy as np
import PIL.Image
import torch
from transformers.image_utils import ChannelDimension, infer_channel_dimension_format

from ..data.images import decode_array, decode_image, open_image
from ..hub_client import hub_timeout

__all__ = ["TrainingDecoding", "decode_pipeline_input"]


class TrainingDecoding:
    """Image-processor mixin (before transformers' backend in the bases): one image decoded like the loaders, then
    transformers' conversion. Inputs processed with `do_convert_rgb=False` (label maps) are left as they are."""

    def process_image(self, image, do_convert_rgb=None, input_data_format=None, device=None, **kwargs):
        convert = self.do_convert_rgb if do_convert_rgb is None else do_convert_rgb
        if convert and isinstance(image, PIL.Image.Image):
            image, input_data_format = np.array(decode_image(image)), ChannelDimension.LAST
        elif convert and isinstance(image, (np.ndarray, torch.Tensor)):
            layout = input_data_format or (
                infer_channel_dimension_format(image, num_channels=(1, 3, 4)) if image.ndim == 3 else None)
            axis = -1 if layout == ChannelDimension.LAST else 0
            do_rescale = kwargs.get("do_rescale")
            image = decode_array(image, axis, self.do_rescale if do_rescale is None else do_rescale)
            input_data_format = layout
        return super().process_image(image, do_convert_rgb=do_convert_rgb, input_data_format=input_data_format,
                                     device=device, **kwargs)


def _fetch(url: str, timeout: Optional[float]) -> PIL.Image.Image:
    """The image at `url`; without a `timeout` the Hub's (`SR_MODELS_HUB_TIMEOUT`, 60 s), never none."""
    try:
        response = httpx2.get(url, timeout=hub_timeout() if timeout is None else timeout, follow_redirects=True)
        response.raise_for_status()
        with PIL.Image.open(BytesIO(response.content)) as image:
            image.load()
            return image.copy()
    except (httpx2.HTTPError, OSError) as e:
        raise OSError(f"cannot read image {url}: {e}") from e


def decode_pipeline_input(image: Any, timeout: Optional[float] = None) -> Any:
    """A pipeline input (local path, http(s) URL or PIL image) decoded like the loaders, as a fresh 8-bit RGB image
    without metadata (so `load_image` after it changes nothing); other inputs (base64 strings, arrays) unchanged."""
    source = getattr(image, "filename", "") or "image"
    if isinstance(image, str) and image.startswith(("http://", "https://")):
        image, source = _fetch(image, timeout), image
    elif isinstance(image, os.PathLike) or isinstance(image, str) and (
            os.path.isfile(image) or "." in os.path.basename(image)):  # base64 has no "."
        image, source = open_image(image), image  # a missing file is an error naming it
    if not isinstance(image, PIL.Image.Image):
        return image
    return PIL.Image.fromarray(np.asarray(decode_image(image, source)))
