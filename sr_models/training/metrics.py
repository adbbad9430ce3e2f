"""Segmentation and classification metrics."""
from __future__ import annotations

from typing import Dict, Sequence

import torch

from ..constants import IGNORE_INDEX

__all__ = ["confusion_matrix", "segmentation_metrics", "topk_correct"]


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int = IGNORE_INDEX):
    """(num_classes, num_classes) counts, rows = ground truth, columns = prediction; ignored pixels skipped."""
    valid = target != ignore_index
    index = target[valid].long() * num_classes + pred[valid].long()
    return torch.bincount(index, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def segmentation_metrics(confusion: torch.Tensor, label_names: Sequence[str],
                         large_object_classes: Sequence[str] = ()) -> Dict[str, object]:
    """mIoU (percent) over the classes present in the ground truth or the predictions, per-class IoU, pixel accuracy."""
    confusion = confusion.double()
    intersection = confusion.diag()
    union = confusion.sum(0) + confusion.sum(1) - intersection
    present = union > 0
    iou = torch.where(present, intersection / union.clamp(min=1), torch.zeros_like(union))
    per_class = {name: round(100 * iou[i].item(), 2) for i, name in enumerate(label_names) if present[i]}
    large = [per_class[name] for name in large_object_classes if name in per_class]
    return {
        "mIoU": round(100 * iou[present].mean().item(), 2) if present.any() else 0.0,
        "pixel_accuracy": round(100 * (intersection.sum() / confusion.sum().clamp(min=1)).item(), 2),
        "per_class_iou": per_class,
        "large_object_mIoU": round(sum(large) / len(large), 2) if large else None,
        "large_object_classes": list(large_object_classes),
    }


def topk_correct(logits: torch.Tensor, labels: torch.Tensor, ks: Sequence[int] = (1, 5)) -> Dict[int, int]:
    """Number of samples whose label is among the top-k logits, for each k."""
    top = logits.topk(min(max(ks), logits.shape[1]), dim=1).indices
    hits = top == labels[:, None]
    return {k: int(hits[:, :k].any(dim=1).sum()) for k in ks}
