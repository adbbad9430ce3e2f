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
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # ImageNet's, the default of every data set here


def _image(path, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)).save(path)


def _bands(values):
    """An (H, W) uint8 map of vertical bands, one per raw label value."""
    mask = np.zeros((H, W), np.uint8)
    for i, value in enumerate(values):
        mask[:, i * W // len(values):(i + 1) * W // len(values)] = value
    return mask


def _mask(path, values):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(_bands(values)).save(path)


def _band_labels(dataset, index=0, bands=4):
    """The train id found in each band of item `index` (each band must hold a single value)."""
    labels = dataset[index]["labels"]
    found = []
    for i in range(bands):
        band = labels[:, i * W // bands:(i + 1) * W // bands].unique().tolist()
        assert len(band) == 1, f"band {i} holds several labels {band}"
        found.append(band[0])
    return found


def _cityscapes(root, split, names):
    for city, name in names:
        _image(root / "leftImg8bit" / split / city / f"{name}_leftImg8bit.png")
        _mask(root / "gtFine" / split / city / f"{name}_gtFine_labelIds.png", [0, 7, 26, 33])


def _camvid(root, split, count=1):
    for i in range(count):
        _image(root / split / f"0001TP_00{i}.png", seed=i)
        _mask(root / f"{split}annot" / f"0001TP_00{i}.png", [0, 8, 10, 11])


def test_cityscapes_maps_label_ids_to_train_ids(tmp_path):
    _cityscapes(tmp_path, "val", [("aachen", "aachen_000000_000019"), ("bremen", "bremen_000001_000019")])
    dataset = build_dataset({"name": "cityscapes", "root": str(tmp_path)}, "val", train=False)
    assert len(dataset) == 2 and dataset.info.num_classes == 19
    # labelId 0 (unlabeled) -> ignore, 7 road -> 0, 26 car -> 13, 33 bicycle -> 18
    assert _band_labels(dataset) == [255, 0, 13, 18]
    assert dataset.info.label_names[13] == "car" and dataset.info.palette[13] == (0, 0, 142)


def test_cityscapes_trainval_joins_the_train_and_val_folders(tmp_path):
    _cityscapes(tmp_path, "train", [("aachen", "aachen_000000_000019"), ("aachen", "aachen_000001_000019")])
    _cityscapes(tmp_path, "val", [("bremen", "bremen_000001_000019")])
    for split in ("trainval", "train+val"):
        dataset = build_dataset({"name": "cityscapes", "root": str(tmp_path)}, split, train=False)
        assert len(dataset) == 3 and dataset.pairs[-1][0].parent.name == "bremen"


def test_ade20k_shifts_labels_and_ignores_zero(tmp_path):
    base = tmp_path / "ADEChallengeData2016"
    _image(base / "images" / "validation" / "ADE_val_00000001.jpg")
    _mask(base / "annotations" / "validation" / "ADE_val_00000001.png", [0, 1, 13, 150])
    dataset = build_dataset({"name": "ade20k", "root": str(tmp_path)}, "val", train=False)
    assert len(dataset) == 1 and dataset.info.num_classes == 150
    assert _band_labels(dataset) == [255, 0, 12, 149] and dataset.info.label_names[12] == "person"


def test_pascal_context_reads_the_split_file(tmp_path):
    base = tmp_path / "VOCdevkit" / "VOC2010"
    for name in ["2008_000002", "2008_000003"]:
        _image(base / "JPEGImages" / f"{name}.jpg")
        _mask(base / "SegmentationClassContext" / f"{name}.png", [0, 1, 5, 59])
    (base / "ImageSets" / "SegmentationContext").mkdir(parents=True)
    (base / "ImageSets" / "SegmentationContext" / "train.txt").write_text("2008_000002\n")
    dataset = build_dataset({"name": "pascal_context", "root": str(tmp_path)}, "train", train=False)
    assert len(dataset) == 1 and dataset.info.num_classes == 59
    assert _band_labels(dataset) == [255, 0, 4, 58] and dataset.info.label_names[58] == "wood"


def test_camvid_void_is_ignored(tmp_path):
    _camvid(tmp_path, "test", count=2)
    dataset = build_dataset({"name": "camvid", "root": str(tmp_path)}, "test", train=False)
    assert len(dataset) == 2 and dataset.info.num_classes == 11
    assert _band_labels(dataset) == [0, 8, 10, 255] and dataset.info.label_names[8] == "car"


def test_palette_label_maps_are_read_as_indices_not_colours(tmp_path):
    _image(tmp_path / "val" / "a.png")
    mask = Image.fromarray(_bands([0, 3, 8, 11]), mode="L").convert("P")
    mask.putpalette([255 - i for i in range(256)] * 3)  # colours that differ from the indices
    (tmp_path / "valannot").mkdir()
    mask.save(tmp_path / "valannot" / "a.png")
    with Image.open(tmp_path / "valannot" / "a.png") as stored:
        assert stored.mode == "P"
    dataset = build_dataset({"name": "camvid", "root": str(tmp_path)}, "val", train=False)
    assert _band_labels(dataset) == [0, 3, 8, 255]


def test_colour_coded_label_maps_are_refused(tmp_path):
    _image(tmp_path / "val" / "a.png")
    (tmp_path / "valannot").mkdir()
    Image.fromarray(np.full((H, W, 3), (128, 64, 128), np.uint8)).save(tmp_path / "valannot" / "a.png")
    dataset = build_dataset({"name": "camvid", "root": str(tmp_path)}, "val", train=False)
    with pytest.raises(ValueError, match=r"valannot/a.png: the label map is colour-coded"):
        dataset[0]


def _hf_segmentation(path, splits=("train",)):
    import datasets

    features = datasets.Features({"img": datasets.Image(), "seg": datasets.Image()})
    parts = {}
    for s, split in enumerate(splits):
        images = [Image.fromarray(np.full((H, W, 3), 40 * i, np.uint8)) for i in range(3)]
        masks = [Image.fromarray(_bands([i, i + 1, 0, 9])) for i in range(3)]
        parts[split] = datasets.Dataset.from_dict({"img": images[s:], "seg": masks[s:]}, features=features)
    (datasets.DatasetDict(parts) if len(splits) > 1 else parts[splits[0]]).save_to_disk(str(path))


def test_hf_datasets_loader_with_configured_columns_and_label_map(tmp_path):
    _hf_segmentation(tmp_path / "ds")
    cfg = {"name": "hf", "root": str(tmp_path / "ds"), "image_column": "img", "label_column": "seg",
           "label_names": ["a", "b", "c"], "label_map": {"0": 255, "1": 0, "2": 1, "3": 2}}  # keys as in JSON
    dataset = build_dataset(cfg, "train", train=False)
    assert len(dataset) == 3 and dataset.info.num_classes == 3 and dataset.info.id2label[2] == "c"
    assert _band_labels(dataset, 2) == [1, 2, 255, 255]  # 2 -> 1, 3 -> 2, 0 -> ignore, unmapped 9 -> ignore
    assert _band_labels(build_dataset({**cfg, "label_map": None}, "train", train=False), 2) == [2, 3, 0, 9]
    with pytest.raises(ValueError, match=r"columns \['mask'\] not in the data set"):
        build_dataset({**cfg, "label_column": "mask"}, "train", train=False)
    with pytest.raises(ValueError, match="needs data.label_set .* or data.label_names"):
        build_dataset({**cfg, "label_names": None}, "train", train=False)


def test_hf_datasets_splits_of_a_dataset_dict_can_be_joined(tmp_path):
    _hf_segmentation(tmp_path / "ds", splits=("train", "validation"))
    cfg = {"name": "hf", "root": str(tmp_path / "ds"), "image_column": "img", "label_column": "seg",
           "label_set": "camvid"}
    assert len(build_dataset(cfg, "validation", train=False)) == 2
    dataset = build_dataset(cfg, "train+validation", train=False)
    assert len(dataset) == 5 and dataset.info.name == "camvid"
    with pytest.raises(ValueError, match=r"split 'test' not in .*splits: \['train', 'validation'\]"):
        build_dataset(cfg, "test", train=False)


def test_training_transform_crops_flips_and_pads_with_ignore():
    image = Image.fromarray(np.tile(np.arange(W, dtype=np.uint8)[None, :, None], (H, 1, 3)))
    mask = np.tile(np.arange(W, dtype=np.uint8)[None], (H, 1))
    transform = SegmentationTransform(True, crop_size=(48, 48), scale_range=(1.0, 1.0), flip=True)
    flipped = 0
    for seed in range(20):
        pixels, labels = transform(image, mask, torch.Generator().manual_seed(seed))
        assert pixels.shape == (3, 48, 48) and pixels.dtype == torch.float32
        assert labels.shape == (48, 48) and labels.dtype == torch.long
        assert (labels[H:] == 255).all() and (pixels[:, H:] == 0).all()  # padded rows: ignore / zero
        assert (labels[:H] != 255).all()
        row = labels[0]
        flipped += int(row[0] > row[-1])
        # image and mask move together: the image's column value equals the mask's label, flipped or not
        denormalised = (pixels[0, 0] * STD[0] + MEAN[0]) * 255
        assert torch.allclose(denormalised, row.float(), atol=1.0)
    assert 0 < flipped < 20


def test_no_flip_means_no_flip():
    image = Image.fromarray(np.tile(np.arange(W, dtype=np.uint8)[None, :, None], (H, 1, 3)))
    mask = np.tile(np.arange(W, dtype=np.uint8)[None], (H, 1))
    transform = SegmentationTransform(True, crop_size=(32, 32), scale_range=(1.0, 1.0), flip=False)
    for seed in range(10):
        row = transform(image, mask, torch.Generator().manual_seed(seed))[1][0]
        assert (row.diff() == 1).all()


@pytest.mark.parametrize("crop_size", [(32, 32), (24, 56), (64, 96)])
def test_training_crops_have_exactly_crop_size_at_every_scale(crop_size):
    image, mask = Image.new("RGB", (W, H)), np.ones((H, W), np.uint8)
    transform = SegmentationTransform(True, crop_size=crop_size, scale_range=(0.5, 2.0))
    for seed in range(10):
        pixels, labels = transform(image, mask, torch.Generator().manual_seed(seed))
        assert pixels.shape == (3, *crop_size) and labels.shape == crop_size
        assert set(labels.unique().tolist()) <= {1, 255}  # nearest-neighbour masks: no interpolated labels


def test_transform_randomness_comes_from_the_generator():
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8))
    mask = np.zeros((H, W), np.uint8)
    transform = SegmentationTransform(True, crop_size=(32, 32), scale_range=(0.5, 2.0))
    a = transform(image, mask, torch.Generator().manual_seed(1))
    b = transform(image, mask, torch.Generator().manual_seed(1))
    c = transform(image, mask, torch.Generator().manual_seed(2))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and not torch.equal(a[0], c[0])


