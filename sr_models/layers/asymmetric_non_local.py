"""Asymmetric pyramid non-local block (ANN's APNB, Zhu et al., ICCV 2019): keys and values sampled by pyramid
pooling, so the affinity is N x S (S = 110 anchors for bins 1, 3, 6, 8) instead of N x N."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from timm.layers import ConvNormAct
from torch import nn

from .pyramid_pooling import bin_avg_pool2d
from .squeeze_reasoning import check_feature_map

__all__ = ["AsymmetricPyramidNonLocal"]


class AsymmetricPyramidNonLocal(nn.Module):
    """y = fuse([W softmax(q k_S^T / sqrt(d)) v_S, x]); q and k share one projection, as in ANN."""

    def __init__(self, channels: int, key_channels: int = 64, value_channels: int = 128,
                 bins: Sequence[int] = (1, 3, 6, 8)):
        super().__init__()
        self.channels, self.key_channels, self.bins = channels, key_channels, tuple(bins)
        self.query_key = ConvNormAct(channels, key_channels, 1)
        self.value = nn.Conv2d(channels, value_channels, 1)
        self.out = nn.Conv2d(value_channels, channels, 1)
        self.fuse = ConvNormAct(2 * channels, channels, 1, apply_act=False)

    def _sample(self, x: torch.Tensor) -> torch.Tensor:
        """Pyramid pooling of a (B, C, H, W) map into (B, C, S) anchors."""
        return torch.cat([bin_avg_pool2d(x, b).flatten(2) for b in self.bins], dim=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_feature_map(x, self.channels, type(self).__name__)
        b, _, h, w = x.shape
        query = self.query_key(x)
        keys, values = self._sample(query), self._sample(self.value(x))  # (B, d, S), (B, d_v, S)
        affinity = F.softmax(query.flatten(2).transpose(1, 2) @ keys * self.key_channels ** -0.5, dim=-1)
        context = (affinity @ values.transpose(1, 2)).transpose(1, 2).reshape(b, -1, h, w)
        return self.fuse(torch.cat([self.out(context), x], dim=1))
