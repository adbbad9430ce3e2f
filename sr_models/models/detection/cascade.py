"""Cascade Mask R-CNN (Cai & Vasconcelos): three box stages at IoU 0.5 / 0.6 / 0.7, each with a mask head.

Every stage is a torchvision `RoIHeads` (its own matcher, sampler, box coder, box head, predictor, mask head);
stage t re-classifies and refines the boxes of stage t-1. As in mmdetection's Cascade Mask R-CNN: class-agnostic
box regression with coder weights (10, 10, 5, 5), (20, 20, 10, 10), (30, 30, 15, 15), stage losses weighted
1, 0.5, 0.25, and at inference the class scores and the mask probabilities averaged over the stages.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.roi_heads import (
    RoIHeads, fastrcnn_loss, maskrcnn_inference, maskrcnn_loss,
)
from torchvision.ops import MultiScaleRoIAlign, boxes as box_ops

__all__ = ["CascadeRoIHeads", "CascadeMaskRCNN", "CASCADE_IOUS", "CASCADE_BOX_WEIGHTS", "CASCADE_LOSS_WEIGHTS"]

CASCADE_IOUS = (0.5, 0.6, 0.7)
CASCADE_BOX_WEIGHTS = ((10.0, 10.0, 5.0, 5.0), (20.0, 20.0, 10.0, 10.0), (30.0, 30.0, 15.0, 15.0))
CASCADE_LOSS_WEIGHTS = (1.0, 0.5, 0.25)


def _stage(out_channels: int, num_classes: int, iou: float, weights: Tuple[float, ...], score_thresh: float,
           nms_thresh: float, detections_per_img: int) -> RoIHeads:
    """One cascade stage: torchvision's box and mask parts, class-agnostic regression (4 outputs)."""
    box_head = TwoMLPHead(out_channels * 7 * 7, 1024)
    predictor = FastRCNNPredictor(1024, num_classes)
    predictor.bbox_pred = nn.Linear(1024, 4)  # class-agnostic, as in Cascade R-CNN
    return RoIHeads(
        MultiScaleRoIAlign(["0", "1", "2", "3"], 7, 2), box_head, predictor,
        fg_iou_thresh=iou, bg_iou_thresh=iou, batch_size_per_image=512, positive_fraction=0.25,
        bbox_reg_weights=weights, score_thresh=score_thresh, nms_thresh=nms_thresh,
        detections_per_img=detections_per_img,
        mask_roi_pool=MultiScaleRoIAlign(["0", "1", "2", "3"], 14, 2),
        mask_head=MaskRCNNHeads(out_channels, (256, 256, 256, 256), 1),
        mask_predictor=MaskRCNNPredictor(256, 256, num_classes),
    )


