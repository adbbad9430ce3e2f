"""Segmentation and classification metrics."""
from __future__ import annotations

from typing import Dict, Sequence

import torch

from ..constants import IGNORE_INDEX

__all__ = ["confusion_matrix", "class_iou", "segmentation_metrics", "topk_correct"]


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int = IGNORE_INDEX):
    """(num_classes, num_classes) counts, rows = ground truth, columns = prediction; ignored pixels skipped."""
    valid = target != ignore_index
    index = target[valid].long() * num_classes + pred[valid].long()
    return torch.bincount(index, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def class_iou(confusion: torch.Tensor) -> torch.Tensor:
    """IoU of each class (float64, unrounded) from a confusion matrix; NaN for a class absent from both the ground
    truth and the predictions (the official Cityscapes evaluator's rule: such a class is left out of the mean)."""
    confusion = confusion.double()
    intersection = confusion.diag()
    union = confusion.sum(0) + confusion.sum(1) - intersection
    return torch.where(union > 0, intersection / union.clamp(min=1), torch.full_like(union, float("nan")))


def segmentation_metrics(confusion: torch.Tensor, label_names: Sequence[str],
                         large_object_classes: Sequence[str] = ()) -> Dict[str, object]:
    """mmsegmentation's metrics (percent) from the confusion matrix, with TP_c the diagonal, G_c its row sums
    (ground truth) and P_c its column sums (predictions): aAcc = sum TP / sum G; per class IoU = TP / (G + P - TP),
    Acc = TP / G, Dice = 2 TP / (G + P); mIoU, mDice average the classes present in the ground truth or the
    predictions, mAcc those present in the ground truth (mmseg's nan-mean)."""
    confusion = confusion.double()
    tp, gt, pred = confusion.diag(), confusion.sum(1), confusion.sum(0)
    present, labelled = gt + pred > 0, gt > 0
    per_class = {
        "iou": (class_iou(confusion).nan_to_num(), present),
        "acc": (tp / gt.clamp(min=1), labelled),
        "dice": (2 * tp / (gt + pred).clamp(min=1), present),
    }

    def mean(key: str) -> float:
        values, mask = per_class[key]
        return round(100 * values[mask].mean().item(), 2) if mask.any() else 0.0

    def by_name(key: str) -> Dict[str, float]:
        values, mask = per_class[key]
        return {name: round(100 * values[i].item(), 2) for i, name in enumerate(label_names) if mask[i]}

    iou = by_name("iou")
    large = [iou[name] for name in large_object_classes if name in iou]
    return {
        "aAcc": round(100 * (tp.sum() / gt.sum().clamp(min=1)).item(), 2),
        "mIoU": mean("iou"), "mAcc": mean("acc"), "mDice": mean("dice"),
        "per_class_iou": iou, "per_class_acc": by_name("acc"), "per_class_dice": by_name("dice"),
        "large_object_mIoU": round(sum(large) / len(large), 2) if large else None,
        "large_object_classes": list(large_object_classes),
    }


def topk_correct(logits: torch.Tensor, labels: torch.Tensor, ks: Sequence[int] = (1, 5)) -> Dict[int, int]:
    """Number of samples whose label is among the top-k logits, for each k."""
    top = logits.topk(min(max(ks), logits.shape[1]), dim=1).indices
    hits = top == labels[:, None]
    return {k: int(hits[:, :k].any(dim=1).sum()) for k in ks}
