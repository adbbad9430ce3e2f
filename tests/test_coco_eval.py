"""COCO AP through COCOeval: perfect predictions score 100, a hand-computed partial match scores what it should."""
import pytest
import torch
from pycocotools.coco import COCO

from sr_models.training.coco_eval import coco_metrics, to_coco_results

GT_BOXES = [[10, 10, 20, 20], [40, 40, 50, 50], [70, 10, 80, 20]]  # XYXY, three 10x10 cars in a 100x100 image


def _ground_truth() -> COCO:
    coco = COCO()
    coco.dataset = {
        "images": [{"id": 1, "file_name": "a.png", "height": 100, "width": 100}],
        "categories": [{"id": 1, "name": "car"}],
        "annotations": [{"id": i + 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 100.0,
                         "bbox": [x0, y0, x1 - x0, y1 - y0],
                         "segmentation": [[x0, y0, x1, y0, x1, y1, x0, y1]]}
                        for i, (x0, y0, x1, y1) in enumerate(GT_BOXES)],
    }
    coco.createIndex()
    return coco


def _detections(boxes, scores):
    masks = torch.zeros(len(boxes), 1, 100, 100)
    for mask, (x0, y0, x1, y1) in zip(masks, boxes):
        mask[0, y0:y1, x0:x1] = 0.9
    return dict(boxes=torch.tensor(boxes, dtype=torch.float32), scores=torch.tensor(scores),
                labels=torch.ones(len(boxes), dtype=torch.int64), masks=masks)


def test_predictions_equal_to_the_ground_truth_score_100():
    bbox, segm = to_coco_results(_detections(GT_BOXES, [0.9, 0.8, 0.7]), image_id=1)
    metrics = coco_metrics(_ground_truth(), bbox, segm)
    for kind in ("bbox", "segm"):
        assert metrics[f"{kind}_AP"] == metrics[f"{kind}_AP50"] == metrics[f"{kind}_AP75"] == pytest.approx(100)
        assert metrics[f"{kind}_APs"] == pytest.approx(100) and metrics[f"{kind}_APl"] is None  # no large objects


def test_a_partial_match_scores_the_hand_computed_ap():
    """Car 1 found exactly (score 0.9); car 2 by a box 6 px too tall (IoU 100/160 = 0.625, score 0.8); car 3 missed.

    COCO AP = mean over 101 recall points of the interpolated precision (1 up to the recall reached), over the IoU
    thresholds 0.50:0.95. IoU >= 0.5, 0.55, 0.6: recall 2/3 -> 67 points -> 67/101. IoU >= 0.65 ... 0.95 (7
    thresholds): recall 1/3 -> 34/101. AP = (3 * 67 + 7 * 34) / 1010 = 43.47 %.
    """
    bbox, segm = to_coco_results(_detections([GT_BOXES[0], [40, 40, 50, 56]], [0.9, 0.8]), image_id=1)
    metrics = coco_metrics(_ground_truth(), bbox, segm)
    for kind in ("bbox", "segm"):
        assert metrics[f"{kind}_AP50"] == pytest.approx(100 * 67 / 101, abs=1e-6)
        assert metrics[f"{kind}_AP75"] == pytest.approx(100 * 34 / 101, abs=1e-6)
        assert metrics[f"{kind}_AP"] == pytest.approx(100 * (3 * 67 + 7 * 34) / 1010, abs=1e-6)


def test_no_detection_scores_zero():
    assert coco_metrics(_ground_truth(), [], [])["segm_AP"] == 0.0
