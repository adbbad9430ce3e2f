"""SRNet (Section III-D): a dilated FCN ResNet with a context head; context="sr" is the paper's network.

    image -> backbone (timm, features_only, output stride 8) -> stage 4 ─> context block (3x3 conv -> module -> 3x3 conv)
                                                              │            -> concat stage 4 -> 3x3 bottleneck -> classifier
                                                              └ stage 3 ─> auxiliary FCN head (training, loss weight 0.4)

Logits are upsampled bilinearly to the input size. In training mode `forward` returns `(logits, aux_logits)`.

`sr_preset="sfsegnets"` through the registry (`timm.create_model`, the `srnet_*` entrypoints) builds the authors'
released SRNet as a whole: the preset SR module and the head and backbone options of `RELEASED_ARGS` (arguments
given explicitly win); docs/fidelity.md.
"""
from typing import Any, Dict, List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from timm.layers import ConvNormAct
from timm.models import build_model_with_cfg, register_model
from torch import nn

from ..layers.context import create_context_block
from ._args import check_model_args
from ._hub import generate_hub_cfgs
from .segmentation import FCNHead, Segmenter, _classifier, check_image, dataset_cfgs, factory_device

__all__ = ["SRNet", "SRNetHead", "RELEASED_ARGS", "HEAD_INITS", "dilate_first_blocks"]

HEAD_INITS = ("default", "kaiming_normal")

# SRNet arguments of a released network, keyed by the `sr_preset` of its SR module: lxtGH/SFSegNets 531067b
# (network/srnet.py, ModuleHead, Aux_Module, resnet_d variant "D", mynn.initialize_weights and Upsample)
RELEASED_ARGS: Dict[str, Dict[str, Any]] = {
    "sfsegnets": dict(dropout=0.0, aux_dropout=0.1, align_corners=True, dilate_first_block=True,
                      head_init="kaiming_normal"),
}


def dilate_first_blocks(backbone: nn.Module) -> None:
    """Dilate every block of a dilated stage alike (the released `resnet_d`: layer3 at 2, layer4 at 4): each conv of
    a stage's first block takes the dilation and padding of the same conv in the stage's last block. timm dilates a
    stage's first block like the previous stage (`first_dilation`); an undilated stage is left as it is, and so is a
    stage of a single block (e.g. `resnet10t`'s), which holds no other block to copy from."""
    for stage in backbone.modules():
        if not isinstance(stage, nn.Sequential) or len(stage) < 2 or type(stage[0]) is not type(stage[-1]):
            continue
        last = dict(stage[-1].named_modules())
        for conv_name, conv in stage[0].named_modules():
            ref = last.get(conv_name)
            if (isinstance(conv, nn.Conv2d) and isinstance(ref, nn.Conv2d) and conv.kernel_size == ref.kernel_size
                    and conv.stride == ref.stride):
                conv.dilation, conv.padding = ref.dilation, ref.padding


