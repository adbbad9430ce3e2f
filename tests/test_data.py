"""Loaders for the data sets' layouts on disk and `datasets`, transforms, and their errors (tiny fake trees)."""
import numpy as np
import pytest
import torch
from PIL import Image

from sr_models.data import (
    HFClassificationDataset,
    ImageFolderClassification,
    SegmentationTransform,
    build_dataset,
)

H, W = 40, 60


def _image(path, seed=0, mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).convert(mode).save(path)


def _mask(path, values):
    path.parent.mkdir(parents=True, exist_ok=True)
    mask = np.zeros((H, W), np.uint8)
    for i, value in enumerate(values):  # vertical bands of raw label values
        mask[:, i * W // len(values):(i + 1) * W // len(values)] = value
    Image.fromarray(mask).save(path)


def _labels(dataset, index=0):
    return set(np.unique(dataset[index]["labels"].numpy()).tolist())


def test_cityscapes_maps_label_ids_to_train_ids(tmp_path):
    for city, name in [("aachen", "aachen_000000_000019"), ("bremen", "bremen_000001_000019")]:
        _image(tmp_path / "leftImg8bit" / "val" / city / f"{name}_leftImg8bit.png")
        _mask(tmp_path / "gtFine" / "val" / city / f"{name}_gtFine_labelIds.png", [0, 7, 26, 33])
    dataset = build_dataset({"name": "cityscapes", "root": str(tmp_path)}, "val", train=False)
    assert len(dataset) == 2 and dataset.info.name == "cityscapes"
    assert _labels(dataset) == {255, 0, 13, 18}  # unlabeled -> ignore, road, car, bicycle


def test_ade20k_shifts_labels_and_ignores_zero(tmp_path):
    base = tmp_path / "ADEChallengeData2016"
    _image(base / "images" / "validation" / "ADE_val_00000001.jpg")
    _mask(base / "annotations" / "validation" / "ADE_val_00000001.png", [0, 1, 150])
    dataset = build_dataset({"name": "ade20k", "root": str(tmp_path)}, "val", train=False)
    assert _labels(dataset) == {255, 0, 149}


def test_pascal_context_reads_the_split_file(tmp_path):
    base = tmp_path / "VOCdevkit" / "VOC2010"
    for name in ["2008_000002", "2008_000003"]:
        _image(base / "JPEGImages" / f"{name}.jpg")
        _mask(base / "SegmentationClassContext" / f"{name}.png", [0, 5, 59])
    (base / "ImageSets" / "SegmentationContext").mkdir(parents=True)
    (base / "ImageSets" / "SegmentationContext" / "train.txt").write_text("2008_000002\n")
    dataset = build_dataset({"name": "pascal_context", "root": str(tmp_path)}, "train", train=False)
    assert len(dataset) == 1 and _labels(dataset) == {255, 4, 58}


def test_camvid_void_is_ignored(tmp_path):
    _image(tmp_path / "test" / "0001TP_008550.png")
    _mask(tmp_path / "testannot" / "0001TP_008550.png", [0, 8, 11])
    dataset = build_dataset({"name": "camvid", "root": str(tmp_path)}, "test", train=False)
    assert _labels(dataset) == {0, 8, 255} and dataset.info.label_names[8] == "car"


def test_hf_datasets_loader_with_configured_columns(tmp_path):
    import datasets

    images = [Image.fromarray(np.full((H, W, 3), i * 40, np.uint8)) for i in range(3)]
    masks = [Image.fromarray(np.full((H, W), i, np.uint8)) for i in range(3)]
    features = datasets.Features({"img": datasets.Image(), "seg": datasets.Image()})
    datasets.Dataset.from_dict({"img": images, "seg": masks}, features=features).save_to_disk(str(tmp_path / "ds"))
    cfg = {"name": "hf", "root": str(tmp_path / "ds"), "image_column": "img", "label_column": "seg",
           "label_names": ["a", "b", "c"], "label_map": {0: 0, 1: 1, 2: 2}}
    dataset = build_dataset(cfg, "train", train=False)
    assert len(dataset) == 3 and _labels(dataset, 2) == {2} and dataset.info.num_classes == 3
    with pytest.raises(ValueError, match=r"columns \['mask'\] not in the data set"):
        build_dataset({**cfg, "label_column": "mask"}, "train", train=False)


def test_training_transform_crops_flips_and_pads_with_ignore():
    image = Image.fromarray(np.tile(np.arange(W, dtype=np.uint8)[None, :, None], (H, 1, 3)))
    mask = np.tile(np.arange(W, dtype=np.uint8)[None], (H, 1))
    transform = SegmentationTransform(True, crop_size=(48, 48), scale_range=(1.0, 1.0), flip=True)
    flipped = 0
    for seed in range(20):
        pixels, labels = transform(image, mask, torch.Generator().manual_seed(seed))
        assert pixels.shape == (3, 48, 48) and labels.shape == (48, 48) and labels.dtype == torch.long
        assert (labels[H:] == 255).all() and (pixels[:, H:] == 0).all()  # padded rows: ignore / zero
        row = labels[0]
        flipped += int(row[0] > row[-1])
        # image and mask move together: the image's column value equals the mask's label
        denormalised = (pixels[0, 0] * 0.229 + 0.485) * 255
        assert torch.allclose(denormalised, row.float(), atol=1.0)
    assert 0 < flipped < 20


def test_transform_randomness_comes_from_the_generator():
    image, mask = Image.new("RGB", (W, H)), np.zeros((H, W), np.uint8)
    transform = SegmentationTransform(True, crop_size=(32, 32), scale_range=(0.5, 2.0))
    a = transform(image, mask, torch.Generator().manual_seed(1))
    b = transform(image, mask, torch.Generator().manual_seed(1))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_eval_transform_keeps_the_whole_image():
    pixels, labels = SegmentationTransform(False)(Image.new("RGB", (W, H)), np.zeros((H, W), np.uint8))
    assert pixels.shape == (3, H, W) and labels.shape == (H, W)


def test_classification_image_folder(tmp_path):
    for label in ["cat", "dog"]:
        for i in range(2):
            _image(tmp_path / "train" / label / f"{i}.png", seed=i)
    dataset = ImageFolderClassification(tmp_path, "train", transform=lambda im: torch.zeros(1))
    assert len(dataset) == 4 and dataset.label_names == ["cat", "dog"] and dataset[3]["labels"] == 1


def test_hf_classification_label_names(tmp_path):
    import datasets

    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["x", "y"])})
    ds = datasets.Dataset.from_dict({"image": [Image.new("RGB", (8, 8))] * 2, "label": [0, 1]}, features=features)
    dataset = HFClassificationDataset(ds)
    assert dataset.label_names == ["x", "y"] and dataset[1]["labels"] == 1


def test_missing_root_unknown_name_empty_split_and_corrupt_image_fail_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="leftImg8bit/val does not exist; expected the layout"):
        build_dataset({"name": "cityscapes", "root": str(tmp_path)}, "val", train=False)
    with pytest.raises(ValueError, match="unknown data.name='kitti'"):
        build_dataset({"name": "kitti", "root": str(tmp_path)}, "val", train=False)
    (tmp_path / "train").mkdir()
    (tmp_path / "trainannot").mkdir()
    with pytest.raises(FileNotFoundError, match="no images found"):
        build_dataset({"name": "camvid", "root": str(tmp_path)}, "train", train=False)
    (tmp_path / "train" / "broken.png").write_bytes(b"not a png")
    _mask(tmp_path / "trainannot" / "broken.png", [1])
    dataset = build_dataset({"name": "camvid", "root": str(tmp_path)}, "train", train=False)
    with pytest.raises(OSError, match="cannot read image .*broken.png"):
        dataset[0]
