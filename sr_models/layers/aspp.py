"""Atrous spatial pyramid pooling (DeepLabv3, Chen et al., 2017): the ASPP row of Table IV."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from timm.layers import ConvNormAct
from torch import nn

__all__ = ["ASPP"]


class ASPP(nn.Module):
    """Concat of a 1x1 conv, 3x3 convs at `dilations` (12, 24, 36 at output stride 8) and image pooling, projected.

    Maps in_channels -> channels. The pooling branch has no BN, so training with one image per device works.
    """

    def __init__(self, in_channels: int, channels: int, branch_channels: int = 256,
                 dilations: Sequence[int] = (12, 24, 36)):
        super().__init__()
        self.branches = nn.ModuleList(
            [ConvNormAct(in_channels, branch_channels, 1)]
            + [ConvNormAct(in_channels, branch_channels, 3, dilation=d) for d in dilations])
        self.image_pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(in_channels, branch_channels, 1),
                                        nn.ReLU(inplace=True))
        self.project = ConvNormAct(branch_channels * (len(dilations) + 2), channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = F.interpolate(self.image_pool(x), size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.project(torch.cat([branch(x) for branch in self.branches] + [pooled], dim=1))
