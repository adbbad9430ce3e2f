"""DFNet backbones (Li et al., "Partial Order Pruning", CVPR 2019) and the real-time segmenters of Table V.

    DFSeg (the baseline):  DFNet -> PPM on the last stage -> fuse with stage -2 -> fuse with stage -3 -> classifier
    SRNet(DFNet):          the same with the SR module in place of the PPM (Section IV-B)

Stage layouts follow the authors' released DFNet code (residual basic blocks; v2 ends each stage with a block
that widens it). Logits are upsampled bilinearly to the input size.
"""
from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

import timm
import torch
import torch.nn.functional as F
from timm.layers import ConvNormAct, SelectAdaptivePool2d
from timm.models import build_model_with_cfg, register_model
from timm.models.resnet import BasicBlock
from torch import nn

from ..layers.pyramid_pooling import PyramidPoolingModule
from ..layers.squeeze_reasoning import SqueezeReasoning, check_feature_map
from ._hub import PAPER_ID, generate_hub_cfgs
from .srnet import FCNAuxHead, check_image_size, dataset_cfgs

__all__ = ["DFNet", "DFSeg", "FusionNode"]

# per stage, the (planes, blocks, stride) groups of basic blocks
DFNET_V1 = (((64, 3, 2),), ((128, 3, 2),), ((256, 3, 2),), ((512, 1, 1),))
DFNET_V2 = (((64, 2, 2), (128, 1, 1)), ((128, 10, 2), (256, 1, 1)), ((256, 4, 2), (512, 2, 1)))


def _make_stage(in_planes: int, groups: Sequence[Tuple[int, int, int]]) -> Tuple[nn.Sequential, int]:
    blocks = []
    for planes, count, stride in groups:
        for i in range(count):
            downsample = None
            if i == 0 and (stride != 1 or in_planes != planes):
                downsample = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
            blocks.append(BasicBlock(in_planes, planes, stride if i == 0 else 1, downsample))
            in_planes = planes
    return nn.Sequential(*blocks), in_planes


class DFNet(nn.Module):
    """DFNet classifier: a two-conv stride-4 stem, stages of basic blocks, global pooling, linear classifier."""

    def __init__(self, stages=DFNET_V2, num_classes: int = 1000, in_chans: int = 3, global_pool: str = "avg",
                 drop_rate: float = 0.0):
        super().__init__()
        self.num_classes, self.drop_rate = num_classes, drop_rate
        self.stem = nn.Sequential(ConvNormAct(in_chans, 32, 3, stride=2), ConvNormAct(32, 64, 3, stride=2))
        self.feature_info: List[Dict[str, Any]] = [dict(num_chs=64, reduction=4, module="stem.1")]
        channels, reduction, built = 64, 4, []
        for i, groups in enumerate(stages):
            stage, channels = _make_stage(channels, groups)
            reduction *= max(stride for _, _, stride in groups)
            built.append(stage)
            self.feature_info.append(dict(num_chs=channels, reduction=reduction, module=f"stages.{i}"))
        self.stages = nn.Sequential(*built)
        self.num_features = self.head_hidden_size = channels
        self.global_pool = SelectAdaptivePool2d(pool_type=global_pool, flatten=True)
        self.fc = nn.Linear(channels, num_classes) if num_classes else nn.Identity()
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int, global_pool: str = "avg") -> None:
        self.num_classes = num_classes
        self.global_pool = SelectAdaptivePool2d(pool_type=global_pool, flatten=True)
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = F.dropout(self.global_pool(x), p=self.drop_rate, training=self.training)
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class FusionNode(nn.Module):
    """DFSeg's fusion: upsample the coarse map, concat with the fine one, 3x3 conv (2C -> C)."""

    def __init__(self, channels: int):
        super().__init__()
        self.fusion = nn.Conv2d(2 * channels, channels, 3, padding=1, bias=False)

    def forward(self, coarse: torch.Tensor, fine: torch.Tensor) -> torch.Tensor:
        coarse = F.interpolate(coarse, size=fine.shape[-2:], mode="bilinear", align_corners=False)
        return self.fusion(torch.cat([coarse, fine], dim=1))


