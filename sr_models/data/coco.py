"""COCO-format instance data: images + `instances_*.json` through pycocotools, augmented jointly with v2.

Items follow torchvision's detection contract: `(image, target)` with the image float (3, H, W) in [0, 1] and the
target a dict of `boxes` (N, 4) XYXY float, `labels` (N,) int64 (COCO category ids), `masks` (N, H, W) uint8,
`image_id`. Crowd annotations (`iscrowd=1`) are left out of the targets: torchvision's detectors have no "ignore"
boxes, and COCOeval reads them from the annotation file (where they keep matched detections from counting as
false positives). Polygons and RLE (compressed or not) become masks through pycocotools' `annToMask`.
"""
from __future__ import annotations

import contextlib
import io
import json
import zlib
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torchvision.transforms.v2 as v2
import torchvision.transforms.v2.functional as TF
from pycocotools.coco import COCO
from torch.utils.data import Dataset
from torchvision import tv_tensors

from .images import read_image

__all__ = ["DetectionDataset", "CocoInstances", "load_coco", "detection_transform", "collate_detection", "coco_instances"]

Target = Dict[str, Any]


def _check_annotation(path: Path, index: int, ann: Any, images: set, categories: set) -> None:
    where = f"{path}: annotations[{index}]" + (f" (id {ann.get('id')})" if isinstance(ann, dict) else "")
    if not isinstance(ann, dict):
        raise ValueError(f"{where} is a {type(ann).__name__}, not an annotation record")
    for key in ("image_id", "category_id", "bbox"):
        if key not in ann:
            raise ValueError(f"{where} has no {key!r}")
    if ann["image_id"] not in images:
        raise ValueError(f"{where}: image_id {ann['image_id']} is not in 'images'")
    if ann["category_id"] not in categories:
        raise ValueError(f"{where}: category_id {ann['category_id']} is not in 'categories'")
    bbox = ann["bbox"]
    if (not isinstance(bbox, list) or len(bbox) != 4 or not all(isinstance(v, (int, float)) for v in bbox)
            or bbox[2] < 0 or bbox[3] < 0):
        raise ValueError(f"{where}: bbox {bbox!r} must be [x, y, width, height] with width, height >= 0")
    segmentation = ann.get("segmentation")
    if isinstance(segmentation, list):
        if not segmentation or any(not isinstance(p, list) or len(p) < 6 or len(p) % 2 for p in segmentation):
            raise ValueError(f"{where}: segmentation polygons must be lists of at least 3 (x, y) pairs")
    elif isinstance(segmentation, dict):
        if "counts" not in segmentation or "size" not in segmentation:
            raise ValueError(f"{where}: an RLE segmentation needs 'counts' and 'size'")
    elif segmentation is not None:
        raise ValueError(f"{where}: segmentation must be polygons (a list) or RLE (a dict), "
                         f"got {type(segmentation).__name__}")