def test_augmentation_is_seeded_by_epoch_and_index(tmp_path):
    _camvid(tmp_path, "train", count=2)
    cfg = {"name": "camvid", "root": str(tmp_path), "crop_size": [24, 24], "scale_range": [0.5, 2.0]}
    dataset = build_dataset(cfg, "train", train=True)
    first = dataset[1]["pixel_values"]
    assert torch.equal(dataset[1]["pixel_values"], first)  # same (seed, epoch, index): same sample
    dataset.set_epoch(1, seed=0)
    assert not torch.equal(dataset[1]["pixel_values"], first)


def test_eval_transform_normalises_the_whole_image():
    image = Image.new("RGB", (W, H), (255, 0, 128))
    pixels, labels = SegmentationTransform(False)(image, np.full((H, W), 7, np.uint8))
    assert pixels.shape == (3, H, W) and labels.shape == (H, W) and (labels == 7).all()
    expected = [(v / 255 - m) / s for v, m, s in zip((255, 0, 128), MEAN, STD)]
    assert torch.allclose(pixels[:, 0, 0], torch.tensor(expected), atol=1e-5)


def test_items_without_transform_are_unnormalised_tensors(tmp_path):
    _camvid(tmp_path, "val")
    dataset = build_dataset({"name": "camvid", "root": str(tmp_path)}, "val", train=False)
    dataset.transform = None
    item = dataset[0]
    with Image.open(tmp_path / "val" / "0001TP_000.png") as stored:
        image = np.asarray(stored)
    assert item["pixel_values"].dtype == torch.float32 and item["pixel_values"].shape == (3, H, W)
    assert torch.allclose(item["pixel_values"] * 255, torch.tensor(image).permute(2, 0, 1).float(), atol=1e-3)
    assert item["labels"].dtype == torch.long and _band_labels(dataset) == [0, 8, 10, 255]