def _kaiming_normal_init(module: nn.Module) -> None:
    """The released `initialize_weights` as it acts on our modules: `kaiming_normal_` (fan_in, gain sqrt 2) for every
    Conv2d weight, zero biases. (Its BatchNorm init is torch's default; our SR module's nn.Linear stand for their
    Conv1d, which it does not touch.)"""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


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
        self.head_hidden_size = channels
        self.context = create_context_block(context, in_channels, channels, **context_kwargs)
        self.bottleneck = ConvNormAct(in_channels + channels, channels, 3)
        self.dropout = nn.Dropout2d(dropout)
        self.classifier = _classifier(channels, num_classes)

    def reset_classifier(self, num_classes: int, **dd) -> None:
        self.classifier = _classifier(self.head_hidden_size, num_classes, **dd).train(self.training)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.bottleneck(torch.cat([x, self.context(x)], dim=1))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.dropout(x)
        return x if pre_logits else self.classifier(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class SRNet(Segmenter):
    """Semantic segmenter: a timm backbone at output stride 8, a context head, an auxiliary FCN head.

    Args:
        backbone: any timm model name that supports `features_only` and `output_stride` (default: the deep-stem
            ResNet-50 of the released code, timm's `resnet50s`); `sr_resnet50` works too.
        num_classes: number of classes (0: no classifiers, `forward` returns the head's features).
        context: the context module between the head's two 3x3 convs: "sr" (the paper), "none" (dilated FCN),
            or a baseline of Table IV ("se", "nl", "psp", "aspp", "rcca", "ema", "a2", "cgnl", "enc", "ann").
        channels: D, the head's width (512 in the paper).
        aux: add the auxiliary FCN head on stage 3.
        dropout: Dropout2d before the classifiers (0.1; the released head has none).
        aux_dropout: the auxiliary head's (None: `dropout`).
        align_corners: of the final bilinear upsampling (False; True in the released code).
        dilate_first_block: dilate the first block of each dilated stage like the others (the released `resnet_d`;
            timm keeps the previous stage's dilation there); see `dilate_first_blocks`.
        head_init: "default" (torch's) or "kaiming_normal" (the released `initialize_weights`, on both heads).
        output_stride: the backbone's (8 in the paper; 16 or 32 trade accuracy for speed).
        pretrained_backbone: load the backbone's ImageNet weights through timm.
        **context_kwargs: options of the context module, e.g. the SR options `squeeze`, `reasoning`, `num_nodes`;
            an option the module does not take is refused.
    """

    heads = ("head", "aux_head")

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
            aux_dropout: Optional[float] = None,
            align_corners: bool = False,
            dilate_first_block: bool = False,
            head_init: str = "default",
            device=None,
            dtype=None,
            **context_kwargs,
    ):
        super().__init__()
        check_model_args("SRNet", num_classes=num_classes, in_chans=in_chans, channels=channels, dropout=dropout,
                         output_stride=output_stride, aux_dropout=aux_dropout)
        if head_init not in HEAD_INITS:
            raise ValueError(f"SRNet: head_init={head_init!r} is not one of {', '.join(map(repr, HEAD_INITS))}")
        aux_dropout = dropout if aux_dropout is None else aux_dropout
        with factory_device(device):
            self._init_backbone(backbone, in_chans, pretrained_backbone, output_stride=output_stride,
                                device=device, dtype=dtype)
            if dilate_first_block:
                dilate_first_blocks(self.backbone)
            aux_chs, feat_chs = (info["num_chs"] for info in self.feature_info[-2:])
            self.head = SRNetHead(feat_chs, num_classes, context, channels, dropout, **context_kwargs)
            self.aux_head = FCNHead(aux_chs, num_classes, dropout=aux_dropout) if aux else None
        if head_init == "kaiming_normal":
            for head in (self.head, self.aux_head):
                if head is not None:
                    _kaiming_normal_init(head)
        self.align_corners = align_corners
        self.num_classes = num_classes
        self.num_features = self.head_hidden_size = channels
        if dtype is not None:
            self.to(dtype=dtype)

    def forward_decoder(self, features: List[torch.Tensor]) -> torch.Tensor:
        """The head's map before dropout and classifier, from the backbone's last feature."""
        return self.head.forward_features(features[-1])

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head.forward_head(x, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
        check_image(x, self.in_chans, self.min_input_size, self.who)
        size = x.shape[-2:]
        features = self.backbone(x)
        logits = self.forward_head(self.forward_decoder(features))
        logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=self.align_corners)
        if self.training and self.aux_head is not None:
            aux = F.interpolate(self.aux_head(features[-2]), size=size, mode="bilinear",
                                align_corners=self.align_corners)
            return logits, aux
        return logits


def _create_srnet(variant: str, pretrained: bool = False, **kwargs) -> SRNet:
    kwargs = {**RELEASED_ARGS.get(kwargs.get("sr_preset"), {}), **kwargs}  # a released network as a whole
    # features_only=True: the backbone's levels through forward_intermediates (timm's FeatureGetterNet)
    return build_model_with_cfg(SRNet, variant, pretrained, feature_cfg=dict(feature_cls="getter", out_indices=None),
                                **kwargs)


# every classifier, so that num_classes= at load time re-initialises them all
_SRNET = dict(first_conv='backbone.conv1.0', classifier=('head.classifier', 'aux_head.classifier'))
_SRNET_R18 = dict(_SRNET, first_conv='backbone.conv1')

default_cfgs = generate_hub_cfgs({
    **dataset_cfgs('srnet_resnet18_d8', **_SRNET_R18),
    **dataset_cfgs('srnet_resnet50_d8', **_SRNET),
    **dataset_cfgs('srnet_resnet101_d8', **_SRNET),
    **dataset_cfgs('fcn_resnet18_d8', **_SRNET_R18),
    **dataset_cfgs('fcn_resnet50_d8', **_SRNET),
    **dataset_cfgs('fcn_resnet101_d8', **_SRNET),
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