def load_coco(path: str | Path) -> COCO:
    """A pycocotools `COCO` index of the annotation file at `path`, after checking every record.

    Raises `ValueError` naming the file and the record (`annotations[i] (id N)`) that is malformed.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"annotation file {path} does not exist")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not a JSON file ({e})") from e
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object with 'images', 'annotations', 'categories'")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise ValueError(f"{path}: no {key!r} list")
    for index, image in enumerate(data["images"]):
        if not isinstance(image, dict) or not {"id", "file_name", "height", "width"} <= set(image):
            raise ValueError(f"{path}: images[{index}] needs 'id', 'file_name', 'height' and 'width'")
    images = {image["id"] for image in data["images"]}
    categories = {category["id"] for category in data["categories"]}
    for index, ann in enumerate(data["annotations"]):
        _check_annotation(path, index, ann, images, categories)
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        coco.createIndex()
    return coco


def detection_transform(train: bool, min_size: int = 800, max_size: int = 1333, flip: bool = True) -> v2.Compose:
    """mmdetection's 1x training pipeline: flip, resize the short side to `min_size` (long side at most
    `max_size`); image, boxes and masks together, boxes emptied by the resize dropped with their labels and masks.

    Evaluation only converts the image: torchvision's detectors resize inside (`GeneralizedRCNNTransform`, the same
    sizes) and map their predictions back to the input image, i.e. to the annotation file's coordinates.
    """
    if not train:
        return v2.Compose([v2.ToDtype(torch.float32, scale=True)])
    if max_size <= min_size:
        raise ValueError(f"max_size={max_size} must be larger than min_size={min_size} (the long-side cap)")
    ops: List[v2.Transform] = [v2.RandomHorizontalFlip()] if flip else []
    return v2.Compose([*ops, v2.Resize(min_size, max_size=max_size), v2.ToDtype(torch.float32, scale=True),
                       v2.SanitizeBoundingBoxes()])


class DetectionDataset(Dataset):
    """`load(index)` gives (uint8 image, target); `transform` is applied with randomness drawn from (seed, epoch,
    index), so a resumed run replays the augmentations exactly."""

    transform: Optional[Callable] = None
    seed, epoch = 0, 0

    def set_epoch(self, epoch: int, seed: Optional[int] = None) -> None:
        self.epoch = epoch
        if seed is not None:
            self.seed = seed

    def load(self, index: int) -> Tuple[tv_tensors.Image, Target]:
        raise NotImplementedError

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, Target]:
        image, target = self.load(index)
        if self.transform is None:
            return TF.to_dtype(image, torch.float32, scale=True), target
        with torch.random.fork_rng(devices=[]):  # the CPU generator only (forking every GPU's fails in workers)
            torch.manual_seed(zlib.crc32(f"{self.seed}/{self.epoch}/{index}".encode()))
            return self.transform(image, target)


class CocoInstances(DetectionDataset):
    """Images in `image_dir`, instances in the COCO file `annotation_file`; see the module docstring."""

    def __init__(self, image_dir: str | Path, annotation_file: str | Path, transform: Optional[Callable] = None):
        self.image_dir = Path(image_dir)
        self.annotation_file = Path(annotation_file)
        self.coco = load_coco(annotation_file)
        self.ids = sorted(self.coco.imgs)
        self.transform = transform
        self.categories = sorted(self.coco.cats)
        self.label_names = {c: self.coco.cats[c]["name"] for c in self.categories}

    @property
    def num_classes(self) -> int:
        """Labels are category ids; torchvision's `num_classes` counts the background (0) too."""
        return max(self.categories) + 1

    def __len__(self) -> int:
        return len(self.ids)

    def load(self, index: int) -> Tuple[tv_tensors.Image, Target]:
        image_id = self.ids[index]
        info = self.coco.imgs[image_id]
        image = read_image(self.image_dir / info["file_name"])
        height, width = image.height, image.width
        if (height, width) != (info["height"], info["width"]):
            raise ValueError(f"{self.annotation_file}: image {image_id} is {info['width']}x{info['height']} in the "
                             f"annotations but {self.image_dir / info['file_name']} is {width}x{height}")
        anns = [a for a in self.coco.imgToAnns[image_id] if not a.get("iscrowd", 0)]
        boxes = torch.tensor([a["bbox"] for a in anns], dtype=torch.float32).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]
        masks = np.stack([self.coco.annToMask(a) for a in anns]) if anns else np.zeros((0, height, width), np.uint8)
        target = {
            "boxes": tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=(height, width)),
            "labels": torch.tensor([a["category_id"] for a in anns], dtype=torch.int64),
            "masks": tv_tensors.Mask(torch.from_numpy(masks)),
            "image_id": image_id,
        }
        return tv_tensors.Image(TF.pil_to_tensor(image)), target


def coco_instances(root: str | Path, split: str, transform: Optional[Callable] = None) -> CocoInstances:
    """COCO's layout: `root/{split}/*.jpg` and `root/annotations/instances_{split}.json` (e.g. split="val2017")."""
    root = Path(root)
    return CocoInstances(root / split, root / "annotations" / f"instances_{split}.json", transform)


def collate_detection(batch: Sequence[Tuple[torch.Tensor, Target]]) -> Tuple[List[torch.Tensor], List[Target]]:
    """Images and targets as two lists: the input of torchvision's detectors."""
    images, targets = zip(*batch)
    return list(images), list(targets)