def test_classification_image_folder_with_timm_transform(tmp_path):
    for label in ["cat", "dog"]:
        for i in range(2):
            _image(tmp_path / "train" / label / f"{i}.png", seed=i)
    cfg = {"name": "imagefolder", "root": str(tmp_path), "transform": {"input_size": (3, 32, 32)}}
    dataset = build_dataset(cfg, "train", train=True)
    assert isinstance(dataset, ImageFolderClassification) and dataset.label_names == ["cat", "dog"]
    item = dataset[3]
    assert item["labels"] == 1 and item["pixel_values"].shape == (3, 32, 32)
    assert item["pixel_values"].min() < 0  # normalised
    assert build_dataset(cfg, "train", train=False)[0]["pixel_values"].shape == (3, 32, 32)


def test_hf_classification_dataset(tmp_path):
    import datasets

    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["x", "y"])})
    ds = datasets.Dataset.from_dict({"image": [Image.new("RGB", (8, 8))] * 2, "label": [0, 1]}, features=features)
    ds.save_to_disk(str(tmp_path / "cls"))
    dataset = build_dataset({"name": "hf", "task": "classification", "root": str(tmp_path / "cls"),
                             "transform": {"input_size": (3, 16, 16)}}, "train", train=False)
    assert isinstance(dataset, HFClassificationDataset) and dataset.label_names == ["x", "y"]
    assert dataset[1]["labels"] == 1 and dataset[1]["pixel_values"].shape == (3, 16, 16)


