"""Prediction overlays: image | prediction | ground truth, coloured with the data set's palette."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from PIL import Image

from ..constants import IGNORE_INDEX

__all__ = ["colorize", "overlay_panel"]


def colorize(labels: torch.Tensor, palette: Sequence[Sequence[int]], ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """(H, W) label map -> (H, W, 3) uint8 colours; ignored pixels black."""
    table = np.zeros((256, 3), np.uint8)
    table[: len(palette)] = np.asarray(palette, np.uint8)
    table[ignore_index] = 0
    return table[labels.cpu().numpy().astype(np.uint8)]


def overlay_panel(pixel_values: torch.Tensor, prediction: torch.Tensor, labels: torch.Tensor,
                  mean: Sequence[float], std: Sequence[float], palette: Sequence[Sequence[int]]) -> Image.Image:
    """One PNG-ready panel: the (de-normalised) image, the predicted labels, the ground truth, side by side."""
    image = pixel_values.cpu() * torch.tensor(std)[:, None, None] + torch.tensor(mean)[:, None, None]
    image = (image.clamp(0, 1) * 255).byte().permute(1, 2, 0).numpy()
    separator = np.full((image.shape[0], 2, 3), 255, np.uint8)
    panel = np.concatenate([image, separator, colorize(prediction, palette), separator, colorize(labels, palette)], 1)
    return Image.fromarray(panel)