class CascadeRoIHeads(nn.Module):
    """The cascade of `stages` (`RoIHeads`), a drop-in for torchvision's `roi_heads` (same inputs and outputs)."""

    def __init__(self, stages: Sequence[RoIHeads], loss_weights: Sequence[float] = CASCADE_LOSS_WEIGHTS):
        super().__init__()
        if len(stages) != len(loss_weights):
            raise ValueError(f"{len(stages)} cascade stages but {len(loss_weights)} loss weights")
        self.stages = nn.ModuleList(stages)
        self.loss_weights = tuple(loss_weights)

    @staticmethod
    def _boxes(stage: RoIHeads, features, proposals: List[torch.Tensor], image_shapes):
        logits, deltas = stage.box_predictor(stage.box_head(stage.box_roi_pool(features, proposals, image_shapes)))
        refined = stage.box_coder.decode(deltas, proposals)[:, 0]
        sizes = [len(p) for p in proposals]
        refined = [box_ops.clip_boxes_to_image(b, s) for b, s in zip(refined.split(sizes), image_shapes)]
        return logits, deltas, refined

    @staticmethod
    def _masks(stage: RoIHeads, features, boxes: List[torch.Tensor], image_shapes) -> torch.Tensor:
        return stage.mask_predictor(stage.mask_head(stage.mask_roi_pool(features, boxes, image_shapes)))

    def forward(self, features: Dict[str, torch.Tensor], proposals: List[torch.Tensor],
                image_shapes: List[Tuple[int, int]], targets: Optional[List[Dict[str, torch.Tensor]]] = None):
        if self.training:
            return [], self._losses(features, proposals, image_shapes, targets)
        return self._detect(features, proposals, image_shapes), {}

    def _losses(self, features, proposals, image_shapes, targets) -> Dict[str, torch.Tensor]:
        losses: Dict[str, torch.Tensor] = {}
        for t, (stage, weight) in enumerate(zip(self.stages, self.loss_weights)):
            proposals, matched, labels, regression_targets = stage.select_training_samples(proposals, targets)
            logits, deltas, refined = self._boxes(stage, features, proposals, image_shapes)
            num_classes = logits.shape[1]
            loss_cls, loss_box = fastrcnn_loss(logits, deltas.repeat(1, num_classes), labels, regression_targets)
            positive = [torch.where(label > 0)[0] for label in labels]
            mask_boxes = [p[i] for p, i in zip(proposals, positive)]
            mask_logits = self._masks(stage, features, mask_boxes, image_shapes)
            loss_mask = maskrcnn_loss(mask_logits, mask_boxes, [tt["masks"] for tt in targets],
                                      [tt["labels"] for tt in targets], [m[i] for m, i in zip(matched, positive)])
            losses.update({f"loss_classifier_s{t}": weight * loss_cls, f"loss_box_reg_s{t}": weight * loss_box,
                           f"loss_mask_s{t}": weight * loss_mask})
            proposals = [b.detach() for b in refined]
        return losses

    def _detect(self, features, proposals, image_shapes) -> List[Dict[str, torch.Tensor]]:
        scores = []
        for stage in self.stages:
            logits, deltas, refined = self._boxes(stage, features, proposals, image_shapes)
            scores.append(F.softmax(logits, -1))
            if stage is not self.stages[-1]:
                proposals = refined
        last = self.stages[-1]
        num_classes = logits.shape[1]
        mean_scores = torch.stack(scores).mean(0)
        boxes, box_scores, labels = last.postprocess_detections(
            mean_scores.log(), deltas.repeat(1, num_classes), proposals, image_shapes)
        probs = [maskrcnn_inference(self._masks(stage, features, boxes, image_shapes), labels) for stage in self.stages]
        masks = [torch.stack(per_image).mean(0) for per_image in zip(*probs)]
        return [dict(boxes=b, labels=lb, scores=s, masks=m) for b, lb, s, m in zip(boxes, labels, box_scores, masks)]


class CascadeMaskRCNN(MaskRCNN):
    """torchvision's Mask R-CNN (transform, backbone, RPN) with `CascadeRoIHeads` in place of its RoI heads."""

    def __init__(self, backbone: nn.Module, num_classes: int, ious: Sequence[float] = CASCADE_IOUS,
                 box_weights: Sequence[Tuple[float, ...]] = CASCADE_BOX_WEIGHTS,
                 loss_weights: Sequence[float] = CASCADE_LOSS_WEIGHTS, box_score_thresh: float = 0.05,
                 box_nms_thresh: float = 0.5, box_detections_per_img: int = 100, **kwargs):
        super().__init__(backbone, num_classes, box_score_thresh=box_score_thresh, box_nms_thresh=box_nms_thresh,
                         box_detections_per_img=box_detections_per_img, **kwargs)
        post = dict(score_thresh=box_score_thresh, nms_thresh=box_nms_thresh, detections_per_img=box_detections_per_img)
        self.roi_heads = CascadeRoIHeads(
            [_stage(backbone.out_channels, num_classes, iou, w, **post) for iou, w in zip(ious, box_weights)],
            loss_weights)