def test_missing_root_unknown_name_and_empty_split_fail_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="leftImg8bit/val does not exist; expected the layout"):
        build_dataset({"name": "cityscapes", "root": str(tmp_path)}, "val", train=False)
    with pytest.raises(ValueError, match="data.root is required for data.name='ade20k'"):
        build_dataset({"name": "ade20k"}, "val", train=False)
    with pytest.raises(FileNotFoundError, match=r"data.root=.*missing does not exist"):
        build_dataset({"name": "hf", "root": str(tmp_path / "missing"), "label_set": "ade20k"}, "val", train=False)
    with pytest.raises(FileNotFoundError, match=r"imagenet/val does not exist; expected the layout"):
        build_dataset({"name": "imagefolder", "root": str(tmp_path / "imagenet")}, "val", train=False)
    with pytest.raises(ValueError, match="unknown data.name='kitti'; choose one of"):
        build_dataset({"name": "kitti", "root": str(tmp_path)}, "val", train=False)
    with pytest.raises(ValueError, match="data.task='detection' must be one of"):
        build_dataset({"name": "hf", "task": "detection", "root": str(tmp_path)}, "val", train=False)
    (tmp_path / "train").mkdir()
    (tmp_path / "trainannot").mkdir()
    with pytest.raises(FileNotFoundError, match="no images found under .*train"):
        build_dataset({"name": "camvid", "root": str(tmp_path)}, "train", train=False)
    _image(tmp_path / "train" / "a.png")
    with pytest.raises(FileNotFoundError, match="1 label maps are missing, e.g. .*trainannot/a.png"):
        build_dataset({"name": "camvid", "root": str(tmp_path)}, "train", train=False)


def test_corrupt_image_files_fail_naming_the_file(tmp_path):
    _camvid(tmp_path, "train")
    (tmp_path / "train" / "broken.png").write_bytes(b"not a png")
    _mask(tmp_path / "trainannot" / "broken.png", [1])
    dataset = build_dataset({"name": "camvid", "root": str(tmp_path)}, "train", train=False)
    with pytest.raises(OSError, match="cannot read image .*train/broken.png"):
        dataset[1]
    (tmp_path / "cls" / "val" / "cat").mkdir(parents=True)
    (tmp_path / "cls" / "val" / "cat" / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    classification = build_dataset({"name": "imagefolder", "root": str(tmp_path / "cls")}, "val", train=False)
    with pytest.raises(OSError, match="cannot read image .*cat/broken.jpg"):
        classification[0]


def test_corrupt_image_in_a_hf_dataset_fails_naming_the_row(tmp_path):
    import datasets

    features = datasets.Features({"image": datasets.Image(), "annotation": datasets.Image()})
    mask = Image.fromarray(np.zeros((H, W), np.uint8))
    rows = {"image": [Image.new("RGB", (W, H)), {"bytes": b"garbage", "path": None}], "annotation": [mask, mask]}
    datasets.Dataset.from_dict(rows, features=features).save_to_disk(str(tmp_path / "ds"))
    dataset = build_dataset({"name": "hf", "root": str(tmp_path / "ds"), "label_set": "ade20k"}, "train", False)
    assert dataset[0]["labels"].shape == (H, W)
    with pytest.raises(OSError, match="cannot read row 1 of data set 'ade20k'"):
        dataset[1]


def test_crop_larger_than_the_images_is_refused_for_training_only(tmp_path):
    _camvid(tmp_path, "train")
    cfg = {"name": "camvid", "root": str(tmp_path), "crop_size": [100, 100], "scale_range": [0.5, 2.0]}
    with pytest.raises(ValueError, match=r"data.crop_size=\[100, 100\] is larger than the images \(40x60, x2.0"):
        build_dataset(cfg, "train", train=True)
    assert len(build_dataset(cfg, "train", train=False)) == 1  # evaluation does not crop
    assert build_dataset({**cfg, "crop_size": [64, 64]}, "train", train=True)[0]["labels"].shape == (64, 64)


def test_a_file_written_atomically_is_complete_or_absent_with_writers_interleaved(tmp_path):
    from sr_models.data.atomic import write_atomically

    target = tmp_path / "instances_val.json"
    seen = []

    def outer(tmp):
        tmp.write_text('{"half": ')
        seen.append(target.exists())
        write_atomically(target, lambda inner: inner.write_text('{"writer": 2}'))  # another writer finishes first
        seen.append(target.read_text())  # complete: the other writer's file, never this half-written one
        tmp.write_text('{"writer": 1}')

    write_atomically(target, outer)
    assert seen == [False, '{"writer": 2}'] and target.read_text() == '{"writer": 1}'

    def failing(tmp):
        tmp.write_text("partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomically(target, failing)
    assert target.read_text() == '{"writer": 1}' and [p.name for p in tmp_path.iterdir()] == ["instances_val.json"]
