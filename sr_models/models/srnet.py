"""SRNet (Section III-D): a dilated FCN ResNet with a context head; context="sr" is the paper's network.

    image -> backbone (timm, features_only, output stride 8) -> stage 4 ─> context block (3x3 conv -> module -> 3x3 conv)
                                                              │            -> concat stage 4 -> 3x3 bottleneck -> classifier
                                                              └ stage 3 ─> auxiliary FCN head (training, loss weight 0.4)

Logits are upsampled bilinearly to the input size. In training mode `forward` returns `(logits, aux_logits)`.
"""
from __future__ import annotations

from typing import Any, Dict, List, Tuple, Union

import timm
import torch
import torch.nn.functional as F
from timm.layers import ConvNormAct
from timm.models import build_model_with_cfg, register_model
from torch import nn

from ..data.metadata import DATASETS
from ..layers.context import create_context_block
from ..layers.squeeze_reasoning import check_feature_map
from ._hub import PAPER_ID, generate_hub_cfgs

__all__ = ["SRNet", "SRNetHead", "FCNAuxHead", "check_image_size"]


def check_image_size(x: torch.Tensor, min_size: int, who: str) -> None:
    """Raise a clear error for an image smaller than the network's total stride."""
    if x.shape[-2] < min_size or x.shape[-1] < min_size:
        raise ValueError(
            f"{who} needs images of at least {min_size}x{min_size} pixels, got {x.shape[-2]}x{x.shape[-1]}")


class SRNetHead(nn.Module):
    """Context block (C_in -> D) -> concat with its input -> 3x3 bottleneck -> dropout -> 1x1 classifier."""

    def __init__(
            self,
            in_channels: int,
            num_classes: int,
            context: str = "sr",
            channels: int = 512,
            dropout: float = 0.1,
            **context_kwargs,
    ):
        super().__init__()
        self.context = create_context_block(context, in_channels, channels, **context_kwargs)
        self.bottleneck = ConvNormAct(in_channels + channels, channels, 3)
        self.dropout = nn.Dropout2d(dropout)
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.bottleneck(torch.cat([x, self.context(x)], dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.forward_features(x)))


class FCNAuxHead(nn.Module):
    """Auxiliary supervision on stage 3 (PSPNet): 3x3 conv C -> 256, dropout 0.1, 1x1 classifier."""

    def __init__(self, in_channels: int, num_classes: int, channels: int = 256, dropout: float = 0.1):
        super().__init__()
        self.conv = ConvNormAct(in_channels, channels, 3)
        self.dropout = nn.Dropout2d(dropout)
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.conv(x)))


class SRNet(nn.Module):
    """Semantic segmenter: a timm backbone at output stride 8, a context head, an auxiliary FCN head.

    Args:
        backbone: any timm model name that supports `features_only` and `output_stride` (default: the deep-stem
            ResNet-50 of the released code, timm's `resnet50s`); `sr_resnet50` works too.
        num_classes: number of classes.
        context: the context module between the head's two 3x3 convs: "sr" (the paper), "none" (dilated FCN),
            or a baseline of Table IV ("se", "nl", "psp", "aspp", "rcca", "ema", "a2", "cgnl", "enc", "ann").
        channels: D, the head's width (512 in the paper).
        aux: add the auxiliary FCN head on stage 3.
        pretrained_backbone: load the backbone's ImageNet weights through timm.
        **context_kwargs: passed to the context module, e.g. the SR options `squeeze`, `reasoning`, `num_nodes`.
    """

    def __init__(
            self,
            backbone: str = "resnet50s",
            num_classes: int = 19,
            context: str = "sr",
            channels: int = 512,
            aux: bool = True,
            dropout: float = 0.1,
            output_stride: int = 8,
            in_chans: int = 3,
            pretrained_backbone: bool = False,
            **context_kwargs,
    ):
        super().__init__()
        self.backbone = timm.create_model(
            backbone, features_only=True, output_stride=output_stride, out_indices=(-2, -1),
            pretrained=pretrained_backbone, in_chans=in_chans)
        aux_chs, feat_chs = self.backbone.feature_info.channels()
        self.in_chans = in_chans
        self.min_input_size = max(self.backbone.feature_info.reduction())
        self.num_classes = num_classes
        self.num_features = channels
        self.head = SRNetHead(feat_chs, num_classes, context, channels, dropout, **context_kwargs)
        self.aux_head = FCNAuxHead(aux_chs, num_classes, dropout=dropout) if aux else None

    def forward_features(self, x: torch.Tensor) -> List[torch.Tensor]:
        """Backbone features of stages 3 and 4 (1/8 of the input)."""
        check_feature_map(x, self.in_chans, type(self).__name__)
        check_image_size(x, self.min_input_size, type(self).__name__)
        return self.backbone(x)

    def forward(self, x: torch.Tensor) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
        size = x.shape[-2:]
        stage3, stage4 = self.forward_features(x)
        logits = F.interpolate(self.head(stage4), size=size, mode="bilinear", align_corners=False)
        if self.training and self.aux_head is not None:
            aux = F.interpolate(self.aux_head(stage3), size=size, mode="bilinear", align_corners=False)
            return logits, aux
        return logits


