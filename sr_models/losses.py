"""Segmentation losses of the paper's recipes: cross-entropy with deep supervision (PSPNet) and optional OHEM."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .constants import AUX_WEIGHT, IGNORE_INDEX, OHEM_MIN_KEPT


class SegmentationLoss(nn.Module):
    """CE(main) + aux_weight * CE(aux), pixels labelled `ignore_index` skipped.

    With `ohem_thresh` set (0.7 in the paper's test-set recipe, following DANet/OCNet), only the hard pixels count:
    those whose predicted probability of their true class is below the threshold, and never fewer than the
    `ohem_min_kept` hardest pixels of the batch.
    """

    def __init__(
            self,
            ignore_index: int = IGNORE_INDEX,
            aux_weight: float = AUX_WEIGHT,
            ohem_thresh: Optional[float] = None,
            ohem_min_kept: int = OHEM_MIN_KEPT,
    ):
        super().__init__()
        self.ignore_index = ignore_index
        self.aux_weight = aux_weight
        self.ohem_thresh = ohem_thresh
        self.ohem_min_kept = ohem_min_kept

    def _ce(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if logits.shape[-2:] != target.shape[-2:]:
            logits = F.interpolate(logits, size=target.shape[-2:], mode="bilinear", align_corners=False)
        if self.ohem_thresh is None:
            return F.cross_entropy(logits, target, ignore_index=self.ignore_index)
        pixel_loss = F.cross_entropy(logits, target, ignore_index=self.ignore_index, reduction="none").flatten()
        valid = target.flatten() != self.ignore_index
        if not valid.any():
            return pixel_loss.sum() * 0.0
        pixel_loss = pixel_loss[valid]
        # prob of the true class = exp(-CE); keep prob < thresh, i.e. loss > -log(thresh), and at least min_kept
        threshold = -torch.log(torch.tensor(self.ohem_thresh, dtype=pixel_loss.dtype, device=pixel_loss.device))
        k = min(self.ohem_min_kept, pixel_loss.numel())
        if k > 0:
            threshold = torch.minimum(threshold, pixel_loss.detach().topk(k).values[-1])
        return pixel_loss[pixel_loss >= threshold].mean()

    def forward(self, logits: torch.Tensor, target: torch.Tensor, aux_logits: Optional[torch.Tensor] = None):
        loss = self._ce(logits, target)
        if aux_logits is not None and self.aux_weight:
            loss = loss + self.aux_weight * self._ce(aux_logits, target)
        return loss
