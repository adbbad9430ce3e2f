"""COCO panoptic segmentation data: `panoptic_<split>.json` + one PNG of segment ids per image.

The format (Kirillov et al., 2019; the COCO panoptic API): each annotation names an image, its PNG (segment id =
R + 256 G + 256² B; 0 is unlabelled) and `segments_info` (id, category_id, iscrowd, ...); `categories` say which
are things (`isthing`). One sample gives what `PanopticFPN` trains on and what PQ is computed against:

    image       float (3, H, W) in [0, 1]
    boxes       tv_tensors.BoundingBoxes (XYXY) of the non-crowd thing segments, `labels` 1..T, `masks` (N, H, W)
    sem_seg     tv_tensors.Mask (H, W): stuff classes 0..S-1, S for thing pixels, `ignore_index` for unlabelled ones
    panoptic    (H, W, 2) int64: (category, segment id) in the model's category ids (things 1..T, the
                detector's labels; stuff T+1..T+S; -1 for unlabelled and crowd pixels, which PQ leaves out)

A `torchvision.transforms.v2` transform (`detection_transform`: flip, resize) moves the image, boxes, masks and
`sem_seg` together; `panoptic` is a plain tensor the transforms pass through, for evaluation, where the images are
not resized (the detector resizes inside and maps its outputs back). Layout as COCO's: `root/<split>/` images,
`root/annotations/panoptic_<split>.json` and its PNGs in `root/annotations/panoptic_<split>/`.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.ops import masks_to_boxes
from torchvision.transforms.v2 import functional as TF
from transformers.image_transforms import rgb_to_id

from ..constants import IGNORE_INDEX
from .coco import DetectionDataset, Target
from .images import open_image, read_image

__all__ = ["COCOPanoptic", "coco_panoptic", "PanopticCategories"]


class PanopticCategories:
    """The category table of a panoptic data set, and its mapping to the model's category ids."""

    def __init__(self, categories: List[Dict[str, Any]], source: str = "categories"):
        for i, cat in enumerate(categories):
            missing = {"id", "name", "isthing"} - set(cat)
            if missing:
                raise ValueError(f"{source}: category #{i} lacks {sorted(missing)}: {cat}")
        self.things = [c for c in sorted(categories, key=lambda c: c["id"]) if c["isthing"]]
        self.stuff = [c for c in sorted(categories, key=lambda c: c["id"]) if not c["isthing"]]
        if not self.things or not self.stuff:
            raise ValueError(f"{source}: a panoptic data set needs thing and stuff categories "
                             f"({len(self.things)} things, {len(self.stuff)} stuff)")
        self.thing_label = {c["id"]: i + 1 for i, c in enumerate(self.things)}  # detector labels 1..T
        self.stuff_label = {c["id"]: i for i, c in enumerate(self.stuff)}  # semantic labels 0..S-1

    @property
    def names(self) -> List[str]:
        """Names in the model's order (category ids 1, 2, ...): things, then stuff."""
        return [c["name"] for c in self.things + self.stuff]

    def model_id(self, category_id: int) -> int:
        """The model's category id of a data-set category id: things 1..T, stuff T+1..T+S."""
        if category_id in self.thing_label:
            return self.thing_label[category_id]
        return len(self.things) + 1 + self.stuff_label[category_id]


