"""Pyramid pooling module (PSPNet, Zhao et al. 2017): the PSP baseline of Table IV and DFSeg's decoder."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from timm.layers import ConvNormAct
from torch import nn

__all__ = ["PyramidPoolingModule"]


class PyramidPoolingModule(nn.Module):
    """Concat of x and, per bin size b, adaptive-avg-pool(b x b) -> 1x1 conv + BN + ReLU -> bilinear upsample.

    Output channels: `in_channels + len(bins) * branch_channels` (see `out_channels`).
    """

    def __init__(self, in_channels: int, branch_channels: int, bins: Sequence[int] = (1, 2, 3, 6)):
        super().__init__()
        self.bins = tuple(bins)
        self.branches = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(b), ConvNormAct(in_channels, branch_channels, 1)) for b in self.bins)
        self.out_channels = in_channels + len(self.bins) * branch_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        outputs = [x]  # a list built by append: TorchScript cannot size [x, *pooled]
        for branch in self.branches:
            outputs.append(F.interpolate(branch(x), size=size, mode="bilinear", align_corners=False))
        return torch.cat(outputs, dim=1)
