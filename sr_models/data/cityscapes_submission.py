"""Cityscapes submissions: train-id predictions written as the official labelId PNGs.

The evaluation server and the official evaluator (`cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling`)
read one single-channel PNG per image whose pixels are Cityscapes labelIds (not the 19 train ids), found by a name
that starts with `<city>_<sequence>_<frame>`. `write_label_ids` writes such a file; `submission_name` names it
after the `*_leftImg8bit.png` image it predicts.
"""
from __future__ import annotations

from pathlib import Path
from typing import Union

import numpy as np
import torch
from PIL import Image

from .metadata import CITYSCAPES_LABEL_IDS

__all__ = ["to_label_ids", "write_label_ids", "submission_name"]

_LUT = np.asarray(CITYSCAPES_LABEL_IDS, dtype=np.uint8)


def to_label_ids(train_ids: Union[np.ndarray, torch.Tensor]) -> np.ndarray:
    """(H, W) train ids 0..18 -> uint8 labelIds (e.g. 0 road -> 7, 18 bicycle -> 33)."""
    train_ids = train_ids.cpu().numpy() if isinstance(train_ids, torch.Tensor) else np.asarray(train_ids)
    if train_ids.size and (train_ids.min() < 0 or train_ids.max() >= len(_LUT)):
        raise ValueError(f"train ids {train_ids.min()}..{train_ids.max()} are not Cityscapes train ids "
                         f"0..{len(_LUT) - 1}: the model does not predict the 19 Cityscapes classes")
    return _LUT[train_ids.astype(np.int64)]


def write_label_ids(train_ids: Union[np.ndarray, torch.Tensor], path: Union[str, Path]) -> Path:
    """Write a (H, W) train-id prediction to `path` as a labelId PNG; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(to_label_ids(train_ids)).save(path)  # uint8 (H, W): a single-channel (L) PNG
    return path


def submission_name(image_path: Union[str, Path]) -> str:
    """`aachen_000000_000019_leftImg8bit.png` -> `aachen_000000_000019_labelIds.png`; any other name:
    `<stem>_labelIds.png`."""
    stem = Path(image_path).stem
    return f"{stem.removesuffix('_leftImg8bit')}_labelIds.png"
