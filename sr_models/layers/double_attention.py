"""Double attention (A^2-Net, Chen et al., NeurIPS 2018): gather global descriptors, distribute them back."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .squeeze_reasoning import check_feature_map

__all__ = ["DoubleAttention"]


class DoubleAttention(nn.Module):
    """G = A softmax_N(B)^T (gather, C_m x C_n), Z = G softmax_{C_n}(V) (distribute), y = W Z + x."""

    def __init__(self, channels: int, c_m: int = 256, c_n: int = 256):
        super().__init__()
        self.channels = channels
        self.conv_a = nn.Conv2d(channels, c_m, 1)
        self.conv_b = nn.Conv2d(channels, c_n, 1)
        self.conv_v = nn.Conv2d(channels, c_n, 1)
        self.reconstruct = nn.Sequential(nn.Conv2d(c_m, channels, 1, bias=False), nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_feature_map(x, self.channels, type(self).__name__)
        b, _, h, w = x.shape
        a = self.conv_a(x).flatten(2)  # (B, C_m, N)
        attention_maps = F.softmax(self.conv_b(x).flatten(2), dim=2)  # (B, C_n, N)
        attention_vectors = F.softmax(self.conv_v(x).flatten(2), dim=1)  # (B, C_n, N)
        descriptors = a @ attention_maps.transpose(1, 2)  # (B, C_m, C_n)
        z = (descriptors @ attention_vectors).view(b, -1, h, w)
        return self.reconstruct(z) + x
