"""The embedded data set as COCO instances: the cars and the large vehicle of each embedded scene.

Scenes come from `EmbeddedSegmentation` (sr_models/data/embedded.py); every connected region (8-connected) of a
car, truck, bus or train pixel becomes one instance with its RLE mask and box. The vehicle's class is the scene's
semantic label, i.e. the one its image-level cues (the signs) decide: a detector must read the whole image to name
it, as the segmenters must. Written in COCO's layout (`root/{split}/NNNNN.png`,
`root/annotations/instances_{split}.json`), so `CocoInstances` reads it like COCO itself.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Dict, Optional

import numpy as np
import torch
import torch.nn.functional as F
from pycocotools import mask as mask_utils
from tqdm.auto import tqdm

from .atomic import write_atomically
from .coco import CocoInstances
from .embedded import EMBEDDED, EmbeddedSegmentation

__all__ = ["EMBEDDED_INSTANCE_CLASSES", "connected_components", "write_embedded_instances", "embedded_instances"]

# semantic train id of the embedded set -> COCO category id of the instance set
EMBEDDED_INSTANCE_CLASSES: Dict[int, int] = {EMBEDDED.label_names.index(name): i + 1
                                             for i, name in enumerate(("car", "truck", "bus", "train"))}


def connected_components(region: np.ndarray) -> np.ndarray:
    """8-connected component ids of a boolean (H, W) map, 0 outside: each pixel takes the largest index of its
    component, propagated by 3x3 max-pooling until nothing changes."""
    inside = torch.from_numpy(np.asarray(region, bool))
    height, width = inside.shape
    ids = torch.where(inside, torch.arange(1, height * width + 1, dtype=torch.float32).reshape(height, width), 0.0)
    while True:
        grown = torch.where(inside, F.max_pool2d(ids[None, None], 3, 1, 1)[0, 0], 0.0)
        if torch.equal(grown, ids):
            return ids.long().numpy()
        ids = grown


def write_embedded_instances(root: str | Path, split: str = "train", num_images: Optional[int] = None,
                             image_size: int = 64, seed: int = 0) -> Path:
    """Generate `split` of the embedded scenes under `root` in COCO format; return the annotation file."""
    scenes = EmbeddedSegmentation(split, num_images=num_images, image_size=image_size, seed=seed)
    root = Path(root)
    (root / split).mkdir(parents=True, exist_ok=True)
    (root / "annotations").mkdir(exist_ok=True)
    images, annotations = [], []
    for index in tqdm(range(len(scenes)), desc=f"embedded instances ({split})", leave=False):
        image, semantic = scenes.load(index)
        file_name = f"{index:05d}.png"
        write_atomically(root / split / file_name, lambda tmp: image.save(tmp, format="PNG"))
        images.append(dict(id=index, file_name=file_name, height=image.height, width=image.width))
        for train_id, category in EMBEDDED_INSTANCE_CLASSES.items():
            components = connected_components(semantic == train_id)
            for component in np.unique(components[components > 0]):
                mask = np.asfortranarray(components == component, dtype=np.uint8)
                rle = mask_utils.encode(mask)
                rle["counts"] = rle["counts"].decode("ascii")
                annotations.append(dict(id=len(annotations) + 1, image_id=index, category_id=category,
                                        segmentation=rle, area=float(mask_utils.area(rle)),
                                        bbox=[float(v) for v in mask_utils.toBbox(rle)], iscrowd=0))
    categories = [dict(id=c, name=EMBEDDED.label_names[t], supercategory="vehicle")
                  for t, c in EMBEDDED_INSTANCE_CLASSES.items()]
    path = root / "annotations" / f"instances_{split}.json"
    record = json.dumps(dict(images=images, annotations=annotations, categories=categories))
    return write_atomically(path, lambda tmp: tmp.write_text(record))  # exists only once the split is complete


def embedded_instances(root: str | Path, split: str = "train", transform: Optional[Callable] = None,
                       num_images: Optional[int] = None, image_size: int = 64, seed: int = 0) -> CocoInstances:
    """The embedded instance set under `root`, generated first if its annotation file is absent."""
    path = Path(root) / "annotations" / f"instances_{split}.json"
    if not path.is_file():
        write_embedded_instances(root, split, num_images, image_size, seed)
    return CocoInstances(Path(root) / split, path, transform)
