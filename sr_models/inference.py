"""Whole-image, sliding-window and multi-scale + flip inference for the segmenters (Section IV).

Every function takes a model in eval mode whose `forward` returns logits at the input size, and returns class
probabilities (N, num_classes, H, W); `segment` returns the label map. Probabilities are averaged over tiles,
scales and flips. Every argument is checked before any forward pass: a training-mode model, a classifier, integer
or non-4-D images, a channel count the model was not built for, bad `crop_size`/`stride`/`scales` are refused with
one line naming the argument; an empty batch gives an empty result of the right shape.

Speed: each forward pass runs on a channels_last input and, on a CPU that multiplies bf16 in hardware, under bf16
autocast (`bf16=None` decides so; `bf16=False` forces float32). See docs/export.md for the measurements.
"""
from __future__ import annotations

import math
import numbers
from typing import Optional, Sequence, Tuple, Union

import timm
import torch
import torch.nn.functional as F
from torch import nn

from .constants import EVAL_SCALES
from .models.segmentation import is_segmenter

Size = Union[int, Tuple[int, int]]


def bf16_is_native() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX512-BF16 or AMX), so bf16 autocast pays off."""
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def fast_autocast(images: torch.Tensor, bf16: Optional[bool] = None) -> torch.autocast:
    """bf16 autocast when asked, or by default where the CPU has native bf16; float32 otherwise."""
    if bf16 is None:
        bf16 = images.device.type == "cpu" and bf16_is_native()
    return torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=bool(bf16))


def _pair(size: Size, name: str, who: str) -> Tuple[int, int]:
    """(h, w) from an int or a pair of positive ints, or a one-line error naming `name` and `who`."""
    pair = (size, size) if isinstance(size, numbers.Integral) else tuple(size) if isinstance(size, Sequence) else None
    if pair is None or len(pair) != 2 or not all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0 for v in pair):
        raise ValueError(f"{name}={size!r} must be a positive int or a pair (height, width) of them ({who})")
    return int(pair[0]), int(pair[1])


def _name(model: nn.Module) -> str:
    return (getattr(model, "pretrained_cfg", None) or {}).get("architecture") or type(model).__name__


def _check(model: nn.Module, images: torch.Tensor, who: str) -> None:
    """Refuse a training-mode model, a classifier, and images that are not a float (N, C, H, W) batch."""
    if model.training:
        raise ValueError(f"{who} needs the model in eval mode: call model.eval() first")
    architecture = (getattr(model, "pretrained_cfg", None) or {}).get("architecture")
    if architecture and timm.is_model(architecture) and not is_segmenter(architecture):
        raise ValueError(f"{who} needs a segmenter; got {architecture} (an image classifier)")
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{who} expects images as a torch.Tensor (N, C, H, W), got {type(images).__name__}")
    if not images.is_floating_point():
        raise TypeError(f"{who} expects float images normalised like the model's training data (rescaled to [0, 1], "
                        f"then mean/std, as the image processor does), got dtype {images.dtype}")
    if images.ndim != 4:
        hint = ": add a batch dimension with images[None]" if images.ndim == 3 else ""
        raise ValueError(f"{who} expects a 4-D (N, C, H, W) image batch, got shape {tuple(images.shape)}{hint}")
    in_chans = getattr(model, "in_chans", None)
    if in_chans is not None and images.shape[1] != in_chans:
        raise ValueError(f"{who}: {_name(model)} takes {in_chans}-channel images, got {images.shape[1]} channels "
                         f"(shape {tuple(images.shape)})")


def _check_size(model: nn.Module, size: Tuple[int, int], what: str, who: str) -> None:
    """Refuse an input size (a crop, a rescaled image) smaller than the network's total stride."""
    minimum = getattr(model, "min_input_size", 1)
    if min(size) < minimum:
        raise ValueError(f"{what} is {size[0]}x{size[1]}, smaller than {_name(model)}'s minimum input "
                         f"{minimum}x{minimum} ({who})")


def _check_scales(scales: Sequence[float], who: str) -> Tuple[float, ...]:
    if isinstance(scales, (str, bytes)) or not isinstance(scales, Sequence) or not scales:
        raise ValueError(f"scales={scales!r} must be a non-empty sequence of positive numbers ({who})")
    if not all(isinstance(s, numbers.Real) and not isinstance(s, bool) and math.isfinite(s) and s > 0
               for s in scales):
        raise ValueError(f"scales={tuple(scales)!r} must all be positive finite numbers ({who})")
    return tuple(float(s) for s in scales)


def _logits(model: nn.Module, images: torch.Tensor, who: str) -> torch.Tensor:
    """Float32 `model(images)` (channels_last input), refused unless it is (N, classes, H, W) at the input size."""
    logits = model(images.contiguous(memory_format=torch.channels_last))
    if not isinstance(logits, torch.Tensor) or logits.ndim != 4 or logits.shape[-2:] != images.shape[-2:]:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"{who} needs a segmenter returning (N, classes, H, W) logits at the input size; "
                         f"got {_name(model)} with output {shape}")
    return logits.float()


