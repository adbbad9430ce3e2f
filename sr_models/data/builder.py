"""Build a training or evaluation data set from the `data:` section of a training config."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, Mapping

from torch.utils.data import Dataset

from .embedded import EmbeddedSegmentation
from .metadata import DatasetInfo, get_dataset_info
from .segmentation import HFSegmentationDataset, ade20k, camvid, cityscapes, pascal_context
from .transforms import SegmentationTransform

__all__ = ["build_dataset", "SEGMENTATION_LAYOUTS", "load_hf_dataset"]

SEGMENTATION_LAYOUTS: Dict[str, Callable] = {
    "cityscapes": cityscapes, "ade20k": ade20k, "pascal_context": pascal_context, "camvid": camvid,
}


def load_hf_dataset(cfg: Mapping[str, Any], split: str):
    """A `datasets.Dataset` from a `save_to_disk` folder (`data.root`) or a Hub id (`data.hf_path`)."""
    import datasets

    if cfg.get("root"):
        root = Path(cfg["root"])
        if not root.exists():
            raise FileNotFoundError(f"data.root={root} does not exist (expected a datasets.save_to_disk folder)")
        loaded = datasets.load_from_disk(str(root))
        if isinstance(loaded, datasets.DatasetDict):
            if split not in loaded:
                raise ValueError(f"split {split!r} not in {root} (splits: {list(loaded)})")
            return loaded[split]
        return loaded
    if not cfg.get("hf_path"):
        raise ValueError("data.name='hf' needs data.root (a save_to_disk folder) or data.hf_path (a Hub id)")
    return datasets.load_dataset(cfg["hf_path"], cfg.get("hf_config"), split=split)


def _segmentation_transform(cfg: Mapping[str, Any], info: DatasetInfo, train: bool) -> SegmentationTransform:
    return SegmentationTransform(
        train,
        crop_size=cfg.get("crop_size", info.crop_size),
        scale_range=cfg.get("scale_range", (0.5, 2.0)),
        flip=cfg.get("flip", True),
        mean=cfg.get("mean", info.mean),
        std=cfg.get("std", info.std),
        ignore_index=info.ignore_index,
    )


def build_dataset(cfg: Mapping[str, Any], split: str, train: bool) -> Dataset:
    """The segmentation data set `cfg["name"]` (a layout on disk, `hf`, or `embedded`) with its transform."""
    name = cfg.get("name")
    if name == "embedded":
        dataset = EmbeddedSegmentation(split=split, **cfg.get("embedded", {}))
    elif name == "hf":
        info = get_dataset_info(cfg["label_set"]) if cfg.get("label_set") else DatasetInfo(
            name=cfg.get("hf_path") or str(cfg.get("root")), label_names=tuple(cfg["label_names"]),
            crop_size=tuple(cfg.get("crop_size", (512, 512))))
        dataset = HFSegmentationDataset(load_hf_dataset(cfg, split), info, cfg.get("image_column", "image"),
                                        cfg.get("label_column", "annotation"), cfg.get("label_map"))
    elif name in SEGMENTATION_LAYOUTS:
        if not cfg.get("root"):
            raise ValueError(f"data.root is required for data.name={name!r}")
        dataset = SEGMENTATION_LAYOUTS[name](Path(cfg["root"]), split)
    else:
        raise ValueError(f"unknown data.name={name!r}; choose one of "
                         f"{sorted([*SEGMENTATION_LAYOUTS, 'hf', 'embedded'])}")
    if len(dataset) == 0:
        raise ValueError(f"the {split!r} split of data set {name!r} is empty")
    dataset.transform = _segmentation_transform(cfg, dataset.info, train)
    if train:
        _check_crop(dataset, dataset.transform)
    return dataset


def _check_crop(dataset, transform: SegmentationTransform) -> None:
    """Refuse a crop that is larger than the images even at the largest training scale."""
    width, height = dataset.load(0)[0].size
    largest = transform.scale_range[1]
    crop_h, crop_w = transform.crop_size
    if crop_h > height * largest or crop_w > width * largest:
        raise ValueError(
            f"data.crop_size={[crop_h, crop_w]} is larger than the images ({height}x{width}, x{largest} at the "
            f"largest scale): lower data.crop_size or raise data.scale_range")