def _create_srnet(variant: str, pretrained: bool = False, **kwargs) -> SRNet:
    return build_model_with_cfg(SRNet, variant, pretrained, **kwargs)


def _cfg(dataset: str, **kwargs) -> Dict[str, Any]:
    info = DATASETS[dataset]
    return {
        'num_classes': info.num_classes, 'label_names': info.label_names,
        'mean': info.mean, 'std': info.std, 'interpolation': 'bilinear', 'crop_pct': 1.0,
        'first_conv': 'backbone.conv1.0', 'classifier': 'head.classifier',
        'license': 'apache-2.0', 'paper_ids': PAPER_ID,
        'paper_name': 'Towards Efficient Scene Understanding via Squeeze Reasoning',
        'origin_url': 'https://github.com/lxtGH/SFSegNets',
        'input_size': (3, *info.crop_size), 'test_input_size': (3, *info.test_size),  # training crop, whole image
        **kwargs,
    }


def dataset_cfgs(arch: str, **kwargs) -> Dict[str, Dict[str, Any]]:
    """One `arch.<dataset>` default cfg per data set of the paper."""
    return {f"{arch}.{dataset}": _cfg(dataset, **kwargs) for dataset in DATASETS}


default_cfgs = generate_hub_cfgs({
    **dataset_cfgs('srnet_resnet18_d8', first_conv='backbone.conv1'),
    **dataset_cfgs('srnet_resnet50_d8'),
    **dataset_cfgs('srnet_resnet101_d8'),
    **dataset_cfgs('fcn_resnet18_d8', first_conv='backbone.conv1'),
    **dataset_cfgs('fcn_resnet50_d8'),
    **dataset_cfgs('fcn_resnet101_d8'),
})


@register_model
def srnet_resnet18_d8(pretrained: bool = False, **kwargs) -> SRNet:
    """A light SRNet (ResNet-18, 256-wide head) for small data and CPUs; not in the paper."""
    model_args = dict(backbone='resnet18', context='sr', channels=256)
    return _create_srnet('srnet_resnet18_d8', pretrained, **dict(model_args, **kwargs))


@register_model
def srnet_resnet50_d8(pretrained: bool = False, **kwargs) -> SRNet:
    model_args = dict(backbone='resnet50s', context='sr')
    return _create_srnet('srnet_resnet50_d8', pretrained, **dict(model_args, **kwargs))


@register_model
def srnet_resnet101_d8(pretrained: bool = False, **kwargs) -> SRNet:
    model_args = dict(backbone='resnet101s', context='sr')
    return _create_srnet('srnet_resnet101_d8', pretrained, **dict(model_args, **kwargs))


@register_model
def fcn_resnet18_d8(pretrained: bool = False, **kwargs) -> SRNet:
    """The dilated-FCN baseline of `srnet_resnet18_d8`."""
    model_args = dict(backbone='resnet18', context='none', channels=256)
    return _create_srnet('fcn_resnet18_d8', pretrained, **dict(model_args, **kwargs))


@register_model
def fcn_resnet50_d8(pretrained: bool = False, **kwargs) -> SRNet:
    model_args = dict(backbone='resnet50s', context='none')
    return _create_srnet('fcn_resnet50_d8', pretrained, **dict(model_args, **kwargs))


@register_model
def fcn_resnet101_d8(pretrained: bool = False, **kwargs) -> SRNet:
    model_args = dict(backbone='resnet101s', context='none')
    return _create_srnet('fcn_resnet101_d8', pretrained, **dict(model_args, **kwargs))
