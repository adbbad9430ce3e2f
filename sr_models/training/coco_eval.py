"""COCO box and mask AP through pycocotools' `COCOeval` (the metric of Table IX(a))."""
from __future__ import annotations

import contextlib
import io
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

__all__ = ["to_coco_results", "coco_metrics", "STAT_NAMES"]

STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl")  # the first six of COCOeval.stats


def to_coco_results(output: Dict[str, torch.Tensor], image_id: int,
                    mask_threshold: float = 0.5) -> Tuple[List[dict], List[dict]]:
    """One image's torchvision detections -> COCO result records (bbox records, segm records).

    Boxes XYXY -> [x, y, w, h]; soft masks (N, 1, H, W) thresholded at `mask_threshold` and RLE-encoded. Labels
    are taken as COCO category ids (the loaders' convention).
    """
    boxes = output["boxes"].detach().cpu().double()
    boxes[:, 2:] -= boxes[:, :2]
    scores, labels = output["scores"].tolist(), output["labels"].tolist()
    bbox = [dict(image_id=image_id, category_id=c, bbox=b, score=s) for b, s, c in zip(boxes.tolist(), scores, labels)]
    segm = []
    if "masks" in output:
        binary = (output["masks"][:, 0] > mask_threshold).cpu().numpy().astype(np.uint8)
        for mask, s, c in zip(binary, scores, labels):
            rle = mask_utils.encode(np.asfortranarray(mask))
            rle["counts"] = rle["counts"].decode("ascii")
            segm.append(dict(image_id=image_id, category_id=c, segmentation=rle, score=s))
    return bbox, segm


def _evaluate(coco_gt: COCO, results: List[dict], iou_type: str, image_ids: Optional[Sequence[int]]) -> List[float]:
    if not results:
        return [0.0] * len(STAT_NAMES)
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its tables
        evaluator = COCOeval(coco_gt, coco_gt.loadRes(results), iou_type)
        if image_ids is not None:
            evaluator.params.imgIds = list(image_ids)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator.stats[:len(STAT_NAMES)].tolist()


def coco_metrics(coco_gt: COCO, bbox_results: List[dict], segm_results: List[dict],
                 image_ids: Optional[Sequence[int]] = None) -> Dict[str, Optional[float]]:
    """`bbox_AP`, `bbox_AP50`, ... `segm_APl` in percent (None where COCOeval has no ground truth: -1).

    `image_ids` restricts the evaluation to the images that were predicted (all images of `coco_gt` by default);
    no detection at all counts as AP 0.
    """
    metrics: Dict[str, Optional[float]] = {}
    for iou_type, results in (("bbox", bbox_results), ("segm", segm_results)):
        for name, value in zip(STAT_NAMES, _evaluate(coco_gt, results, iou_type, image_ids)):
            metrics[f"{iou_type}_{name}"] = None if value < 0 else 100.0 * value
    return metrics
