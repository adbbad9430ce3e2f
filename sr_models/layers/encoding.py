"""Context encoding module (EncNet, Zhang et al., CVPR 2018): a learned codebook summarises the scene."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.layers import ConvNormAct
from torch import nn

from .squeeze_reasoning import check_feature_map

__all__ = ["Encoding", "ContextEncoding"]


class Encoding(nn.Module):
    """e_k = sum_i a_ik (x_i - d_k), a_ik = softmax_k(-s_k ||x_i - d_k||^2): (B, C, H, W) -> (B, K, C)."""

    def __init__(self, channels: int, num_codes: int):
        super().__init__()
        bound = 1 / (num_codes * channels) ** 0.5
        self.codewords = nn.Parameter(torch.empty(num_codes, channels).uniform_(-bound, bound))
        self.scale = nn.Parameter(torch.empty(num_codes).uniform_(-1, 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = x.flatten(2).transpose(1, 2)  # (B, N, C)
        distances = (features.pow(2).sum(-1, keepdim=True) - 2 * features @ self.codewords.t()
                     + self.codewords.pow(2).sum(-1))  # ||x_i - d_k||^2: (B, N, K)
        weights = F.softmax(self.scale * distances, dim=2)
        return weights.transpose(1, 2) @ features - weights.sum(1)[..., None] * self.codewords  # (B, K, C)


class ContextEncoding(nn.Module):
    """EncNet's EncModule: 1x1 conv -> Encoding -> BN -> ReLU -> mean over codes -> FC -> sigmoid; y = ReLU(x + x * g)."""

    def __init__(self, channels: int, num_codes: int = 32):
        super().__init__()
        self.channels = channels
        self.conv = ConvNormAct(channels, channels, 1)
        self.encoding = Encoding(channels, num_codes)
        self.norm = nn.BatchNorm1d(num_codes)
        self.fc = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_feature_map(x, self.channels, type(self).__name__)
        encoded = F.relu(self.norm(self.encoding(self.conv(x)))).mean(1)  # (B, C)
        gamma = torch.sigmoid(self.fc(encoded))
        return F.relu(x + x * gamma[:, :, None, None])
