"""Segmentation data sets: a common base, and loaders for the standard layouts on disk and for `datasets`.

Every item is `{"pixel_values": float (3, H, W), "labels": long (H, W)}` with train ids and 255 = ignore. Images are
decoded by `images.read_image` / `decode_image` (16-bit scaled, alpha dropped), label maps read as stored.
An image that cannot be decoded raises `OSError` naming the file (no silent skipping: a corrupt file in a benchmark
split changes the benchmark).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from .images import decode_image, open_image, read_image
from .metadata import ADE20K, CAMVID, CITYSCAPES, CITYSCAPES_TRAIN_IDS, IGNORE_INDEX, PASCAL_CONTEXT, DatasetInfo
from .transforms import image_to_tensor

__all__ = [
    "SegmentationDataset", "FilePairDataset", "HFSegmentationDataset", "mask_values", "label_lut",
    "cityscapes", "ade20k", "pascal_context", "camvid", "CITYSCAPES_TRAIN_IDS",
]

Transform = Callable[..., Tuple[torch.Tensor, torch.Tensor]]


def mask_values(mask: Union[Image.Image, np.ndarray], source: object) -> np.ndarray:
    """The raw label values of a label map as uint8 (H, W): pixel values of a grey (L, I;16) map, the indices of a
    palette (P) map (its colours are ignored), one channel of an RGB map whose channels are equal."""
    values = np.asarray(mask)
    if values.ndim == 3:
        if not (values[..., :3] == values[..., :1]).all():
            raise ValueError(f"{source}: the label map is colour-coded (mode {getattr(mask, 'mode', values.shape)}); "
                             f"convert it to a single-channel PNG of label ids")
        values = values[..., 0]
    if values.size and (values.min() < 0 or values.max() > 255):
        raise ValueError(f"{source}: label values {values.min()}..{values.max()} do not fit in 0..255; "
                         f"map them to train ids first")
    return values.astype(np.uint8, copy=False)


def _same_size(image: Image.Image, mask: np.ndarray, source: object) -> np.ndarray:
    """`mask`, or a `ValueError` naming `source` when its size is not the image's."""
    if mask.shape[:2] != (image.height, image.width):
        raise ValueError(f"{source}: the label map is {mask.shape[1]}x{mask.shape[0]} but its image is "
                         f"{image.width}x{image.height}")
    return mask


def label_lut(mapping: Mapping[int, int], default: int = IGNORE_INDEX) -> np.ndarray:
    """A 256-entry lookup table raw label -> train id (`default` for every unmapped value)."""
    lut = np.full(256, default, dtype=np.uint8)
    for raw, train_id in mapping.items():
        raw, train_id = int(raw), int(train_id)
        if not (0 <= raw <= 255 and 0 <= train_id <= 255):
            raise ValueError(f"label map entry {raw} -> {train_id}: raw labels and train ids must be in 0..255")
        lut[raw] = train_id
    return lut


def _shift_lut(num_classes: int) -> np.ndarray:
    """Labels 1..num_classes -> 0..num_classes-1; 0 (unlabelled / background) and anything above -> 255."""
    return label_lut({k: k - 1 for k in range(1, num_classes + 1)})


class SegmentationDataset(Dataset):
    """Base class: subclasses implement `load(index) -> (RGB PIL image, uint8 train-id mask)` and `__len__`.

    The transform of item i draws its randomness from a generator seeded by (`seed`, epoch, i): call `set_epoch`
    at the start of every epoch (the training loop does).
    """

    def __init__(self, info: DatasetInfo, transform: Optional[Transform] = None):
        self.info = info
        self.transform = transform
        self.seed = 0
        self.epoch = 0

    def set_epoch(self, epoch: int, seed: Optional[int] = None) -> None:
        self.epoch = epoch
        if seed is not None:
            self.seed = seed

    def load(self, index: int) -> Tuple[Image.Image, np.ndarray]:
        raise NotImplementedError(f"{type(self).__name__} must implement load(index) -> (image, mask)")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must implement __len__")

    def __getitem__(self, index: int) -> Dict[str, torch.Tensor]:
        image, mask = self.load(index)
        if self.transform is not None:
            state = np.random.SeedSequence([self.seed, self.epoch, index]).generate_state(1, np.uint64)[0]
            pixels, labels = self.transform(image, mask, torch.Generator().manual_seed(int(state)))
        else:
            pixels, labels = image_to_tensor(image), torch.tensor(np.asarray(mask), dtype=torch.long)
        return {"pixel_values": pixels, "labels": labels}


class FilePairDataset(SegmentationDataset):
    """Image files and label-map files, raw label values mapped to train ids through `lut`."""

    def __init__(self, info: DatasetInfo, pairs: Sequence[Tuple[Path, Path]], lut: np.ndarray,
                 transform: Optional[Transform] = None):
        super().__init__(info, transform)
        self.pairs = list(pairs)
        self.lut = lut

    def __len__(self) -> int:
        return len(self.pairs)

    def load(self, index: int) -> Tuple[Image.Image, np.ndarray]:
        image_path, mask_path = self.pairs[index]
        image = read_image(image_path)
        return image, self.lut[_same_size(image, mask_values(open_image(mask_path), mask_path), mask_path)]


def _require_dir(path: Path, layout: str) -> Path:
    if not path.is_dir():
        raise FileNotFoundError(f"{path} does not exist; expected the layout {layout}")
    return path


