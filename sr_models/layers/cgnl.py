"""Compact generalized non-local block (CGNL, Yue et al., NeurIPS 2018), dot-product kernel."""
from __future__ import annotations

import torch
from torch import nn

from .squeeze_reasoning import check_feature_map

__all__ = ["CompactGeneralizedNonLocal"]


class CompactGeneralizedNonLocal(nn.Module):
    """Per channel group: y = t * <p, g> (the dot product over positions AND channels of the group), then z + GN.

    The compact form costs O(CHW): the (CHW)^2 affinity is never built.
    """

    def __init__(self, channels: int, inter_channels: int = 256, groups: int = 8):
        super().__init__()
        if inter_channels % groups:
            raise ValueError(f"groups={groups} must divide inter_channels ({inter_channels})")
        self.channels, self.groups = channels, groups
        self.t = nn.Conv2d(channels, inter_channels, 1, bias=False)
        self.p = nn.Conv2d(channels, inter_channels, 1, bias=False)
        self.g = nn.Conv2d(channels, inter_channels, 1, bias=False)
        self.z = nn.Conv2d(inter_channels, channels, 1, bias=False)
        self.norm = nn.GroupNorm(groups, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_feature_map(x, self.channels, type(self).__name__)
        b = x.shape[0]
        t, p, g = self.t(x), self.p(x), self.g(x)
        p_groups, g_groups = p.reshape(b, self.groups, 1, -1), g.reshape(b, self.groups, -1, 1)
        affinity = (p_groups @ g_groups).reshape(b, self.groups, 1, 1, 1)  # <p, g> per group: (B, G)
        y = (t.reshape(b, self.groups, -1, *t.shape[2:]) * affinity).reshape_as(t)
        return self.norm(self.z(y)) + x
