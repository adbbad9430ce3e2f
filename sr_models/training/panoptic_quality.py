"""Panoptic quality (Kirillov et al., "Panoptic Segmentation", CVPR 2019) for all / things / stuff classes.

PQ = Σ_TP IoU / (|TP| + ½|FP| + ½|FN|) = SQ · RQ per class, averaged over the classes that occur (in the ground
truth or the predictions), as the COCO panoptic API does. Segment matching (IoU > 0.5) is torchmetrics'
`PanopticQuality`; this module turns our outputs into its input and splits the averages.

One adaptation keeps the IoU the COCO one: the COCO API leaves out of a match's union only the predicted segment's
pixels on ground-truth void, while torchmetrics also leaves out the ground-truth segment's pixels that the
prediction left unassigned (void), which inflates the IoU of partly missed segments. Unassigned predicted pixels are
therefore given a category of their own (`UNASSIGNED`, a stuff class that is never averaged) instead of void.
"""
from __future__ import annotations

from typing import Dict, List, Sequence

import torch
from torchmetrics.detection import PanopticQuality

__all__ = ["PanopticEvaluator", "to_category_instance"]

VOID = -1  # in targets: unlabelled pixels
UNASSIGNED = -2  # in predictions: pixels no segment covers (see the module docstring)


def to_category_instance(panoptic_seg: torch.Tensor, segments_info: Sequence[Dict]) -> torch.Tensor:
    """(H, W) segment ids + their `segments_info` -> (H, W, 2) pairs (category_id, segment id); id 0 is void."""
    category = torch.full_like(panoptic_seg, VOID, dtype=torch.long)
    for segment in segments_info:
        category[panoptic_seg == segment["id"]] = int(segment["category_id"])
    return torch.stack([category, panoptic_seg.long()], dim=-1)


class PanopticEvaluator:
    """Accumulates images, then reports PQ, SQ, RQ (percent) over all, thing and stuff categories."""

    def __init__(self, thing_ids: Sequence[int], stuff_ids: Sequence[int]):
        self.thing_ids, self.stuff_ids = sorted(thing_ids), sorted(stuff_ids)
        if min(self.thing_ids + self.stuff_ids, default=0) < 0:
            raise ValueError(f"category ids must be >= 0 (negative ids mark void); got things={self.thing_ids}, "
                             f"stuff={self.stuff_ids}")
        self.metric = PanopticQuality(things=set(self.thing_ids), stuffs={*self.stuff_ids, UNASSIGNED},
                                      allow_unknown_preds_category=True, return_sq_and_rq=True,
                                      return_per_class=True)
        num_things = len(self.thing_ids)  # continuous ids: things, then UNASSIGNED, then the stuff classes
        self._kept = torch.tensor([i for i in range(num_things + 1 + len(self.stuff_ids)) if i != num_things])

    def update(self, prediction: torch.Tensor, target: torch.Tensor) -> None:
        """`prediction`, `target`: (H, W, 2) category/instance pairs (`to_category_instance`)."""
        if prediction.shape != target.shape:
            raise ValueError(f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} differ in size")
        prediction = prediction.clone()
        prediction[..., 0][prediction[..., 0] == VOID] = UNASSIGNED
        self.metric.update(prediction[None].cpu(), target[None].cpu())

    def compute(self) -> Dict[str, float]:
        """PQ/SQ/RQ and their `_th` (things) and `_st` (stuff) averages, in percent."""
        # (C, 3): pq, sq, rq; classes ordered things then stuff (UNASSIGNED first: the smallest id), sorted
        per_class = self.metric.compute()[self._kept]
        m = self.metric
        occurs = ((m.true_positives + m.false_positives + m.false_negatives) > 0)[self._kept]
        things = torch.zeros_like(occurs)
        things[:len(self.thing_ids)] = True
        out: Dict[str, float] = {}
        for suffix, subset in (("", occurs), ("_th", occurs & things), ("_st", occurs & ~things)):
            values = per_class[subset].double().mean(0) if subset.any() else torch.zeros(3, dtype=torch.float64)
            for name, value in zip(("PQ", "SQ", "RQ"), values.tolist()):
                out[name + suffix] = round(100 * value, 3)
        out["per_class_PQ"] = {int(c): round(100 * float(v), 3)
                               for c, v, o in zip(self.thing_ids + self.stuff_ids, per_class[:, 0], occurs) if o}
        return out


def evaluate_panoptic(predictions: List[torch.Tensor], targets: List[torch.Tensor], thing_ids: Sequence[int],
                      stuff_ids: Sequence[int]) -> Dict[str, float]:
    """PQ/SQ/RQ over paired lists of (H, W, 2) category/instance maps."""
    evaluator = PanopticEvaluator(thing_ids, stuff_ids)
    for prediction, target in zip(predictions, targets):
        evaluator.update(prediction, target)
    return evaluator.compute()