def _pairs(images: List[Path], mask_for: Callable[[Path], Path], where: Path) -> List[Tuple[Path, Path]]:
    if not images:
        raise FileNotFoundError(f"no images found under {where}")
    pairs = [(image, mask_for(image)) for image in images]
    missing = [str(mask) for _, mask in pairs if not mask.is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} label maps are missing, e.g. {missing[0]}")
    return pairs


def cityscapes(root: Path, split: str, transform: Optional[Transform] = None) -> FilePairDataset:
    """Cityscapes: leftImg8bit/{split}/{city}/*_leftImg8bit.png + gtFine/{split}/{city}/*_gtFine_labelIds.png."""
    root = Path(root)
    layout = "leftImg8bit/{split}/{city}/*_leftImg8bit.png and gtFine/{split}/{city}/*_gtFine_labelIds.png"
    images_dir = _require_dir(root / "leftImg8bit" / split, layout)
    pairs = _pairs(sorted(images_dir.glob("*/*_leftImg8bit.png")),
                   lambda p: root / "gtFine" / split / p.parent.name
                   / p.name.replace("_leftImg8bit.png", "_gtFine_labelIds.png"), images_dir)
    return FilePairDataset(CITYSCAPES, pairs, label_lut(CITYSCAPES_TRAIN_IDS), transform)


def ade20k(root: Path, split: str, transform: Optional[Transform] = None) -> FilePairDataset:
    """ADE20K (SceneParsing): ADEChallengeData2016/images/{training,validation}/*.jpg + annotations/.../*.png."""
    root = Path(root)
    folder = {"train": "training", "val": "validation"}.get(split, split)
    base = root / "ADEChallengeData2016" if (root / "ADEChallengeData2016").is_dir() else root
    layout = "ADEChallengeData2016/images/{training,validation}/*.jpg and annotations/{...}/*.png"
    images_dir = _require_dir(base / "images" / folder, layout)
    pairs = _pairs(sorted(images_dir.glob("*.jpg")),
                   lambda p: base / "annotations" / folder / (p.stem + ".png"), images_dir)
    return FilePairDataset(ADE20K, pairs, _shift_lut(ADE20K.num_classes), transform)


def pascal_context(root: Path, split: str, transform: Optional[Transform] = None) -> FilePairDataset:
    """Pascal Context, 59 classes: VOC2010/JPEGImages + SegmentationClassContext + ImageSets/SegmentationContext."""
    root = Path(root)
    base = root / "VOCdevkit" / "VOC2010" if (root / "VOCdevkit").is_dir() else root
    layout = "VOCdevkit/VOC2010/{JPEGImages,SegmentationClassContext,ImageSets/SegmentationContext/{split}.txt}"
    split_file = base / "ImageSets" / "SegmentationContext" / f"{split}.txt"
    if not split_file.is_file():
        raise FileNotFoundError(f"{split_file} does not exist; expected the layout {layout}")
    names = [line.strip() for line in split_file.read_text().splitlines() if line.strip()]
    images = [base / "JPEGImages" / f"{name}.jpg" for name in names]
    absent = [str(p) for p in images if not p.is_file()]
    if absent:
        raise FileNotFoundError(f"{len(absent)} images listed in {split_file} are missing, e.g. {absent[0]}")
    pairs = _pairs(images, lambda p: base / "SegmentationClassContext" / (p.stem + ".png"), split_file)
    return FilePairDataset(PASCAL_CONTEXT, pairs, _shift_lut(PASCAL_CONTEXT.num_classes), transform)


def camvid(root: Path, split: str, transform: Optional[Transform] = None) -> FilePairDataset:
    """CamVid, 11 classes (SegNet layout): {split}/*.png + {split}annot/*.png, label 11 = void."""
    root = Path(root)
    images_dir = _require_dir(root / split, "{train,val,test}/*.png and {train,val,test}annot/*.png")
    pairs = _pairs(sorted(images_dir.glob("*.png")), lambda p: root / f"{split}annot" / p.name, images_dir)
    return FilePairDataset(CAMVID, pairs, label_lut({k: k for k in range(CAMVID.num_classes)}), transform)


class HFSegmentationDataset(SegmentationDataset):
    """A Hugging Face `datasets.Dataset` with an image column and a label-map column (`label_map` raw -> train id;
    without it the stored values are the train ids)."""

    def __init__(self, dataset, info: DatasetInfo, image_column: str = "image", label_column: str = "annotation",
                 label_map: Optional[Mapping[int, int]] = None, transform: Optional[Transform] = None):
        super().__init__(info, transform)
        missing = [c for c in (image_column, label_column) if c not in dataset.column_names]
        if missing:
            raise ValueError(f"columns {missing} not in the data set (columns: {dataset.column_names}); "
                             f"set data.image_column / data.label_column")
        self.dataset = dataset
        self.image_column, self.label_column = image_column, label_column
        self.lut = label_lut(label_map) if label_map is not None else None

    def __len__(self) -> int:
        return len(self.dataset)

    def load(self, index: int) -> Tuple[Image.Image, np.ndarray]:
        source = f"row {index} of data set {self.info.name!r}"
        try:
            row = self.dataset[index]
            image = decode_image(row[self.image_column], source)
        except (OSError, ValueError) as e:  # datasets decodes images lazily, when the row is read
            raise OSError(f"cannot read {source}: {e}") from e
        mask = _same_size(image, mask_values(row[self.label_column], f"{source}, column {self.label_column!r}"),
                          f"{source}, column {self.label_column!r}")
        return image, (self.lut[mask] if self.lut is not None else mask)
