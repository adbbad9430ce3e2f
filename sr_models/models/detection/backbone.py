"""A timm backbone (`features_only=True`) under torchvision's FPN, and where Table IX puts SR and Non-Local in it.

`TimmFPN` is torchvision's `BackboneWithFPN` for a timm feature extractor: `forward(images)` returns an ordered
dict of `out_channels`-channel maps "0".."3" (strides 4-32) and "pool" (stride 64), the input every torchvision
detection head expects. `add_squeeze_reasoning` / `add_non_local` edit the body in place (see docs/fidelity.md).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Dict, Optional

import timm
import torch
from timm.layers import NonLocalAttn, freeze_batch_norm_2d
from torch import nn
from torchvision.ops.feature_pyramid_network import ExtraFPNBlock, FeaturePyramidNetwork, LastLevelMaxPool

from ...layers import SqueezeReasoning

__all__ = ["TimmFPN", "timm_fpn_backbone", "add_squeeze_reasoning", "add_non_local", "CONTEXTS", "SR_DETECTION_ARGS"]

# The SR module of Table IX(a): GHP squeeze, GCN reasoning on K = 16 nodes, C / 32 reduced channels (docs/fidelity.md)
SR_DETECTION_ARGS: Dict[str, Any] = dict(reduction=32, num_nodes=16, squeeze="ghp", reasoning="gcn")
_STAGES = ("layer4", "layer3", "layer2", "layer1")


class TimmFPN(nn.Module):
    """Backbone + FPN: `body` is a timm `features_only` model returning strides 4, 8, 16, 32."""

    def __init__(self, body: nn.Module, out_channels: int = 256, extra_blocks: Optional[ExtraFPNBlock] = None):
        super().__init__()
        self.body = body
        self.fpn = FeaturePyramidNetwork(body.feature_info.channels(), out_channels,
                                         extra_blocks=extra_blocks if extra_blocks is not None else LastLevelMaxPool())
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        return self.fpn(OrderedDict((str(i), feature) for i, feature in enumerate(self.body(x))))


def add_squeeze_reasoning(body: nn.Module, stage: str = "layer4", **sr_args) -> None:
    """Section III-E: an SR module on the output of every bottleneck of `stage` (ResNet's layer4 / res5).

    Each sits in the block's attention slot (after conv3 + BN, before the residual addition: mmdetection's
    `after_conv3` plugin position, where SE and GCNet go). Its reconstruction norm starts at zero, so the module
    starts as the identity and a pretrained backbone starts unchanged, as Non-Local blocks are initialised.
    """
    for block in getattr(body, stage):
        sr = SqueezeReasoning(block.conv3.out_channels, **{**SR_DETECTION_ARGS, **sr_args})
        nn.init.zeros_(sr.reconstruction.norm.weight)
        block.se = sr


def add_non_local(body: nn.Module, stage: str = "layer3", rd_ratio: float = 0.5) -> None:
    """Wang et al.'s COCO setting: one Non-Local block (C/2 embedding) right before the last block of res4.

    The block is timm's `NonLocalAttn` (zero-initialised output norm: the identity at the start), inserted into
    `stage` under the name "nl" so the backbone's pretrained keys keep their names.
    """
    blocks = list(getattr(body, stage).named_children())
    channels = blocks[-1][1].conv1.in_channels
    nl = NonLocalAttn(channels, rd_ratio=rd_ratio)
    setattr(body, stage, nn.Sequential(OrderedDict(blocks[:-1] + [("nl", nl)] + blocks[-1:])))


CONTEXTS = {"sr": add_squeeze_reasoning, "nl": add_non_local}


def timm_fpn_backbone(
        backbone: str,
        pretrained: bool = False,
        trainable_layers: Optional[int] = None,
        context: Optional[str] = None,
        context_args: Optional[Dict[str, Any]] = None,
        out_channels: int = 256,
        frozen_norm: Optional[bool] = None,
        **backbone_args,
) -> TimmFPN:
    """timm `backbone` (features at strides 4-32) + optional context blocks + FPN, torchvision's conventions.

    As torchvision's `resnet_fpn_backbone`: a pretrained body gets frozen BatchNorm and `trainable_layers=3`
    (stem and layer1 frozen: mmdetection's `frozen_stages=1, norm_eval=True`); a body trained from scratch keeps
    BatchNorm and trains all 5. `frozen_norm` (default: `pretrained`) decides the norms alone.
    """
    if context is not None and context not in CONTEXTS:
        raise ValueError(f"context={context!r} is not one of {sorted(CONTEXTS)} (or None)")
    trainable_layers = (3 if pretrained else 5) if trainable_layers is None else trainable_layers
    if not 0 <= trainable_layers <= 5:
        raise ValueError(f"trainable_layers={trainable_layers} must be in [0, 5]")
    body = timm.create_model(backbone, pretrained=pretrained, features_only=True, out_indices=(1, 2, 3, 4),
                             **backbone_args)
    frozen = pretrained if frozen_norm is None else frozen_norm
    if frozen:
        body = freeze_batch_norm_2d(body)  # before the context blocks: their own norms train
    if context is not None:
        CONTEXTS[context](body, **(context_args or {}))
    if trainable_layers < 5:
        trainable = _STAGES[:trainable_layers]
        for name, param in body.named_parameters():
            param.requires_grad_(name.startswith(trainable))
    fpn = TimmFPN(body, out_channels)
    fpn.frozen_norm, fpn.trainable_layers = frozen, trainable_layers  # resolved: a rebuild freezes the same
    return fpn
