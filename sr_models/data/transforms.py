"""Training and evaluation transforms of the paper's segmentation recipes (random scale, pad, crop, flip)."""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from PIL import Image
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from .images import decode_image
from .metadata import IGNORE_INDEX

__all__ = ["SegmentationTransform", "image_to_tensor"]


def image_to_tensor(image: Image.Image) -> torch.Tensor:
    """A PIL image decoded to RGB (`images.decode_image`) as float (3, H, W) in [0, 1], not normalised."""
    return TF.to_dtype(TF.pil_to_tensor(decode_image(image)), torch.float32, scale=True)


class SegmentationTransform:
    """(PIL image, uint8 train-id mask) -> (normalised float image (3, H, W), long labels (H, W)).

    Training: scale by a factor drawn from `scale_range`, pad to at least `crop_size` (image with 0 after
    normalisation, mask with `ignore_index`), random crop, random horizontal flip. Evaluation: normalise only,
    the whole image. Randomness comes from `generator` (the data sets pass one seeded by (seed, epoch, index), so
    an augmentation never depends on how many samples were drawn before it: resumed runs replay it exactly).
    """

    def __init__(
            self,
            train: bool,
            crop_size: Sequence[int] = (512, 512),
            scale_range: Sequence[float] = (0.5, 2.0),
            flip: bool = True,
            mean: Sequence[float] = IMAGENET_DEFAULT_MEAN,
            std: Sequence[float] = IMAGENET_DEFAULT_STD,
            ignore_index: int = IGNORE_INDEX,
    ):
        if len(crop_size) != 2 or min(crop_size) < 1:
            raise ValueError(f"crop_size={list(crop_size)} must be two positive integers [height, width]")
        if len(scale_range) != 2 or not 0 < scale_range[0] <= scale_range[1]:
            raise ValueError(f"scale_range={list(scale_range)} must be two positive numbers, low <= high")
        self.train = train
        self.crop_size = (int(crop_size[0]), int(crop_size[1]))
        self.scale_range = (float(scale_range[0]), float(scale_range[1]))
        self.flip = flip
        self.mean, self.std = list(mean), list(std)
        self.ignore_index = ignore_index

    def __call__(self, image: Image.Image, mask: np.ndarray,
                 generator: Optional[torch.Generator] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        pixels = TF.pil_to_tensor(decode_image(image))
        labels = torch.tensor(np.asarray(mask, dtype=np.uint8))[None]
        if labels.ndim != 3 or pixels.shape[-2:] != labels.shape[-2:]:
            raise ValueError(f"the mask {tuple(mask.shape)} must be (H, W) with the image's size "
                             f"{tuple(pixels.shape[-2:])}")
        if self.train:
            low, high = self.scale_range
            scale = low + (high - low) * torch.rand((), generator=generator).item()
            size = [max(round(pixels.shape[-2] * scale), 1), max(round(pixels.shape[-1] * scale), 1)]
            pixels = TF.resize(pixels, size, interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
            labels = TF.resize(labels, size, interpolation=TF.InterpolationMode.NEAREST)
        pixels = TF.normalize(TF.to_dtype(pixels, torch.float32, scale=True), self.mean, self.std)
        if self.train:
            pixels, labels = self._pad_crop_flip(pixels, labels, generator)
        return pixels, labels[0].long()

    def _pad_crop_flip(self, pixels: torch.Tensor, labels: torch.Tensor,
                       generator: Optional[torch.Generator]) -> Tuple[torch.Tensor, torch.Tensor]:
        crop_h, crop_w = self.crop_size
        pad_h, pad_w = max(crop_h - pixels.shape[-2], 0), max(crop_w - pixels.shape[-1], 0)
        if pad_h or pad_w:  # bottom and right, so the image keeps its top-left origin
            pixels = TF.pad(pixels, [0, 0, pad_w, pad_h], fill=0.0)
            labels = TF.pad(labels, [0, 0, pad_w, pad_h], fill=self.ignore_index)
        top = int(torch.randint(pixels.shape[-2] - crop_h + 1, (), generator=generator))
        left = int(torch.randint(pixels.shape[-1] - crop_w + 1, (), generator=generator))
        pixels, labels = TF.crop(pixels, top, left, crop_h, crop_w), TF.crop(labels, top, left, crop_h, crop_w)
        if self.flip and torch.rand((), generator=generator).item() < 0.5:
            pixels, labels = TF.horizontal_flip(pixels), TF.horizontal_flip(labels)
        return pixels, labels
