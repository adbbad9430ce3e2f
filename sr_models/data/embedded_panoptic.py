"""The embedded data set as COCO panoptic files: the scenes of `EmbeddedSegmentation` with instances and stuff.

Things: the large vehicle (truck, bus or train: one instance, its class told by the signs as in the semantic task)
and each car. Stuff: background and signs. Signs are stuff rather than things because at 5 x 5 pixels they lie
below the smallest anchor and RoI scale of a Mask R-CNN at this resolution, so as things they would measure the
detector's small-object limit instead of the question the set asks (does image-level context name the vehicle?);
their role in the scene is the context cue, which the semantic branch labels as a region.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from .coco_panoptic import id_to_rgb
from .embedded import EMBEDDED, VEHICLES, EmbeddedSegmentation

__all__ = ["write_embedded_panoptic", "connected_components", "EMBEDDED_PANOPTIC_CATEGORIES"]

_CAR, _SIGN, _BACKGROUND = (EMBEDDED.label_names.index(n) for n in ("car", "sign", "background"))
THING_TRAIN_IDS = (_CAR, *VEHICLES)
# category id = embedded train id + 1 (ids start at 1 as in COCO)
EMBEDDED_PANOPTIC_CATEGORIES = [
    dict(id=i + 1, name=name, isthing=int(i in THING_TRAIN_IDS), color=list(EMBEDDED.palette[i]))
    for i, name in enumerate(EMBEDDED.label_names)
]


def connected_components(mask: np.ndarray) -> np.ndarray:
    """4-connected components of a boolean (H, W) mask: 0 outside, 1..N inside, numbered in raster order."""
    labels = np.zeros(mask.shape, np.int64)
    h, w = mask.shape
    count = 0
    for y, x in zip(*np.nonzero(mask)):
        if labels[y, x]:
            continue
        count += 1
        labels[y, x] = count
        stack = [(y, x)]
        while stack:  # flood fill
            cy, cx = stack.pop()
            for ny, nx in ((cy - 1, cx), (cy + 1, cx), (cy, cx - 1), (cy, cx + 1)):
                if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and not labels[ny, nx]:
                    labels[ny, nx] = count
                    stack.append((ny, nx))
    return labels


def _segments(mask: np.ndarray) -> List[Dict]:
    """(segment region, category id, iscrowd) of one scene's train-id mask."""
    out = []
    for train_id, name in enumerate(EMBEDDED.label_names):
        region = mask == train_id
        if not region.any():
            continue
        if train_id in THING_TRAIN_IDS:
            components = connected_components(region)
            out += [(components == k, train_id + 1) for k in range(1, components.max() + 1)]
        else:
            out.append((region, train_id + 1))
    return out


def write_embedded_panoptic(root: str | Path, split: str = "train", num_images: int | None = None,
                            image_size: int = 64, seed: int = 0) -> Path:
    """Write `root/images/<split>/`, `root/panoptic_<split>/` and `root/annotations/panoptic_<split>.json`."""
    root = Path(root)
    scenes = EmbeddedSegmentation(split, num_images=num_images, image_size=image_size, seed=seed)
    image_dir, png_dir, ann_dir = root / "images" / split, root / f"panoptic_{split}", root / "annotations"
    for folder in (image_dir, png_dir, ann_dir):
        folder.mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for index in tqdm(range(len(scenes)), desc=f"embedded panoptic {split}", leave=False):
        image, mask = scenes.load(index)
        ids = np.zeros(mask.shape, np.int64)
        segments_info = []
        for segment_id, (region, category_id) in enumerate(_segments(mask), start=1):
            ids[region] = segment_id
            ys, xs = np.nonzero(region)
            segments_info.append(dict(id=segment_id, category_id=category_id, iscrowd=0, area=int(region.sum()),
                                      bbox=[int(xs.min()), int(ys.min()), int(np.ptp(xs)) + 1, int(np.ptp(ys)) + 1]))
        name = f"{split}_{index:05d}"
        image.save(image_dir / f"{name}.png")
        Image.fromarray(id_to_rgb(ids)).save(png_dir / f"{name}.png")
        images.append(dict(id=index, file_name=f"{name}.png", height=mask.shape[0], width=mask.shape[1]))
        annotations.append(dict(image_id=index, file_name=f"{name}.png", segments_info=segments_info))
    annotation_file = ann_dir / f"panoptic_{split}.json"
    annotation_file.write_text(json.dumps(dict(images=images, annotations=annotations,
                                               categories=EMBEDDED_PANOPTIC_CATEGORIES)))
    return annotation_file
