"""Classification data sets (ImageNet or any ImageFolder layout, or `datasets`): items {"pixel_values", "labels"}."""
from __future__ import annotations

import inspect
import random
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import numpy as np
import torch
from PIL import Image
from timm.data import create_transform, resolve_data_config
from torch import nn
from torch.utils.data import Dataset
from torchvision.datasets import ImageFolder

from .images import decode_image, read_image
from .transforms import image_to_tensor

__all__ = ["ClassificationDataset", "ImageFolderClassification", "HFClassificationDataset", "classification_transform"]


def classification_transform(cfg: Mapping[str, Any], train: bool, model: Optional[nn.Module] = None) -> Callable:
    """timm's ImageNet transform (`create_transform`) from `data.transform`: its size and normalisation keys
    (input_size, crop_pct, crop_mode, interpolation, mean, std) resolved against the model's pretrained cfg
    (without a model: 224 x 224 and timm's defaults), every other key passed to `create_transform` as is
    (auto_augment, e.g. `rand-m9-mstd0.5-inc1` for RandAugment; re_prob for random erasing; scale, hflip, ...)."""
    args = dict(cfg.get("transform", {}))
    unknown = set(args) - set(inspect.signature(create_transform).parameters) - {"is_training"}
    if unknown:
        raise ValueError(f"data.transform: unknown keys {sorted(unknown)}; valid: the arguments of "
                         f"timm.data.create_transform (input_size, crop_pct, auto_augment, re_prob, ...)")
    if model is None:
        args.setdefault("input_size", (3, 224, 224))  # the paper's 224 x 224 crop (Section IV-E)
    resolved = resolve_data_config(args, model=model)
    augment = {key: tuple(v) if isinstance(v, list) else v for key, v in args.items() if key not in resolved}
    return create_transform(**resolved, **augment, is_training=train)


class ClassificationDataset(Dataset):
    """Base class: subclasses implement `load(index) -> (RGB PIL image, label)`, `__len__` and `label_names`.

    timm's transforms draw from the global `random`, NumPy and torch generators; item i draws them seeded by
    (`seed`, epoch, i) and leaves the global state as it was, so an augmentation never depends on how many samples
    were drawn before it (resumed runs replay it exactly). Call `set_epoch` every epoch (the training loop does).
    """

    def __init__(self, transform: Optional[Callable] = None):
        self.transform = transform or image_to_tensor
        self.seed, self.epoch = 0, 0

    def set_epoch(self, epoch: int, seed: Optional[int] = None) -> None:
        self.epoch = epoch
        if seed is not None:
            self.seed = seed

    def load(self, index: int) -> Tuple[Image.Image, int]:
        raise NotImplementedError(f"{type(self).__name__} must implement load(index) -> (image, label)")

    def __getitem__(self, index: int) -> Dict[str, Any]:
        image, label = self.load(index)
        state = int(np.random.SeedSequence([self.seed, self.epoch, index]).generate_state(1, np.uint64)[0])
        saved = random.getstate(), np.random.get_state()
        with torch.random.fork_rng(devices=[]):
            random.seed(state)
            np.random.seed(state % 2 ** 32)
            torch.manual_seed(state)
            pixels = self.transform(image)
        random.setstate(saved[0])
        np.random.set_state(saved[1])
        return {"pixel_values": pixels, "labels": label}


class ImageFolderClassification(ClassificationDataset):
    """`root/{split}/{class}/*.jpg|png` (ImageNet's layout): class index = position of the folder name, sorted.

    Without a transform, `pixel_values` is the image as float (3, H, W) in [0, 1].
    """

    def __init__(self, root: Path, split: str, transform: Optional[Callable] = None):
        folder = Path(root) / split
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder} does not exist; expected the layout {{root}}/{split}/<class>/<image>")
        super().__init__(transform)
        self.folder = ImageFolder(str(folder), loader=read_image)

    @property
    def label_names(self) -> List[str]:
        return list(self.folder.classes)

    def __len__(self) -> int:
        return len(self.folder)

    def load(self, index: int) -> Tuple[Image.Image, int]:
        return self.folder[index]


class HFClassificationDataset(ClassificationDataset):
    """A `datasets.Dataset` with an image column and an integer label column (names from a `ClassLabel` feature)."""

    def __init__(self, dataset, image_column: str = "image", label_column: str = "label",
                 transform: Optional[Callable] = None):
        missing = [c for c in (image_column, label_column) if c not in dataset.column_names]
        if missing:
            raise ValueError(f"columns {missing} not in the data set (columns: {dataset.column_names}); "
                             f"set data.image_column / data.label_column")
        super().__init__(transform)
        self.dataset, self.image_column, self.label_column = dataset, image_column, label_column

    @property
    def label_names(self) -> List[str]:
        names = getattr(self.dataset.features[self.label_column], "names", None)
        return list(names) if names else [str(i) for i in range(max(self.dataset[self.label_column]) + 1)]

    def __len__(self) -> int:
        return len(self.dataset)

    def load(self, index: int) -> Tuple[Image.Image, int]:
        try:
            row = self.dataset[index]
            image = decode_image(row[self.image_column], f"row {index}")
        except (OSError, ValueError) as e:  # datasets decodes images lazily, when the row is read
            raise OSError(f"cannot read row {index} of the classification data set: {e}") from e
        return image, int(row[self.label_column])
