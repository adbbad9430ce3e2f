"""Classification data sets (ImageNet or any ImageFolder layout, or `datasets`): items {"pixel_values", "labels"}."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch
from torch.utils.data import Dataset
from torchvision.datasets import ImageFolder

from .segmentation import read_image

__all__ = ["ImageFolderClassification", "HFClassificationDataset"]


class ImageFolderClassification(Dataset):
    """`root/{split}/{class}/*.jpg|png` (ImageNet's layout): class index = position of the folder name, sorted."""

    def __init__(self, root: Path, split: str, transform: Optional[Callable] = None):
        folder = Path(root) / split
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder} does not exist; expected the layout {{root}}/{split}/<class>/<image>")
        self.folder = ImageFolder(str(folder), loader=lambda path: read_image(Path(path), "RGB"))
        self.transform = transform

    @property
    def label_names(self) -> List[str]:
        return list(self.folder.classes)

    def __len__(self) -> int:
        return len(self.folder)

    def __getitem__(self, index: int) -> Dict[str, torch.Tensor]:
        image, label = self.folder[index]
        return {"pixel_values": self.transform(image) if self.transform else image, "labels": label}


class HFClassificationDataset(Dataset):
    """A `datasets.Dataset` with an image column and an integer label column."""

    def __init__(self, dataset, image_column: str = "image", label_column: str = "label",
                 transform: Optional[Callable] = None):
        missing = [c for c in (image_column, label_column) if c not in dataset.column_names]
        if missing:
            raise ValueError(f"columns {missing} not in the data set (columns: {dataset.column_names}); "
                             f"set data.image_column / data.label_column")
        self.dataset, self.image_column, self.label_column = dataset, image_column, label_column
        self.transform = transform

    @property
    def label_names(self) -> List[str]:
        feature = self.dataset.features[self.label_column]
        names = getattr(feature, "names", None)
        return list(names) if names else [str(i) for i in range(max(self.dataset[self.label_column]) + 1)]

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Dict[str, torch.Tensor]:
        row = self.dataset[index]
        image = row[self.image_column].convert("RGB")
        return {"pixel_values": self.transform(image) if self.transform else image, "labels": int(row[self.label_column])}
