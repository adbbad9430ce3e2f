"""Build a training or evaluation data set from the `data:` section of a training config."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional

from torch.utils.data import Dataset

from .classification import HFClassificationDataset, ImageFolderClassification, classification_transform
from .embedded import EmbeddedSegmentation
from .metadata import DATASETS, DatasetInfo, get_dataset_info
from .segmentation import (
    FilePairDataset, HFSegmentationDataset, SegmentationDataset, ade20k, camvid, cityscapes, pascal_context,
)
from .transforms import PhotometricDistortion, SegmentationTransform

__all__ = ["build_dataset", "SEGMENTATION_LAYOUTS", "load_hf_dataset"]

SEGMENTATION_LAYOUTS: Dict[str, Callable] = {
    "cityscapes": cityscapes, "ade20k": ade20k, "pascal_context": pascal_context, "camvid": camvid,
}
TASKS = ("segmentation", "classification")


def _split_parts(split: str) -> List[str]:
    """`a+b` joins splits; `trainval` (no layout on disk has it) is `train+val`."""
    return ["train", "val"] if split == "trainval" else split.split("+")


def load_hf_dataset(cfg: Mapping[str, Any], split: str):
    """A `datasets.Dataset` from a `save_to_disk` folder (`data.root`) or a Hub id (`data.hf_path`, `hf_config`)."""
    import datasets

    if cfg.get("root"):
        root = Path(cfg["root"])
        if not root.exists():
            raise FileNotFoundError(f"data.root={root} does not exist (expected a datasets.save_to_disk folder)")
        loaded = datasets.load_from_disk(str(root))
        if not isinstance(loaded, datasets.DatasetDict):
            return loaded
        absent = [part for part in split.split("+") if part not in loaded]
        if absent:
            raise ValueError(f"split {absent[0]!r} not in {root} (splits: {list(loaded)}); join splits with '+'")
        return datasets.concatenate_datasets([loaded[part] for part in split.split("+")])
    if not cfg.get("hf_path"):
        raise ValueError("data.name='hf' needs data.root (a save_to_disk folder) or data.hf_path (a Hub id)")
    return datasets.load_dataset(cfg["hf_path"], cfg.get("hf_config"), split=split)


def _hf_info(cfg: Mapping[str, Any]) -> DatasetInfo:
    if cfg.get("label_set"):
        return get_dataset_info(cfg["label_set"])
    if not cfg.get("label_names"):
        raise ValueError(f"data.name='hf' needs data.label_set (one of {sorted(DATASETS)}) or data.label_names")
    return DatasetInfo(name=cfg.get("hf_path") or Path(cfg.get("root", "hf")).name,
                       label_names=tuple(cfg["label_names"]), crop_size=tuple(cfg.get("crop_size", (512, 512))))


def _on_disk(name: str, cfg: Mapping[str, Any], split: str) -> FilePairDataset:
    if not cfg.get("root"):
        raise ValueError(f"data.root is required for data.name={name!r}")
    parts = [SEGMENTATION_LAYOUTS[name](Path(cfg["root"]), part) for part in _split_parts(split)]
    if len(parts) == 1:
        return parts[0]
    return FilePairDataset(parts[0].info, [pair for part in parts for pair in part.pairs], parts[0].lut)


def _photometric(setting: Any) -> Optional[PhotometricDistortion]:
    """`data.photometric`: false/null (off), true (mmseg's defaults) or a mapping of `PhotometricDistortion` args."""
    if setting is None or setting is False:
        return None
    if setting is True:
        return PhotometricDistortion()
    if not isinstance(setting, Mapping):
        raise ValueError(f"data.photometric={setting!r} must be true, false or a mapping of "
                         f"{sorted(PhotometricDistortion.__dataclass_fields__)}")
    unknown = set(setting) - set(PhotometricDistortion.__dataclass_fields__)
    if unknown:
        raise ValueError(f"data.photometric: unknown keys {sorted(unknown)}; valid: "
                         f"{sorted(PhotometricDistortion.__dataclass_fields__)}")
    return PhotometricDistortion(**{k: tuple(v) if isinstance(v, list) else v for k, v in setting.items()})


def _segmentation_transform(cfg: Mapping[str, Any], info: DatasetInfo, train: bool) -> SegmentationTransform:
    return SegmentationTransform(
        train,
        crop_size=cfg.get("crop_size", info.crop_size),
        scale_range=cfg.get("scale_range", (0.5, 2.0)),
        flip=cfg.get("flip", True),
        mean=cfg.get("mean", info.mean),
        std=cfg.get("std", info.std),
        ignore_index=info.ignore_index,
        cat_max_ratio=cfg.get("cat_max_ratio", 1.0),
        photometric=_photometric(cfg.get("photometric")),
    )


def _classification(cfg: Mapping[str, Any], split: str, train: bool, transform: Optional[Callable]) -> Dataset:
    transform = transform or classification_transform(cfg, train)
    if cfg["name"] == "imagefolder":
        if not cfg.get("root"):
            raise ValueError("data.root is required for data.name='imagefolder'")
        return ImageFolderClassification(Path(cfg["root"]), split, transform)
    return HFClassificationDataset(load_hf_dataset(cfg, split), cfg.get("image_column", "image"),
                                   cfg.get("label_column", "label"), transform)


def build_dataset(cfg: Mapping[str, Any], split: str, train: bool, transform: Optional[Callable] = None) -> Dataset:
    """The data set `cfg["name"]` with its transform: a segmentation layout on disk, `hf` (segmentation, or
    classification with `task: classification`), `embedded`, or `imagefolder` (classification).

    `split` may join splits with '+' (`trainval` = `train+val` on disk). `transform` replaces the one built from
    `cfg` (`SegmentationTransform`; timm's `create_transform` for classification).
    """
    name, task = cfg.get("name"), cfg.get("task", "segmentation")
    if task not in TASKS:
        raise ValueError(f"data.task={task!r} must be one of {list(TASKS)}")
    if name == "imagefolder" or (name == "hf" and task == "classification"):
        dataset = _classification(cfg, split, train, transform)
    else:
        if name == "embedded":
            dataset = EmbeddedSegmentation(split=split, **cfg.get("embedded", {}))
        elif name == "hf":
            dataset = HFSegmentationDataset(load_hf_dataset(cfg, split), _hf_info(cfg),
                                            cfg.get("image_column", "image"), cfg.get("label_column", "annotation"),
                                            cfg.get("label_map"))
        elif name in SEGMENTATION_LAYOUTS:
            dataset = _on_disk(name, cfg, split)
        else:
            raise ValueError(f"unknown data.name={name!r}; choose one of "
                             f"{sorted([*SEGMENTATION_LAYOUTS, 'hf', 'embedded', 'imagefolder'])}")
        dataset.transform = transform or _segmentation_transform(cfg, dataset.info, train)
    if len(dataset) == 0:
        raise ValueError(f"the {split!r} split of data set {name!r} is empty")
    if train and isinstance(dataset.transform, SegmentationTransform):
        _check_crop(dataset, dataset.transform)
    return dataset


def _check_crop(dataset: SegmentationDataset, transform: SegmentationTransform) -> None:
    """Refuse a crop that is larger than the images even at the largest training scale (it would be mostly padding)."""
    width, height = dataset.load(0)[0].size
    largest = transform.scale_range[1]
    crop_h, crop_w = transform.crop_size
    if crop_h > height * largest or crop_w > width * largest:
        raise ValueError(
            f"data.crop_size={[crop_h, crop_w]} is larger than the images ({height}x{width}, x{largest} at the "
            f"largest scale): lower data.crop_size or raise data.scale_range")