def _empty(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Probabilities of an empty batch: (0, num_classes, H, W) (the model's own answer if it has no num_classes)."""
    if getattr(model, "num_classes", None) is None:
        return model(images).softmax(dim=1)
    return images.new_zeros(0, model.num_classes, *images.shape[-2:])


def _whole(model: nn.Module, images: torch.Tensor, who: str) -> torch.Tensor:
    _check_size(model, tuple(images.shape[-2:]), "the image", who)
    return _logits(model, images, who).softmax(dim=1)


def _sliding(model: nn.Module, images: torch.Tensor, crop: Tuple[int, int], stride: Tuple[int, int],
             who: str) -> torch.Tensor:
    crop_h, crop_w = crop
    stride_h, stride_w = stride
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
            tile = _logits(model, padded[:, :, y0:y0 + crop_h, x0:x0 + crop_w], who).softmax(dim=1)
            if probs is None:
                probs = images.new_zeros(n, tile.shape[1], ph, pw)
            probs[:, :, y0:y0 + crop_h, x0:x0 + crop_w] += tile
            counts[:, :, y0:y0 + crop_h, x0:x0 + crop_w] += 1
    return (probs / counts)[:, :, :h, :w]


def _sliding_args(model: nn.Module, crop_size: Size, stride: Optional[Size],
                  who: str) -> Tuple[Tuple[int, int], Tuple[int, int]]:
    crop = _pair(crop_size, "crop_size", who)
    _check_size(model, crop, f"crop_size={crop}", who)
    if stride is None:
        return crop, (max(crop[0] * 2 // 3, 1), max(crop[1] * 2 // 3, 1))
    steps = _pair(stride, "stride", who)
    if steps[0] > crop[0] or steps[1] > crop[1]:
        raise ValueError(f"stride={steps} must not exceed crop_size={crop}: the tiles would leave gaps ({who})")
    return crop, steps


def _multiscale(model: nn.Module, images: torch.Tensor, scales: Tuple[float, ...], flip: bool,
                sliding: Optional[Tuple[Tuple[int, int], Tuple[int, int]]], who: str) -> torch.Tensor:
    h, w = images.shape[-2:]
    sizes = [(max(int(round(h * scale)), 1), max(int(round(w * scale)), 1)) for scale in scales]
    if sliding is None:  # whole-image views: every rescaled copy must still be large enough for the network
        for scale, size in zip(scales, sizes):
            _check_size(model, size, f"the {h}x{w} image at scale {scale}", who)
    total: Optional[torch.Tensor] = None
    views = 0
    for scale, size in zip(scales, sizes):
        scaled = F.interpolate(images, size=size, mode="bilinear", align_corners=False) if scale != 1 else images
        for flipped in ((False, True) if flip else (False,)):
            view = scaled.flip(-1) if flipped else scaled
            probs = _sliding(model, view, *sliding, who) if sliding is not None else _whole(model, view, who)
            probs = probs.flip(-1) if flipped else probs
            probs = F.interpolate(probs, size=(h, w), mode="bilinear", align_corners=False) if scale != 1 else probs
            total = probs if total is None else total + probs
            views += 1
    return total / views


@torch.no_grad()
def predict_whole(model: nn.Module, images: torch.Tensor, bf16: Optional[bool] = None) -> torch.Tensor:
    """Class probabilities from one forward pass over the whole image."""
    _check(model, images, "predict_whole()")
    with fast_autocast(images, bf16):
        return _whole(model, images, "predict_whole()") if len(images) else _empty(model, images)


@torch.no_grad()
def predict_sliding(
        model: nn.Module,
        images: torch.Tensor,
        crop_size: Size,
        stride: Optional[Size] = None,
        bf16: Optional[bool] = None,
) -> torch.Tensor:
    """Class probabilities averaged over crop-size tiles; tiles overlap by 1/3 unless `stride` is given.

    Peak activation memory is that of one tile. An image smaller than the crop is padded to it (as in training).
    """
    who = "predict_sliding()"
    _check(model, images, who)
    sliding = _sliding_args(model, crop_size, stride, who)
    with fast_autocast(images, bf16):
        return _sliding(model, images, *sliding, who) if len(images) else _empty(model, images)


@torch.no_grad()
def predict_multiscale(
        model: nn.Module,
        images: torch.Tensor,
        scales: Sequence[float] = EVAL_SCALES,
        flip: bool = True,
        crop_size: Optional[Size] = None,
        bf16: Optional[bool] = None,
) -> torch.Tensor:
    """Class probabilities averaged over rescaled (and horizontally flipped) copies of the image.

    Each copy is predicted whole, or with sliding windows when `crop_size` is given, and resized back.
    """
    who = "predict_multiscale()"
    _check(model, images, who)
    scales = _check_scales(scales, who)
    sliding = _sliding_args(model, crop_size, None, who) if crop_size is not None else None
    with fast_autocast(images, bf16):
        return _multiscale(model, images, scales, flip, sliding, who) if len(images) else _empty(model, images)


@torch.no_grad()
def segment(
        model: nn.Module,
        images: torch.Tensor,
        mode: str = "whole",
        crop_size: Optional[Size] = None,
        scales: Sequence[float] = EVAL_SCALES,
        flip: bool = True,
        bf16: Optional[bool] = None,
) -> torch.Tensor:
    """Label map (N, H, W) by `mode`: "whole", "slide" (needs `crop_size`) or "multiscale"."""
    who = "segment()"
    if mode not in ("whole", "slide", "multiscale"):
        raise ValueError(f"mode={mode!r} is not one of 'whole', 'slide', 'multiscale' ({who})")
    _check(model, images, who)
    if mode == "slide" and crop_size is None:
        raise ValueError(f"mode='slide' needs crop_size ({who})")
    sliding = _sliding_args(model, crop_size, None, who) if crop_size is not None else None
    with fast_autocast(images, bf16):
        if not len(images):
            probs = _empty(model, images)
        elif mode == "whole":
            probs = _whole(model, images, who)
        elif mode == "slide":
            probs = _sliding(model, images, *sliding, who)
        else:
            probs = _multiscale(model, images, _check_scales(scales, who), flip, sliding, who)
    return probs.argmax(dim=1)
