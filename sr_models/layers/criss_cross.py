"""Recurrent criss-cross attention (CCNet, Huang et al., ICCV 2019): every position attends to its row and column."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .squeeze_reasoning import check_feature_map

__all__ = ["CrissCrossAttention"]


class CrissCrossAttention(nn.Module):
    """y = gamma * sum over the criss-cross path of softmax(q k) v + x, applied `recurrence` times (shared weights).

    Two passes reach every position from every other (CCNet's RCCA, R = 2). `reduction` is C / (query channels):
    CCNet's code uses 8; 2 reproduces Table IV's 0.53M (see docs/context_modules.md).
    """

    def __init__(self, channels: int, reduction: int = 2, recurrence: int = 2):
        super().__init__()
        self.channels, self.recurrence = channels, recurrence
        self.query = nn.Conv2d(channels, channels // reduction, 1)
        self.key = nn.Conv2d(channels, channels // reduction, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def _attend(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.query(x), self.key(x), self.value(x)
        height = x.shape[2]
        energy_column = torch.einsum("bchw,bcgw->bhwg", q, k)  # (h, w) against (g, w)
        # the position itself belongs to both its row and its column: count it once, in the row
        self_mask = torch.eye(height, dtype=torch.bool, device=x.device)[None, :, None, :]
        energy_column = energy_column.masked_fill(self_mask, float("-inf"))
        energy_row = torch.einsum("bchw,bchv->bhwv", q, k)  # (h, w) against (h, v)
        attention = F.softmax(torch.cat([energy_column, energy_row], dim=-1), dim=-1)
        out = torch.einsum("bhwg,bcgw->bchw", attention[..., :height], v)
        out = out + torch.einsum("bhwv,bchv->bchw", attention[..., height:], v)
        return self.gamma * out + x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_feature_map(x, self.channels, type(self).__name__)
        for _ in range(self.recurrence):
            x = self._attend(x)
        return x
