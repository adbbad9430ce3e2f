"""The embedded data set as COCO panoptic files: the scenes of `EmbeddedSegmentation` with instances and stuff.

Things are the instances of the embedded instance set (`embedded_instances`: the large vehicle, whose class the
signs tell, and each car); stuff is background and signs. Signs are stuff rather than things because at 5 x 5
pixels they lie below the smallest anchor and RoI scale of a Mask R-CNN at this resolution, so as things they would
measure the detector's small-object limit instead of the question the set asks (does image-level context name the
vehicle?); their role in the scene is the context cue, which the semantic branch labels as a region.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Optional

import numpy as np
from PIL import Image
from tqdm.auto import tqdm
from transformers.image_transforms import id_to_rgb

from .atomic import write_atomically
from .coco_panoptic import COCOPanoptic, coco_panoptic
from .embedded import EMBEDDED, EmbeddedSegmentation
from .embedded_instances import EMBEDDED_INSTANCE_CLASSES, connected_components

__all__ = ["write_embedded_panoptic", "embedded_panoptic", "EMBEDDED_PANOPTIC_CATEGORIES"]

# category id = embedded train id + 1 (ids start at 1 as in COCO)
EMBEDDED_PANOPTIC_CATEGORIES = [
    dict(id=i + 1, name=name, isthing=int(i in EMBEDDED_INSTANCE_CLASSES), color=list(EMBEDDED.palette[i]))
    for i, name in enumerate(EMBEDDED.label_names)
]


def _segments(mask: np.ndarray):
    """(region, category id) of every segment of one scene's train-id mask: one per thing instance (connected
    region), one per stuff class present."""
    for train_id in range(len(EMBEDDED.label_names)):
        region = mask == train_id
        if not region.any():
            continue
        if train_id in EMBEDDED_INSTANCE_CLASSES:
            components = connected_components(region)
            for component in np.unique(components[components > 0]):
                yield components == component, train_id + 1
        else:
            yield region, train_id + 1


def write_embedded_panoptic(root: str | Path, split: str = "train", num_images: Optional[int] = None,
                            image_size: int = 64, seed: int = 0) -> Path:
    """Write `split` of the embedded scenes under `root` in COCO panoptic's layout; return the annotation file."""
    root = Path(root)
    scenes = EmbeddedSegmentation(split, num_images=num_images, image_size=image_size, seed=seed)
    image_dir, png_dir = root / split, root / "annotations" / f"panoptic_{split}"
    image_dir.mkdir(parents=True, exist_ok=True)
    png_dir.mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for index in tqdm(range(len(scenes)), desc=f"embedded panoptic ({split})", leave=False):
        image, mask = scenes.load(index)
        ids = np.zeros(mask.shape, np.int64)
        segments_info = []
        for segment_id, (region, category_id) in enumerate(_segments(mask), start=1):
            ids[region] = segment_id
            ys, xs = np.nonzero(region)
            segments_info.append(dict(id=segment_id, category_id=category_id, iscrowd=0, area=int(region.sum()),
                                      bbox=[int(xs.min()), int(ys.min()), int(np.ptp(xs)) + 1, int(np.ptp(ys)) + 1]))
        file_name = f"{index:05d}.png"
        write_atomically(image_dir / file_name, lambda tmp: image.save(tmp, format="PNG"))
        write_atomically(png_dir / file_name, lambda tmp: Image.fromarray(id_to_rgb(ids)).save(tmp, format="PNG"))
        images.append(dict(id=index, file_name=file_name, height=mask.shape[0], width=mask.shape[1]))
        annotations.append(dict(image_id=index, file_name=file_name, segments_info=segments_info))
    path = root / "annotations" / f"panoptic_{split}.json"
    record = json.dumps(dict(images=images, annotations=annotations, categories=EMBEDDED_PANOPTIC_CATEGORIES))
    return write_atomically(path, lambda tmp: tmp.write_text(record))  # exists only once the split is complete


def embedded_panoptic(root: str | Path, split: str = "train", transform: Optional[Callable] = None,
                      num_images: Optional[int] = None, image_size: int = 64, seed: int = 0) -> COCOPanoptic:
    """The embedded panoptic set under `root`, generated first if its annotation file is absent."""
    if not (Path(root) / "annotations" / f"panoptic_{split}.json").is_file():
        write_embedded_panoptic(root, split, num_images, image_size, seed)
    return coco_panoptic(root, split, transform)
