"""Cityscapes through the official tools: labels from cityscapesscripts, our submission PNGs scored by the official
pixel-level evaluator exactly as our metric scores them."""
import importlib
import json
import sys

import numpy as np
import pytest
import torch
from cityscapesscripts.helpers.labels import labels
from PIL import Image

from sr_models.data import build_dataset
from sr_models.data.cityscapes_submission import submission_name, to_label_ids, write_label_ids
from sr_models.data.metadata import CITYSCAPES, CITYSCAPES_LABEL_IDS, CITYSCAPES_TRAIN_IDS
from sr_models.training.metrics import class_iou, confusion_matrix, segmentation_metrics

FRAMES = [("aachen", "aachen_000000_000019"), ("aachen", "aachen_000001_000019"), ("bremen", "bremen_000000_000019")]


def test_label_tables_come_from_the_official_definitions():
    evaluated = [label for label in labels if not label.ignoreInEval]
    assert CITYSCAPES.num_classes == 19 and CITYSCAPES.large_object_classes == ("truck", "bus", "train")
    assert [CITYSCAPES.label_names[label.trainId] for label in evaluated] == [label.name for label in evaluated]
    assert [CITYSCAPES.palette[label.trainId] for label in evaluated] == [label.color for label in evaluated]
    assert CITYSCAPES_TRAIN_IDS[26] == 13 and CITYSCAPES_LABEL_IDS[13] == 26  # car
    assert 0 not in CITYSCAPES_TRAIN_IDS and 29 not in CITYSCAPES_TRAIN_IDS  # unlabeled, caravan: ignored


def test_submission_writer_maps_train_ids_to_label_ids_and_refuses_others(tmp_path):
    path = write_label_ids(torch.tensor([[0, 18], [13, 11]]), tmp_path / "x" / submission_name(
        "leftImg8bit/val/aachen/aachen_000000_000019_leftImg8bit.png"))
    assert path.name == "aachen_000000_000019_labelIds.png"
    written = Image.open(path)
    assert written.mode == "L" and np.asarray(written).tolist() == [[7, 33], [26, 24]]
    with pytest.raises(ValueError, match="train ids 0..19"):
        to_label_ids(np.array([[0, 19]]))


def _tree(root, rng):
    """A small Cityscapes-layout val split: images, labelIds (every id 0..33, void ones included), instanceIds."""
    for city, frame in FRAMES:
        shape = (24, 40)
        gt = rng.integers(0, 34, shape).astype(np.uint8)
        for folder, name, array in [("leftImg8bit", "leftImg8bit", rng.integers(0, 256, (*shape, 3), np.uint8)),
                                    ("gtFine", "gtFine_labelIds", gt), ("gtFine", "gtFine_instanceIds", gt)]:
            (root / folder / "val" / city).mkdir(parents=True, exist_ok=True)
            Image.fromarray(array).save(root / folder / "val" / city / f"{frame}_{name}.png")


def _official_evaluation(root, results, export, monkeypatch):
    """Run `evalPixelLevelSemanticLabeling.main()` as its instructions say: the data set and the results found
    through CITYSCAPES_DATASET / CITYSCAPES_RESULTS (read when the module is imported), the scores exported as JSON.
    Its instance-level score (nIoU) is switched off: it calls `np.in1d`, which NumPy 2.4 removed."""
    monkeypatch.setenv("CITYSCAPES_DATASET", str(root))
    monkeypatch.setenv("CITYSCAPES_RESULTS", str(results))
    monkeypatch.setenv("CITYSCAPES_EXPORT_DIR", str(export))
    export.mkdir()
    name = "cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling"
    evaluator = importlib.reload(sys.modules[name]) if name in sys.modules else importlib.import_module(name)
    monkeypatch.setattr(evaluator.args, "evalInstLevelScore", False)
    monkeypatch.setattr(sys, "argv", ["evalPixelLevelSemanticLabeling"])
    evaluator.main()
    return json.loads((export / "resultPixelLevelSemanticLabeling.json").read_text())


def test_official_evaluator_agrees_with_our_miou_on_our_submission(tmp_path, monkeypatch, capsys):
    rng = np.random.default_rng(0)
    root, results, export = tmp_path / "cityscapes", tmp_path / "results", tmp_path / "export"
    _tree(root, rng)
    dataset = build_dataset({"name": "cityscapes", "root": str(root)}, "val", train=False)
    confusion = torch.zeros(19, 19, dtype=torch.long)
    for index, (image_path, _) in enumerate(dataset.pairs):
        truth = dataset[index]["labels"]
        # a prediction right on about half the pixels, random elsewhere; no prediction of class 16 (train), so the
        # evaluator's rule for a class neither predicted nor present is exercised too
        guess = torch.from_numpy(rng.integers(0, 16, truth.shape))
        prediction = torch.where((torch.rand(truth.shape, generator=torch.Generator().manual_seed(index)) < 0.5)
                                 & (truth != 255) & (truth != 16), truth, guess)
        write_label_ids(prediction, results / image_path.parent.name / submission_name(image_path))
        confusion += confusion_matrix(prediction, truth, 19)
    ours = class_iou(confusion).nanmean().item()

    official = _official_evaluation(root, results, export, monkeypatch)
    assert official["averageScoreClasses"] == pytest.approx(ours, abs=1e-6)
    assert 0.2 < ours < 0.9  # a real comparison, not two empty scores
    for train_id, name in enumerate(CITYSCAPES.label_names):
        assert np.isnan(official["classScores"][name]) == np.isnan(class_iou(confusion)[train_id].item())
    assert segmentation_metrics(confusion, CITYSCAPES.label_names)["mIoU"] == pytest.approx(100 * ours, abs=0.005)
