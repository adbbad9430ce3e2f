"""Training and evaluation transforms of the paper's segmentation recipes (random scale, pad, crop, flip)."""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from PIL import Image
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from .metadata import IGNORE_INDEX

__all__ = ["SegmentationTransform"]


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
        self.train = train
        self.crop_size = (int(crop_size[0]), int(crop_size[1]))
        self.scale_range = (float(scale_range[0]), float(scale_range[1]))
        if not 0 < self.scale_range[0] <= self.scale_range[1]:
            raise ValueError(f"scale_range={list(scale_range)} must be two positive numbers, low <= high")
        self.flip = flip
        self.mean, self.std = list(mean), list(std)
        self.ignore_index = ignore_index

    def __call__(self, image: Image.Image, mask: np.ndarray,
                 generator: Optional[torch.Generator] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        pixels = TF.pil_to_tensor(image.convert("RGB"))
        labels = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.uint8))[None]
        if pixels.shape[-2:] != labels.shape[-2:]:
            raise ValueError(f"image {tuple(pixels.shape[-2:])} and mask {tuple(labels.shape[-2:])} sizes differ")
        if self.train:
            low, high = self.scale_range
            scale = low + (high - low) * torch.rand((), generator=generator).item()
            size = [max(round(pixels.shape[-2] * scale), 1), max(round(pixels.shape[-1] * scale), 1)]
            pixels = TF.resize(pixels, size, interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
            labels = TF.resize(labels, size, interpolation=TF.InterpolationMode.NEAREST)
        pixels = TF.normalize(TF.to_dtype(pixels, torch.float32, scale=True), self.mean, self.std)
        if self.train:
            pixels, labels = self._crop_and_flip(pixels, labels, generator)
        return pixels, labels[0].long()

    def _crop_and_flip(self, pixels: torch.Tensor, labels: torch.Tensor,
                       generator: Optional[torch.Generator]) -> Tuple[torch.Tensor, torch.Tensor]:
        crop_h, crop_w = self.crop_size
        pad_h, pad_w = max(crop_h - pixels.shape[-2], 0), max(crop_w - pixels.shape[-1], 0)
        if pad_h or pad_w:
            pixels = TF.pad(pixels, [0, 0, pad_w, pad_h], fill=0.0)
            labels = TF.pad(labels, [0, 0, pad_w, pad_h], fill=self.ignore_index)
        top = int(torch.randint(pixels.shape[-2] - crop_h + 1, (), generator=generator).item())
        left = int(torch.randint(pixels.shape[-1] - crop_w + 1, (), generator=generator).item())
        pixels = pixels[:, top:top + crop_h, left:left + crop_w]
        labels = labels[:, top:top + crop_h, left:left + crop_w]
        if self.flip and torch.rand((), generator=generator).item() < 0.5:
            pixels, labels = pixels.flip(-1), labels.flip(-1)
        return pixels, labels