class DFSeg(nn.Module):
    """Real-time segmenter on a DFNet: context on the last stage ("ppm": DFSeg, "sr": SRNet), two fusions, classifier.

    Args:
        backbone: a timm model with `features_only` (default the DFNet v2 registered here).
        context: "ppm" (PSPNet's pyramid pooling + 1x1 bottleneck, the DFSeg baseline) or "sr" (the SR module,
            Section IV-B); SR options (`squeeze`, `reasoning`, `num_nodes`, `reduction`) pass through.
        channels: width of the decoder (128 in DFSeg).
    """

    def __init__(self, backbone: str = "dfnet2", num_classes: int = 19, context: str = "sr", channels: int = 128,
                 in_chans: int = 3, dropout: float = 0.1, pretrained_backbone: bool = False, **context_kwargs):
        super().__init__()
        self.backbone = timm.create_model(backbone, features_only=True, out_indices=(-3, -2, -1),
                                          pretrained=pretrained_backbone, in_chans=in_chans)
        fine_chs, mid_chs, last_chs = self.backbone.feature_info.channels()
        if context == "ppm":
            if context_kwargs:
                raise ValueError(f"context='ppm' takes no options, got {sorted(context_kwargs)}")
            ppm = PyramidPoolingModule(last_chs, channels)
            self.context = nn.Sequential(ppm, ConvNormAct(ppm.out_channels, channels, 1), nn.Dropout2d(dropout))
            context_chs = channels
        elif context == "sr":
            self.context, context_chs = SqueezeReasoning(last_chs, **context_kwargs), last_chs
        else:
            raise ValueError(f"unknown context={context!r} for DFSeg; choose 'ppm' or 'sr'")
        self.reduce_last = nn.Conv2d(context_chs, channels, 1)
        self.reduce_mid = nn.Conv2d(mid_chs, channels, 1)
        self.reduce_fine = nn.Conv2d(fine_chs, channels, 1)
        self.fuse_mid = FusionNode(channels)
        self.fuse_fine = FusionNode(channels)
        self.classifier = FCNAuxHead(channels, num_classes, dropout=dropout)
        self.num_classes, self.num_features, self.in_chans = num_classes, channels, in_chans
        self.min_input_size = max(self.backbone.feature_info.reduction())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_feature_map(x, self.in_chans, type(self).__name__)
        check_image_size(x, self.min_input_size, type(self).__name__)
        fine, mid, last = self.backbone(x)
        out = self.fuse_mid(self.reduce_last(self.context(last)), self.reduce_mid(mid))
        out = self.fuse_fine(out, self.reduce_fine(fine))
        return F.interpolate(self.classifier(out), size=x.shape[-2:], mode="bilinear", align_corners=False)


def _create_dfnet(variant: str, stages, pretrained: bool = False, **kwargs) -> DFNet:
    out_indices = kwargs.pop("out_indices", tuple(range(len(stages) + 1)))  # the stem and every stage
    return build_model_with_cfg(DFNet, variant, pretrained, stages=stages,
                                feature_cfg=dict(flatten_sequential=True, out_indices=out_indices), **kwargs)


def _create_dfseg(variant: str, pretrained: bool = False, **kwargs) -> DFSeg:
    return build_model_with_cfg(DFSeg, variant, pretrained, **kwargs)


def _classifier_cfg() -> Dict[str, Any]:
    return {'num_classes': 1000, 'input_size': (3, 224, 224), 'pool_size': (7, 7), 'crop_pct': 0.875,
            'interpolation': 'bilinear', 'mean': (0.485, 0.456, 0.406), 'std': (0.229, 0.224, 0.225),
            'first_conv': 'stem.0.conv', 'classifier': 'fc', 'license': 'apache-2.0', 'paper_ids': 'arXiv:1903.03777',
            'paper_name': 'Partial Order Pruning: for Best Speed/Accuracy Trade-off in Neural Architecture Search'}


_REALTIME = dict(first_conv='backbone.stem_0.conv', classifier='classifier.classifier', paper_ids=PAPER_ID)

default_cfgs = generate_hub_cfgs({
    'dfnet1.in1k': _classifier_cfg(),
    'dfnet2.in1k': _classifier_cfg(),
    **dataset_cfgs('srnet_dfnet1', **_REALTIME),
    **dataset_cfgs('srnet_dfnet2', **_REALTIME),
    **dataset_cfgs('dfseg_dfnet1', **_REALTIME),
    **dataset_cfgs('dfseg_dfnet2', **_REALTIME),
})


@register_model
def dfnet1(pretrained: bool = False, **kwargs) -> DFNet:
    """DFNet v1 (Table V's DFv1 backbone)."""
    return _create_dfnet('dfnet1', DFNET_V1, pretrained, **kwargs)


@register_model
def dfnet2(pretrained: bool = False, **kwargs) -> DFNet:
    """DFNet v2 (Table V's DFv2 backbone)."""
    return _create_dfnet('dfnet2', DFNET_V2, pretrained, **kwargs)


@register_model
def dfseg_dfnet1(pretrained: bool = False, **kwargs) -> DFSeg:
    model_args = dict(backbone='dfnet1', context='ppm')
    return _create_dfseg('dfseg_dfnet1', pretrained, **dict(model_args, **kwargs))


@register_model
def dfseg_dfnet2(pretrained: bool = False, **kwargs) -> DFSeg:
    """DFSeg-v2, the real-time baseline of Table V (DFv2 + PPM)."""
    model_args = dict(backbone='dfnet2', context='ppm')
    return _create_dfseg('dfseg_dfnet2', pretrained, **dict(model_args, **kwargs))


@register_model
def srnet_dfnet1(pretrained: bool = False, **kwargs) -> DFSeg:
    model_args = dict(backbone='dfnet1', context='sr')
    return _create_dfseg('srnet_dfnet1', pretrained, **dict(model_args, **kwargs))


@register_model
def srnet_dfnet2(pretrained: bool = False, **kwargs) -> DFSeg:
    """SRNet(DFv2) of Table V: DFSeg-v2 with the SR module in place of the PPM."""
    model_args = dict(backbone='dfnet2', context='sr')
    return _create_dfseg('srnet_dfnet2', pretrained, **dict(model_args, **kwargs))
