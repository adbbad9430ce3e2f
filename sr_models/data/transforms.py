"""Training and evaluation transforms of the segmentation recipes: random scale, category-ratio crop, flip,
photometric distortion (mmsegmentation's pipeline), on a joint `tv_tensors.Image` / `tv_tensors.Mask` pair."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from PIL import Image
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from torchvision import tv_tensors

from .images import decode_image
from .metadata import IGNORE_INDEX

__all__ = ["SegmentationTransform", "PhotometricDistortion", "image_to_tensor"]


def image_to_tensor(image: Image.Image) -> torch.Tensor:
    """A PIL image decoded to RGB (`images.decode_image`) as float (3, H, W) in [0, 1], not normalised."""
    return TF.to_dtype(TF.pil_to_tensor(decode_image(image)), torch.float32, scale=True)


def _coin(generator: Optional[torch.Generator]) -> bool:
    return torch.rand((), generator=generator).item() < 0.5


def _uniform(low: float, high: float, generator: Optional[torch.Generator]) -> float:
    return low + (high - low) * torch.rand((), generator=generator).item()


@dataclass(frozen=True)
class PhotometricDistortion:
    """mmsegmentation's `PhotoMetricDistortion` on a float image in [0, 1], each step applied with probability 1/2:
    brightness (add a value from +-`brightness_delta` / 255), contrast (multiply by a factor from `contrast_range`),
    saturation (factor from `saturation_range`), hue (shift by +-`hue_delta` in OpenCV's 0-180 hue units); the
    contrast step comes first or last (a coin flip). mmseg's "contrast" is a plain product, which is torchvision's
    `adjust_brightness`; saturation blends with the grey image (torchvision) instead of scaling HSV's S channel."""
    brightness_delta: float = 32
    contrast_range: Tuple[float, float] = (0.5, 1.5)
    saturation_range: Tuple[float, float] = (0.5, 1.5)
    hue_delta: float = 18

    def __call__(self, image: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        if _coin(generator):
            image = (image + _uniform(-self.brightness_delta, self.brightness_delta, generator) / 255).clamp(0, 1)
        contrast_first = _coin(generator)
        if contrast_first:
            image = self._contrast(image, generator)
        if _coin(generator):
            image = TF.adjust_saturation(image, _uniform(*self.saturation_range, generator))
        if _coin(generator):
            image = TF.adjust_hue(image, _uniform(-self.hue_delta, self.hue_delta, generator) / 180)
        if not contrast_first:
            image = self._contrast(image, generator)
        return image

    def _contrast(self, image: torch.Tensor, generator: Optional[torch.Generator]) -> torch.Tensor:
        return TF.adjust_brightness(image, _uniform(*self.contrast_range, generator)) if _coin(generator) else image


class SegmentationTransform:
    """(PIL image, uint8 train-id mask) -> (normalised float image (3, H, W), long labels (H, W)).

    Training, in mmsegmentation's order: scale by a factor drawn from `scale_range`; crop `crop_size` (clipped to
    the image) at a random place, redrawn up to 10 times while one class covers at least `cat_max_ratio` of the
    crop's labelled pixels (1.0: no redraw); horizontal flip with probability 1/2; the optional `photometric`
    distortion; normalise; pad to `crop_size` at the bottom and right (image 0, mask `ignore_index`).
    Evaluation: normalise only, the whole image. Randomness comes from `generator` (the data sets pass one seeded
    by (seed, epoch, index), so an augmentation never depends on how many samples were drawn before it: resumed
    runs replay it exactly).
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
            cat_max_ratio: float = 1.0,
            photometric: Optional[PhotometricDistortion] = None,
    ):
        if len(crop_size) != 2 or min(crop_size) < 1:
            raise ValueError(f"crop_size={list(crop_size)} must be two positive integers [height, width]")
        if len(scale_range) != 2 or not 0 < scale_range[0] <= scale_range[1]:
            raise ValueError(f"scale_range={list(scale_range)} must be two positive numbers, low <= high")
        if not 0 < cat_max_ratio <= 1:
            raise ValueError(f"cat_max_ratio={cat_max_ratio} must be in (0, 1] (1 turns the redraw off)")
        self.train = train
        self.crop_size = (int(crop_size[0]), int(crop_size[1]))
        self.scale_range = (float(scale_range[0]), float(scale_range[1]))
        self.flip = flip
        self.mean, self.std = list(mean), list(std)
        self.ignore_index = ignore_index
        self.cat_max_ratio = float(cat_max_ratio)
        self.photometric = photometric

    def __call__(self, image: Image.Image, mask: np.ndarray,
                 generator: Optional[torch.Generator] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        pixels = tv_tensors.Image(TF.pil_to_tensor(decode_image(image)))
        labels = tv_tensors.Mask(torch.tensor(np.asarray(mask, dtype=np.uint8))[None])
        if labels.ndim != 3 or pixels.shape[-2:] != labels.shape[-2:]:
            raise ValueError(f"the mask {tuple(np.shape(mask))} must be (H, W) with the image's size "
                             f"{tuple(pixels.shape[-2:])}")
        if self.train:
            scale = _uniform(*self.scale_range, generator)
            size = [max(round(pixels.shape[-2] * scale), 1), max(round(pixels.shape[-1] * scale), 1)]
            pixels = TF.resize(pixels, size, interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
            labels = TF.resize(labels, size)  # a Mask: nearest neighbour
            pixels, labels = self._crop(pixels, labels, generator)
            if self.flip and _coin(generator):
                pixels, labels = TF.horizontal_flip(pixels), TF.horizontal_flip(labels)
        pixels = TF.to_dtype(pixels, torch.float32, scale=True)
        if self.train and self.photometric is not None:
            pixels = self.photometric(pixels, generator)
        pixels = TF.normalize(pixels, self.mean, self.std)
        if self.train:
            pad_h, pad_w = self.crop_size[0] - pixels.shape[-2], self.crop_size[1] - pixels.shape[-1]
            if pad_h or pad_w:  # bottom and right, so the image keeps its top-left origin
                pixels = TF.pad(pixels, [0, 0, pad_w, pad_h], fill=0.0)
                labels = TF.pad(labels, [0, 0, pad_w, pad_h], fill=self.ignore_index)
        return pixels.as_subclass(torch.Tensor), labels[0].as_subclass(torch.Tensor).long()

    def _crop(self, pixels: tv_tensors.Image, labels: tv_tensors.Mask,
              generator: Optional[torch.Generator]) -> Tuple[tv_tensors.Image, tv_tensors.Mask]:
        """mmseg's `RandomCrop(cat_max_ratio)`: up to 10 draws, keeping the first whose largest class covers
        less than `cat_max_ratio` of the labelled pixels (and that holds more than one class), else the last."""
        crop_h, crop_w = min(self.crop_size[0], pixels.shape[-2]), min(self.crop_size[1], pixels.shape[-1])
        for _ in range(10 if self.cat_max_ratio < 1 else 1):
            top = int(torch.randint(pixels.shape[-2] - crop_h + 1, (), generator=generator))
            left = int(torch.randint(pixels.shape[-1] - crop_w + 1, (), generator=generator))
            window = TF.crop(labels, top, left, crop_h, crop_w)
            counts = torch.bincount(window[window != self.ignore_index].flatten().long())
            counts = counts[counts > 0]
            if len(counts) > 1 and counts.max() < self.cat_max_ratio * counts.sum():
                break
        return TF.crop(pixels, top, left, crop_h, crop_w), window
