"""Whole-image, sliding-window and multi-scale + flip inference for the segmenters (Section IV).

Every function takes a model in eval mode whose `forward` returns logits at the input size, and returns class
probabilities (N, num_classes, H, W); `segment` returns the label map. Probabilities are averaged over tiles,
scales and flips.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from .constants import EVAL_SCALES

Size = Union[int, Tuple[int, int]]


def _pair(size: Size) -> Tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def _check(model: nn.Module, images: torch.Tensor) -> None:
    if model.training:
        raise ValueError("inference needs the model in eval mode: call model.eval() first")
    if images.ndim != 4:
        raise ValueError(f"expected a 4-D (N, C, H, W) image batch, got shape {tuple(images.shape)}")


@torch.no_grad()
def predict_whole(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Class probabilities from one forward pass over the whole image."""
    _check(model, images)
    return model(images).softmax(dim=1)


@torch.no_grad()
def predict_sliding(
        model: nn.Module,
        images: torch.Tensor,
        crop_size: Size,
        stride: Optional[Size] = None,
) -> torch.Tensor:
    """Class probabilities averaged over crop-size tiles; tiles overlap by 1/3 unless `stride` is given.

    Peak activation memory is that of one tile. An image smaller than the crop is padded to it (as in training).
    """
    _check(model, images)
    crop_h, crop_w = _pair(crop_size)
    stride_h, stride_w = _pair(stride) if stride is not None else (max(crop_h * 2 // 3, 1), max(crop_w * 2 // 3, 1))
    n, _, h, w = images.shape
    pad_h, pad_w = max(crop_h - h, 0), max(crop_w - w, 0)
    padded = F.pad(images, (0, pad_w, 0, pad_h)) if pad_h or pad_w else images
    ph, pw = padded.shape[-2:]
    rows = (max(ph - crop_h, 0) + stride_h - 1) // stride_h + 1
    cols = (max(pw - crop_w, 0) + stride_w - 1) // stride_w + 1
    probs: Optional[torch.Tensor] = None
    counts = torch.zeros(1, 1, ph, pw, dtype=images.dtype, device=images.device)
    for r in range(rows):
        for c in range(cols):
            y0 = min(r * stride_h, ph - crop_h)
            x0 = min(c * stride_w, pw - crop_w)
            tile = model(padded[:, :, y0:y0 + crop_h, x0:x0 + crop_w]).softmax(dim=1)
            if probs is None:
                probs = images.new_zeros(n, tile.shape[1], ph, pw)
            probs[:, :, y0:y0 + crop_h, x0:x0 + crop_w] += tile
            counts[:, :, y0:y0 + crop_h, x0:x0 + crop_w] += 1
    return (probs / counts)[:, :, :h, :w]


@torch.no_grad()
def predict_multiscale(
        model: nn.Module,
        images: torch.Tensor,
        scales: Sequence[float] = EVAL_SCALES,
        flip: bool = True,
        crop_size: Optional[Size] = None,
) -> torch.Tensor:
    """Class probabilities averaged over rescaled (and horizontally flipped) copies of the image.

    Each copy is predicted whole, or with sliding windows when `crop_size` is given, and resized back.
    """
    _check(model, images)
    if not scales:
        raise ValueError("scales must name at least one scale")
    h, w = images.shape[-2:]
    total: Optional[torch.Tensor] = None
    views = 0
    for scale in scales:
        size = (max(int(round(h * scale)), 1), max(int(round(w * scale)), 1))
        scaled = F.interpolate(images, size=size, mode="bilinear", align_corners=False) if scale != 1 else images
        for flipped in ((False, True) if flip else (False,)):
            view = scaled.flip(-1) if flipped else scaled
            probs = predict_sliding(model, view, crop_size) if crop_size is not None else predict_whole(model, view)
            probs = probs.flip(-1) if flipped else probs
            probs = F.interpolate(probs, size=(h, w), mode="bilinear", align_corners=False) if scale != 1 else probs
            total = probs if total is None else total + probs
            views += 1
    return total / views


def segment(
        model: nn.Module,
        images: torch.Tensor,
        mode: str = "whole",
        crop_size: Optional[Size] = None,
        scales: Sequence[float] = EVAL_SCALES,
        flip: bool = True,
) -> torch.Tensor:
    """Label map (N, H, W) by `mode`: "whole", "slide" (needs `crop_size`) or "multiscale"."""
    if mode == "whole":
        probs = predict_whole(model, images)
    elif mode == "slide":
        if crop_size is None:
            raise ValueError("mode='slide' needs crop_size")
        probs = predict_sliding(model, images, crop_size)
    elif mode == "multiscale":
        probs = predict_multiscale(model, images, scales, flip, crop_size)
    else:
        raise ValueError(f"mode={mode!r} is not one of 'whole', 'slide', 'multiscale'")
    return probs.argmax(dim=1)