class COCOPanoptic(DetectionDataset):
    """Images under `image_dir`, annotations in `annotation_file`, PNGs under `panoptic_dir` (COCO's layout)."""

    def __init__(
            self,
            image_dir: str | Path,
            annotation_file: str | Path,
            panoptic_dir: str | Path,
            transform: Optional[Callable] = None,
            ignore_index: int = IGNORE_INDEX,
    ):
        self.image_dir, self.panoptic_dir = Path(image_dir), Path(panoptic_dir)
        self.annotation_file = Path(annotation_file)
        if not self.annotation_file.is_file():
            raise FileNotFoundError(f"panoptic annotation file {self.annotation_file} does not exist")
        try:
            data = json.loads(self.annotation_file.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{self.annotation_file} is not valid JSON: {e}") from None
        for key in ("images", "annotations", "categories"):
            if key not in data:
                raise ValueError(f"{self.annotation_file} has no {key!r} list (not a COCO panoptic file)")
        self.categories = PanopticCategories(data["categories"], str(self.annotation_file))
        files = {image["id"]: image["file_name"] for image in data["images"]}
        known = self.categories.thing_label.keys() | self.categories.stuff_label.keys()
        self.records: List[Tuple[str, Dict[str, Any]]] = []
        for i, ann in enumerate(data["annotations"]):
            where = f"{self.annotation_file}: annotation #{i}"
            if "file_name" not in ann or "segments_info" not in ann or ann.get("image_id") not in files:
                raise ValueError(f"{where} needs image_id (one of 'images'), file_name and segments_info")
            for segment in ann["segments_info"]:
                if segment.get("category_id") not in known:
                    raise ValueError(f"{where} (image {ann['image_id']}): segment {segment.get('id')} has unknown "
                                     f"category_id {segment.get('category_id')}")
            self.records.append((files[ann["image_id"]], ann))
        self.transform = transform
        self.ignore_index = ignore_index

    def __len__(self) -> int:
        return len(self.records)

    @property
    def num_classes(self) -> int:
        """The detector's `num_classes`: the thing classes and the background."""
        return len(self.categories.things) + 1

    @property
    def label_names(self) -> Dict[int, str]:
        """Model category id (things 1..T, then stuff) -> name."""
        return dict(enumerate(self.categories.names, start=1))

    def load(self, index: int) -> Tuple[tv_tensors.Image, Target]:
        file_name, ann = self.records[index]
        image = TF.pil_to_tensor(read_image(self.image_dir / file_name))
        png = self.panoptic_dir / ann["file_name"]
        ids = torch.from_numpy(rgb_to_id(np.asarray(open_image(png).convert("RGB")))).long()  # OSError names it
        if ids.shape != image.shape[-2:]:
            raise ValueError(f"{png} is {tuple(ids.shape)}, its image {self.image_dir / file_name} "
                             f"{tuple(image.shape[-2:])}")
        target = self.encode(ids, ann["segments_info"])
        target["image_id"] = ann["image_id"]
        return tv_tensors.Image(image), target

    def encode(self, ids: torch.Tensor, segments_info: List[Dict[str, Any]]) -> Dict[str, Any]:
        """Segment-id map + segments_info -> the training and evaluation targets (see the module docstring)."""
        cats, num_stuff = self.categories, len(self.categories.stuff)
        sem = torch.full(ids.shape, self.ignore_index, dtype=torch.long)
        pan = torch.full((*ids.shape, 2), -1, dtype=torch.long)
        masks, labels = [], []
        for segment in segments_info:
            region = ids == segment["id"]
            category = segment["category_id"]
            if category in cats.thing_label:
                sem[region] = num_stuff
                if not segment.get("iscrowd", 0) and region.any():
                    masks.append(region)
                    labels.append(cats.thing_label[category])
                    pan[region] = torch.tensor([cats.model_id(category), segment["id"]])
            else:
                sem[region] = cats.stuff_label[category]
                pan[region] = torch.tensor([cats.model_id(category), segment["id"]])
        masks_t = torch.stack(masks) if masks else torch.zeros((0, *ids.shape), dtype=torch.bool)
        boxes = masks_to_boxes(masks_t) if masks else torch.zeros((0, 4))
        boxes[:, 2:] += 1  # pixel-exclusive corners: a one-pixel-wide mask has a box of width 1, as in COCO
        return dict(
            boxes=tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=tuple(ids.shape)),
            labels=torch.tensor(labels, dtype=torch.int64),
            masks=tv_tensors.Mask(masks_t.to(torch.uint8)),
            sem_seg=tv_tensors.Mask(sem),
            panoptic=pan,
        )


def coco_panoptic(root: str | Path, split: str, transform: Optional[Callable] = None) -> COCOPanoptic:
    """COCO's layout: `root/{split}/`, `root/annotations/panoptic_{split}.json` and `.../panoptic_{split}/`."""
    root = Path(root)
    return COCOPanoptic(root / split, root / "annotations" / f"panoptic_{split}.json",
                        root / "annotations" / f"panoptic_{split}", transform)
