"""Pyramid pooling module (PSPNet, Zhao et al. 2017): the PSP baseline of Table IV and DFSeg's decoder.

Adaptive average pooling is written as two small matrix products whose bins are computed from the input size at
run time, so an exported graph (ONNX, `torch.export`) pools correctly at every input size (see docs/export.md).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from timm.layers import ConvNormAct
from torch import nn

__all__ = ["PyramidPoolingModule", "BinAvgPool2d", "bin_avg_pool2d"]


def _bin_weights(size: int, bins: int, like: torch.Tensor) -> torch.Tensor:
    """(bins, size) averaging matrix: bin i is the mean over [floor(i * size / bins), ceil((i + 1) * size / bins))."""
    index = torch.arange(bins, device=like.device)
    start = torch.div(index * size, bins, rounding_mode="floor")
    end = torch.div((index + 1) * size + bins - 1, bins, rounding_mode="floor")
    position = torch.arange(size, device=like.device)
    inside = (position >= start[:, None]) & (position < end[:, None])
    return inside.to(like.dtype) / (end - start)[:, None].to(like.dtype)


def bin_avg_pool2d(x: torch.Tensor, bins: int) -> torch.Tensor:
    """`F.adaptive_avg_pool2d(x, bins)` (same bins, same weights) as `P_h x P_w^T`, export-safe at any input size.

    The sums run in a different order than PyTorch's kernel, so results agree to float rounding, not bit for bit.
    """
    if bins == 1:
        return x.mean((2, 3), keepdim=True)
    return _bin_weights(x.shape[-2], bins, x) @ x @ _bin_weights(x.shape[-1], bins, x).transpose(0, 1)


class BinAvgPool2d(nn.Module):
    """`nn.AdaptiveAvgPool2d(bins)` through `bin_avg_pool2d`: (B, C, H, W) -> (B, C, bins, bins)."""

    def __init__(self, bins: int):
        super().__init__()
        self.bins = bins

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return bin_avg_pool2d(x, self.bins)


class PyramidPoolingModule(nn.Module):
    """Concat of x and, per bin size b, adaptive-avg-pool(b x b) -> 1x1 conv + BN + ReLU -> bilinear upsample.

    Output channels: `in_channels + len(bins) * branch_channels` (see `out_channels`).
    """

    def __init__(self, in_channels: int, branch_channels: int, bins: Sequence[int] = (1, 2, 3, 6)):
        super().__init__()
        self.bins = tuple(bins)
        self.branches = nn.ModuleList(
            nn.Sequential(BinAvgPool2d(b), ConvNormAct(in_channels, branch_channels, 1)) for b in self.bins)
        self.out_channels = in_channels + len(self.bins) * branch_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        outputs = [x]  # a list built by append: TorchScript cannot size [x, *pooled]
        for branch in self.branches:
            outputs.append(F.interpolate(branch(x), size=size, mode="bilinear", align_corners=False))
        return torch.cat(outputs, dim=1)
