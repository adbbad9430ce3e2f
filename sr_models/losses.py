"""Segmentation losses: cross-entropy with deep supervision (PSPNet) and optional OHEM, or Dice / Focal / Lovász
(segmentation_models_pytorch's implementations), with optional per-class weights."""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from segmentation_models_pytorch.losses import DiceLoss, FocalLoss, LovaszLoss
from torch import nn

from .constants import AUX_WEIGHT, IGNORE_INDEX, OHEM_MIN_KEPT

__all__ = ["SegmentationLoss", "LOSSES", "enet_class_weights"]

LOSSES = ("ce", "dice", "focal", "lovasz")
_SMP_LOSSES = {  # (ignore_index, class weights or None) -> loss on (logits (N, C, H, W), labels (N, H, W))
    "dice": lambda ignore, weights: DiceLoss("multiclass", ignore_index=ignore, class_weights=weights),
    "focal": lambda ignore, weights: FocalLoss("multiclass", ignore_index=ignore, class_weights=weights),
    "lovasz": lambda ignore, weights: LovaszLoss("multiclass", ignore_index=ignore),
}


def enet_class_weights(pixel_counts: torch.Tensor, c: float = 1.02) -> torch.Tensor:
    """ENet's class weighting (Paszke et al., 2016, Sec. 5.2): w_class = 1 / ln(c + p_class), with p_class the
    class's share of the labelled training pixels; bounded by 1 / ln(c) (~50) for the rarest classes."""
    share = pixel_counts.double() / pixel_counts.sum().clamp(min=1)
    return (1.0 / torch.log(c + share)).float()


class SegmentationLoss(nn.Module):
    """L(main) + aux_weight * L(aux), pixels labelled `ignore_index` skipped.

    `name`: `ce` (cross-entropy), or `dice` / `focal` / `lovasz` from segmentation_models_pytorch (multiclass mode:
    soft Dice 1 - 2|X∩Y| / (|X| + |Y|) per class; Focal -(1 - p_t)^gamma log p_t per class, one-vs-rest on the
    logits (as mmsegmentation's); Lovász-softmax, Berman et al. 2018, Eq. 12). `class_weight` weighs the classes
    (cross-entropy: PyTorch's weighted mean; Dice and Focal: weighted mean of the per-class losses; not for Lovász).

    With `ohem_thresh` set (0.7 in the paper's test-set recipe, following DANet/OCNet; cross-entropy only), only the
    hard pixels count: those whose predicted probability of their true class is below the threshold, and never
    fewer than the `ohem_min_kept` hardest pixels of the batch.
    """

    def __init__(
            self,
            ignore_index: int = IGNORE_INDEX,
            aux_weight: float = AUX_WEIGHT,
            ohem_thresh: Optional[float] = None,
            ohem_min_kept: int = OHEM_MIN_KEPT,
            name: str = "ce",
            class_weight: Optional[Sequence[float]] = None,
    ):
        super().__init__()
        if name not in LOSSES:
            raise ValueError(f"loss.name={name!r} must be one of {list(LOSSES)}")
        if ohem_thresh is not None and name != "ce":
            raise ValueError(f"loss.ohem_thresh={ohem_thresh} works with loss.name='ce' only (got {name!r})")
        if class_weight is not None and name == "lovasz":
            raise ValueError("loss.class_weight is not supported by the Lovász loss; set it to null")
        self.name = name
        self.ignore_index = ignore_index
        self.aux_weight = aux_weight
        self.ohem_thresh = ohem_thresh
        self.ohem_min_kept = ohem_min_kept
        weight = None if class_weight is None else torch.as_tensor(class_weight, dtype=torch.float32)
        self.register_buffer("class_weight", weight, persistent=False)
        weights = None if weight is None else weight.tolist()
        self.other = None if name == "ce" else _SMP_LOSSES[name](ignore_index, weights)

    def _ce(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.ohem_thresh is None:
            return F.cross_entropy(logits, target, weight=self.class_weight, ignore_index=self.ignore_index)
        pixel_loss = F.cross_entropy(logits, target, ignore_index=self.ignore_index, reduction="none").flatten()
        target = target.flatten()
        valid = target != self.ignore_index
        if not valid.any():
            return pixel_loss.sum() * 0.0
        pixel_loss, target = pixel_loss[valid], target[valid]
        # prob of the true class = exp(-CE); keep prob < thresh, i.e. loss > -log(thresh), and at least min_kept
        threshold = -torch.log(torch.tensor(self.ohem_thresh, dtype=pixel_loss.dtype, device=pixel_loss.device))
        k = min(self.ohem_min_kept, pixel_loss.numel())
        if k > 0:
            threshold = torch.minimum(threshold, pixel_loss.detach().topk(k).values[-1])
        kept = pixel_loss >= threshold
        if self.class_weight is None:
            return pixel_loss[kept].mean()
        weight = self.class_weight[target[kept]]
        return (weight * pixel_loss[kept]).sum() / weight.sum()

    def _term(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if logits.shape[-2:] != target.shape[-2:]:
            logits = F.interpolate(logits, size=target.shape[-2:], mode="bilinear", align_corners=False)
        return self._ce(logits, target) if self.other is None else self.other(logits.float(), target)

    def forward(self, logits: torch.Tensor, target: torch.Tensor, aux_logits: Optional[torch.Tensor] = None):
        loss = self._term(logits, target)
        if aux_logits is not None and self.aux_weight:
            loss = loss + self.aux_weight * self._term(aux_logits, target)
        return loss
