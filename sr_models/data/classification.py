"""Classification data sets (ImageNet or any ImageFolder layout, or `datasets`): items {"pixel_values", "labels"}."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional

from timm.data import create_transform, resolve_data_config
from torch import nn
from torch.utils.data import Dataset
from torchvision.datasets import ImageFolder

from .images import decode_image, read_image
from .transforms import image_to_tensor

__all__ = ["ImageFolderClassification", "HFClassificationDataset", "classification_transform"]


def classification_transform(cfg: Mapping[str, Any], train: bool, model: Optional[nn.Module] = None) -> Callable:
    """timm's ImageNet transform (`create_transform`) from `data.transform` (input_size, crop_pct, mean, ...) and,
    for what it leaves out, the model's pretrained cfg (without a model: 224 x 224 and timm's defaults)."""
    args = dict(cfg.get("transform", {}))
    if model is None:
        args.setdefault("input_size", (3, 224, 224))  # the paper's 224 x 224 crop (Section IV-E)
    return create_transform(**resolve_data_config(args, model=model), is_training=train)


class ImageFolderClassification(Dataset):
    """`root/{split}/{class}/*.jpg|png` (ImageNet's layout): class index = position of the folder name, sorted.

    Without a transform, `pixel_values` is the image as float (3, H, W) in [0, 1].
    """

    def __init__(self, root: Path, split: str, transform: Optional[Callable] = None):
        folder = Path(root) / split
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder} does not exist; expected the layout {{root}}/{split}/<class>/<image>")
        self.folder = ImageFolder(str(folder), loader=read_image)
        self.transform = transform or image_to_tensor

    @property
    def label_names(self) -> List[str]:
        return list(self.folder.classes)

    def __len__(self) -> int:
        return len(self.folder)

    def __getitem__(self, index: int) -> Dict[str, Any]:
        image, label = self.folder[index]
        return {"pixel_values": self.transform(image), "labels": label}


class HFClassificationDataset(Dataset):
    """A `datasets.Dataset` with an image column and an integer label column (names from a `ClassLabel` feature)."""

    def __init__(self, dataset, image_column: str = "image", label_column: str = "label",
                 transform: Optional[Callable] = None):
        missing = [c for c in (image_column, label_column) if c not in dataset.column_names]
        if missing:
            raise ValueError(f"columns {missing} not in the data set (columns: {dataset.column_names}); "
                             f"set data.image_column / data.label_column")
        self.dataset, self.image_column, self.label_column = dataset, image_column, label_column
        self.transform = transform or image_to_tensor

    @property
    def label_names(self) -> List[str]:
        names = getattr(self.dataset.features[self.label_column], "names", None)
        return list(names) if names else [str(i) for i in range(max(self.dataset[self.label_column]) + 1)]

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Dict[str, Any]:
        try:
            row = self.dataset[index]
            image = decode_image(row[self.image_column], f"row {index}")
        except (OSError, ValueError) as e:  # datasets decodes images lazily, when the row is read
            raise OSError(f"cannot read row {index} of the classification data set: {e}") from e
        return {"pixel_values": self.transform(image), "labels": int(row[self.label_column])}
