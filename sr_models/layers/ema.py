"""Expectation-maximisation attention unit (EMANet, Li et al., ICCV 2019)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .squeeze_reasoning import check_feature_map

__all__ = ["EMAUnit"]


class EMAUnit(nn.Module):
    """x -> 1x1 conv -> `stages` EM steps over K bases (E: responsibilities, M: bases) -> reconstruction -> 1x1 conv
    + BN -> + x -> ReLU. The bases are a buffer updated by a moving average during training, as in EMANet."""

    def __init__(self, channels: int, num_bases: int = 64, stages: int = 3, momentum: float = 0.9):
        super().__init__()
        self.channels, self.stages, self.momentum = channels, stages, momentum
        bases = torch.randn(1, channels, num_bases) * (2.0 / num_bases) ** 0.5
        self.register_buffer("bases", F.normalize(bases, dim=1))
        self.conv_in = nn.Conv2d(channels, channels, 1)
        self.conv_out = nn.Sequential(nn.Conv2d(channels, channels, 1, bias=False), nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_feature_map(x, self.channels, type(self).__name__)
        b, c, h, w = x.shape
        features = self.conv_in(x).flatten(2)  # (B, C, N)
        bases = self.bases.expand(b, -1, -1)
        with torch.no_grad():  # EM iterations, as in EMANet: the bases are not learned by backpropagation
            for _ in range(self.stages):
                z = F.softmax(features.transpose(1, 2) @ bases, dim=2)  # E step: (B, N, K)
                bases = F.normalize(features @ (z / (1e-6 + z.sum(1, keepdim=True))), dim=1)  # M step: (B, C, K)
        z = F.softmax(features.transpose(1, 2) @ bases, dim=2)
        out = F.relu((bases @ z.transpose(1, 2)).view(b, c, h, w))
        if self.training:
            self.bases.mul_(self.momentum).add_(bases.mean(0, keepdim=True).detach(), alpha=1 - self.momentum)
            self.bases.copy_(F.normalize(self.bases, dim=1))
        return F.relu(self.conv_out(out) + x)
