"""COCO-format instance loading: polygons, RLE, crowds, joint v2 augmentation, errors, the embedded instance set."""
import json

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools import mask as mask_utils

from sr_models.data.coco import CocoInstances, collate_detection, detection_transform, load_coco
from sr_models.data.embedded import EmbeddedSegmentation
from sr_models.data.embedded_instances import EMBEDDED_INSTANCE_CLASSES, embedded_instances


def _rle(mask: np.ndarray, compressed: bool = True) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    if compressed:
        return dict(rle, counts=rle["counts"].decode("ascii"))
    flat = mask.T.reshape(-1).astype(int)  # column-major runs, starting with zeros
    changes = np.flatnonzero(np.diff(np.r_[0, flat, 1 - flat[-1]]))
    return {"size": list(mask.shape), "counts": np.diff(np.r_[0, changes]).tolist()}


@pytest.fixture()
def coco_dir(tmp_path):
    (tmp_path / "images").mkdir()
    Image.new("RGB", (40, 30), (10, 20, 30)).save(tmp_path / "images" / "a.png")
    blob = np.zeros((30, 40), bool)
    blob[5:15, 20:30] = True
    data = {
        "images": [{"id": 7, "file_name": "a.png", "height": 30, "width": 40}],
        "categories": [{"id": 1, "name": "car"}, {"id": 3, "name": "bus"}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 1, "bbox": [2, 4, 10, 8], "iscrowd": 0, "area": 80,
             "segmentation": [[2, 4, 12, 4, 12, 12, 2, 12]]},
            {"id": 2, "image_id": 7, "category_id": 3, "bbox": [20, 5, 10, 10], "iscrowd": 0, "area": 100,
             "segmentation": _rle(blob, compressed=False)},
            {"id": 3, "image_id": 7, "category_id": 3, "bbox": [0, 20, 40, 10], "iscrowd": 1, "area": 400,
             "segmentation": _rle(np.pad(np.ones((10, 40), bool), ((20, 0), (0, 0))))},
        ],
    }
    (tmp_path / "instances_val.json").write_text(json.dumps(data))
    return tmp_path


def test_polygons_and_rle_become_masks_and_crowds_stay_out_of_the_targets(coco_dir):
    dataset = CocoInstances(coco_dir / "images", coco_dir / "instances_val.json")
    assert len(dataset) == 1 and dataset.num_classes == 4 and dataset.label_names == {1: "car", 3: "bus"}
    image, target = dataset[0]
    assert image.shape == (3, 30, 40) and image.dtype == torch.float32 and image.max() <= 1
    assert target["labels"].tolist() == [1, 3] and target["image_id"] == 7
    assert target["boxes"].tolist() == [[2, 4, 12, 12], [20, 5, 30, 15]]
    masks = target["masks"]
    assert masks.shape == (2, 30, 40) and masks[1].sum() == 100 and masks[1, 5:15, 20:30].all()
    assert 70 <= masks[0].sum() <= 100 and masks[0, 6:11, 4:11].all()  # the rasterised polygon square


def test_flip_and_resize_move_image_boxes_and_masks_together(coco_dir):
    dataset = CocoInstances(coco_dir / "images", coco_dir / "instances_val.json",
                            detection_transform(train=True, min_size=60, max_size=70))
    flipped = False
    for epoch in range(8):
        dataset.set_epoch(epoch, seed=0)
        image, target = dataset[0]
        assert image.shape == (3, 52, 70)  # short side 60 would make the long side 80 > 70: long side 70
        for box, mask in zip(target["boxes"], target["masks"]):
            ys, xs = torch.nonzero(mask, as_tuple=True)
            assert torch.allclose(box, torch.stack([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]).float(), atol=2)
        flipped |= bool(target["boxes"][1, 0] < 35)  # the bus blob sits right of centre unless flipped
    assert flipped
    dataset.set_epoch(3, seed=0)
    first = dataset[0]
    assert torch.equal(dataset[0][0], first[0])  # augmentation drawn from (seed, epoch, index): replayable
    images, targets = collate_detection([first, first])
    assert len(images) == len(targets) == 2


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["annotations"][1].update(bbox=[1, 2, -3, 4]), r"annotations\[1\] \(id 2\): bbox \[1, 2, -3, 4\]"),
    (lambda d: d["annotations"][0].update(category_id=9), r"annotations\[0\] \(id 1\): category_id 9"),
    (lambda d: d["annotations"][2].update(segmentation=[[1, 2, 3]]), r"annotations\[2\] \(id 3\): segmentation"),
    (lambda d: d.pop("categories"), r"no 'categories' list"),
])
def test_bad_annotation_files_name_the_file_and_the_record(coco_dir, edit, message):
    path = coco_dir / "instances_val.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=f"instances_val.json: .*{message}"):
        load_coco(path)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="instances_val.json: not a JSON file"):
        load_coco(path)


def test_embedded_instances_are_the_scenes_cars_and_vehicle(tmp_path):
    dataset = embedded_instances(tmp_path, "val", num_images=6, image_size=64)
    scenes = EmbeddedSegmentation("val", num_images=6, image_size=64)
    assert (tmp_path / "annotations" / "instances_val.json").is_file() and len(dataset) == 6
    for index in range(6):
        _, target = dataset[index]
        _, semantic = scenes.load(index)
        vehicles = [label for label in target["labels"].tolist() if label > 1]
        assert len(vehicles) >= 1 and len(set(vehicles)) == 1
        for train_id, category in EMBEDDED_INSTANCE_CLASSES.items():
            union = target["masks"][target["labels"] == category].sum(0)
            assert torch.equal(union > 0, torch.from_numpy(semantic == train_id))  # instances tile the class pixels
