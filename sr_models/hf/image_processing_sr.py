"""Image processors of the sr-models families, configured from timm's pretrained cfg (one source of preprocessing).

Classifier: resize the short side to `input_size / crop_pct`, centre crop `input_size`, rescale, normalise (timm's
eval transform). Segmenter: rescale and normalise the whole image at its own size (the paper's whole-image
inference); `segmentation_maps=` gives `labels` for training (`do_reduce_labels` for data sets whose 0 means
"unlabelled"), and `post_process_semantic_segmentation` returns label maps at the requested sizes.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from transformers.image_processing_backends import TorchvisionBackend
from transformers.image_processing_utils import BatchFeature
from transformers.image_utils import (
    IMAGENET_DEFAULT_MEAN,
    IMAGENET_DEFAULT_STD,
    ChannelDimension,
    ImageInput,
    PILImageResampling,
    SizeDict,
)
from transformers.processing_utils import ImagesKwargs

from ..constants import IGNORE_INDEX
from .image_decoding import TrainingDecoding

__all__ = ["SRResNetImageProcessor", "SRNetImageProcessor", "image_processor_from_pretrained_cfg"]

_RESAMPLE = {
    "bilinear": PILImageResampling.BILINEAR,
    "bicubic": PILImageResampling.BICUBIC,
    "nearest": PILImageResampling.NEAREST,
}


class _SRImageProcessor(TrainingDecoding, TorchvisionBackend):
    """Shared defaults: RGB, rescale to [0, 1], normalise with ImageNet statistics.

    Images are decoded as in training (`sr_models.data.images`): 16-bit scaled, alpha dropped, float images already
    in [0, 1] warned about when `do_rescale` is on.
    """

    image_mean = IMAGENET_DEFAULT_MEAN
    image_std = IMAGENET_DEFAULT_STD
    do_rescale = True
    do_normalize = True
    do_convert_rgb = True


class SRResNetImageProcessor(_SRImageProcessor):
    """timm's eval transform for the SR-ResNet classifiers: resize short side, centre crop, normalise."""

    resample = PILImageResampling.BICUBIC
    size = {"shortest_edge": 256}
    default_to_square = False
    crop_size = {"height": 224, "width": 224}
    do_resize = True
    do_center_crop = True


class SRNetImageProcessorKwargs(ImagesKwargs, total=False):
    r"""
    do_reduce_labels (`bool`, *optional*, defaults to `self.do_reduce_labels`):
        Shift the labels of `segmentation_maps` down by one and make 0 the ignored label 255 (for data sets such as
        ADE20K whose label 0 means "unlabelled").
    """

    do_reduce_labels: bool


class SRNetImageProcessor(_SRImageProcessor):
    """Whole-image preprocessing for the SRNet segmenters (no resize: the networks take any size)."""

    valid_kwargs = SRNetImageProcessorKwargs
    resample = PILImageResampling.BILINEAR
    size = {"height": 1024, "width": 2048}
    do_resize = False
    do_center_crop = False
    do_reduce_labels = False

    def preprocess(self, images: ImageInput, segmentation_maps: ImageInput | None = None, **kwargs) -> BatchFeature:
        """`pixel_values`; with `segmentation_maps` (one (H, W) label map per image), also `labels` (int64)."""
        return super().preprocess(images, segmentation_maps, **kwargs)

    def _preprocess_image_like_inputs(
            self,
            images: ImageInput,
            segmentation_maps: ImageInput | None = None,
            *,
            do_reduce_labels: bool,
            return_tensors: str | None = None,
            **kwargs,
    ) -> BatchFeature:
        data = dict(super()._preprocess_image_like_inputs(images, return_tensors=None, **kwargs))
        if segmentation_maps is not None:
            maps = self._prepare_image_like_inputs(segmentation_maps, expected_ndims=2, do_convert_rgb=False,
                                                   input_data_format=ChannelDimension.FIRST)
            if len(maps) != len(data["pixel_values"]):
                raise ValueError(f"got {len(maps)} segmentation maps for {len(data['pixel_values'])} images")
            data["labels"] = [self._labels(label, pixels.shape[-2:], i, do_reduce_labels, kwargs["do_resize"],
                                           kwargs["size"]) for i, (label, pixels) in
                              enumerate(zip(maps, data["pixel_values"]))]
        return BatchFeature(data, tensor_type=return_tensors)

    def _labels(self, label: torch.Tensor, image_size: torch.Size, index: int, reduce: bool, resize: bool,
                size: SizeDict) -> torch.Tensor:
        """One label map (1, H, W) as int64 (H, W): resized like its image (nearest), labels reduced if asked."""
        if label.shape[0] != 1:
            raise ValueError(f"segmentation map {index} has {label.shape[0]} channels; expected one label per pixel")
        label = label.to(torch.int64)
        if resize:
            label = F.interpolate(label[None].double(), size=(size.height, size.width), mode="nearest-exact")[0].long()
        if label.shape[-2:] != image_size:
            raise ValueError(f"segmentation map {index} is {tuple(label.shape[-2:])} (H, W) but its image is "
                             f"{tuple(image_size)}")
        if reduce:
            label = torch.where((label == 0) | (label == IGNORE_INDEX), IGNORE_INDEX, label - 1)
        return label[0]

    def post_process_semantic_segmentation(
            self,
            outputs: Any,
            target_sizes: Sequence[tuple[int, int]] | torch.Tensor | None = None,
    ) -> list[torch.Tensor]:
        """Label maps (H, W): the argmax of the logits, bilinearly resized first to `target_sizes[i]` if given."""
        logits = outputs.logits
        if target_sizes is None:
            return list(logits.argmax(dim=1))
        if len(target_sizes) != len(logits):
            raise ValueError(f"got {len(target_sizes)} target sizes for a batch of {len(logits)} predictions")
        return [
            F.interpolate(logit[None], size=tuple(int(s) for s in size), mode="bilinear", align_corners=False)[0]
            .argmax(dim=0)
            for logit, size in zip(logits, target_sizes)
        ]


def image_processor_from_pretrained_cfg(pretrained_cfg: Mapping[str, Any], segmentation: bool) -> TorchvisionBackend:
    """The image processor that applies the eval preprocessing described by timm's `pretrained_cfg`."""
    common = dict(
        image_mean=list(pretrained_cfg.get("mean", IMAGENET_DEFAULT_MEAN)),
        image_std=list(pretrained_cfg.get("std", IMAGENET_DEFAULT_STD)),
        resample=_RESAMPLE.get(pretrained_cfg.get("interpolation", "bilinear"), PILImageResampling.BILINEAR),
    )
    height, width = pretrained_cfg.get("input_size", (3, 224, 224))[1:]
    if segmentation:
        return SRNetImageProcessor(size={"height": height, "width": width}, **common)
    crop_pct = pretrained_cfg.get("crop_pct", 0.875)
    return SRResNetImageProcessor(
        size={"shortest_edge": math.floor(min(height, width) / crop_pct)},
        crop_size={"height": height, "width": width},
        **common,
    )
