"""SR-ResNet classifiers (Section IV-E, Table X): timm's ResNet with SE's FC layers replaced by graph reasoning.

Every bottleneck (or basic block) applies `SqueezeReasoningGate` where SE-ResNet applies its SE module. The blocks
are timm's, with two changes of schedule: the gate's rescale runs inside the residual sum (`rescale_add`), one pass
over the map where `x * g` then `+ shortcut` take two, and in eval the bottlenecks of the first two stages pool the
gate's input before conv3 (`SRBottleneck`). Same modules, weights and math.
"""
from functools import partial
from typing import Any, Dict

import torch
import torch.nn.functional as F
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.models import build_model_with_cfg, register_model
from timm.models.resnet import BasicBlock, Bottleneck, ResNet
from torch import nn

from ..layers import SqueezeReasoningGate
from ..layers.squeeze_reasoning import rescale_add, runs_as_is
from ._args import check_model_args
from ._hub import PAPER_ID, generate_hub_cfgs
from .segmentation import check_image

__all__ = ["SRResNet", "SRBasicBlock", "SRBottleneck"]

torch.fx.wrap("rescale_add")  # one call in FX graphs of these blocks (fx.wrap acts on the calling module's names)


class _GatedResidualSum:
    """The end of an SR-ResNet block: shortcut + x * g, the SR gate applied inside the residual sum."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not isinstance(self.se, SqueezeReasoningGate):
            raise TypeError(f"{type(self).__name__} applies an SR gate in its residual sum, but its attn_layer built "
                            f"{type(self.se).__name__}; for another attention layer pass timm's block "
                            f"(block=timm.models.resnet.Bottleneck or BasicBlock)")

    def gated_sum(self, x: torch.Tensor, shortcut: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        if self.drop_path is not None and self.training:  # stochastic depth drops the gated branch
            return shortcut + self.drop_path(x * gate)
        return rescale_add(x, gate, shortcut, self.se.inplace)


class SRBasicBlock(_GatedResidualSum, BasicBlock):
    """timm's BasicBlock whose SR gate rescales inside the residual sum: act2(shortcut + x * g)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        x = self.aa(self.act1(self.drop_block(self.bn1(self.conv1(x)))))
        x = self.bn2(self.conv2(x))
        return self.act2(self.gated_sum(x, shortcut, self.se.weights(x)))


class SRBottleneck(_GatedResidualSum, Bottleneck):
    """timm's Bottleneck whose SR gate rescales inside the residual sum: act3(shortcut + x * g).

    With `pool_before_conv3` (stages of at most 512 channels, bn3 a BatchNorm) an eval pass takes the gate's global
    average from conv3's input h: conv3 (1x1) and bn3 (running statistics) act on each position alike, so
    GAP(bn3(conv3(h))) = bn3(W_3 GAP(h)), and h has a quarter of the channels. That reads a quarter of the map for
    one (C/4 x C) matrix-vector product: less work where maps are large and conv3 small, and under torch.compile
    bn3, the rescale, the sum and act3 become one pass as in timm's block without a gate.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.pool_before_conv3 = (self.conv3.in_channels < self.conv3.out_channels <= 512
                                  and type(self.bn3) is nn.BatchNorm2d and self.bn3.track_running_stats)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.aa(self.act2(self.drop_block(self.bn2(self.conv2(x)))))
        if self.pool_before_conv3 and not self.bn3.training:
            gate = self._gate_from_conv3_input(x)
            x = self.bn3(self.conv3(x))
        else:
            x = self.bn3(self.conv3(x))
            gate = self.se.weights(x)
        return self.act3(self.gated_sum(x, shortcut, gate))

    def _gate_from_conv3_input(self, h: torch.Tensor) -> torch.Tensor:
        """The gate of bn3(conv3(h)) from h, in h's dtype; its vectors in the weights' dtype, outside autocast."""
        if not torch.jit.is_scripting():
            if runs_as_is(h, self.conv3.weight.dtype):
                return self.se.weights_from_pooled(self._pooled_after_bn3(h), 1.0)
        with torch.autocast("cpu", enabled=False):  # a matrix-vector product: bf16 would be slower, not faster
            gate = self.se.weights_from_pooled(self._pooled_after_bn3(h), 1.0)
        return gate.to(h.dtype)

    def _pooled_after_bn3(self, h: torch.Tensor) -> torch.Tensor:
        """GAP(bn3(conv3(h))) as (N, C): bn3 (running statistics) of W_3 GAP(h), GAP(h) as a sum times 1 / HW."""
        weight = self.conv3.weight
        mean = F.linear(h.sum((2, 3)).to(weight.dtype), weight.view(weight.shape[0], weight.shape[1]))
        n, c = mean.shape[0], mean.shape[1]
        return self.bn3(mean.mul_(1.0 / (h.shape[2] * h.shape[3])).view(n, c, 1, 1)).view(n, c)


class SRResNet(ResNet):
    """timm's ResNet (its arguments, weights and API unchanged) that refuses input it cannot take in one line."""

    def __init__(self, *args, **kwargs):
        check_model_args("SRResNet", num_classes=kwargs.get("num_classes"), in_chans=kwargs.get("in_chans"))
        super().__init__(*args, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image(x, self.in_chans, 1, "SRResNet")
        return self.forward_head(self.forward_features(x))


def _create_sr_resnet(variant: str, pretrained: bool = False, **kwargs) -> SRResNet:
    kwargs.setdefault("block_args", dict(attn_layer=partial(SqueezeReasoningGate, inplace=True)))
    return build_model_with_cfg(SRResNet, variant, pretrained, **kwargs)


def _cfg(**kwargs) -> Dict[str, Any]:
    return {
        'num_classes': 1000, 'input_size': (3, 224, 224), 'pool_size': (7, 7),
        'crop_pct': 0.875, 'interpolation': 'bilinear',
        'mean': IMAGENET_DEFAULT_MEAN, 'std': IMAGENET_DEFAULT_STD,
        'first_conv': 'conv1', 'classifier': 'fc',
        'license': 'apache-2.0', 'paper_ids': PAPER_ID,
        'paper_name': 'Towards Efficient Scene Understanding via Squeeze Reasoning',
        'origin_url': 'https://github.com/lxtGH/SFSegNets',
        **kwargs,
    }


default_cfgs = generate_hub_cfgs({
    'sr_resnet18.in1k': _cfg(),
    'sr_resnet34.in1k': _cfg(),
    'sr_resnet50.in1k': _cfg(),
    'sr_resnet101.in1k': _cfg(),
    'sr_resnet152.in1k': _cfg(),
    'sr_resnet50d.in1k': _cfg(first_conv='conv1.0'),
    'sr_resnext50_32x4d.in1k': _cfg(),
})


@register_model
def sr_resnet18(pretrained: bool = False, **kwargs) -> SRResNet:
    model_args = dict(block=SRBasicBlock, layers=(2, 2, 2, 2))
    return _create_sr_resnet('sr_resnet18', pretrained, **dict(model_args, **kwargs))


@register_model
def sr_resnet34(pretrained: bool = False, **kwargs) -> SRResNet:
    model_args = dict(block=SRBasicBlock, layers=(3, 4, 6, 3))
    return _create_sr_resnet('sr_resnet34', pretrained, **dict(model_args, **kwargs))


@register_model
def sr_resnet50(pretrained: bool = False, **kwargs) -> SRResNet:
    model_args = dict(block=SRBottleneck, layers=(3, 4, 6, 3))
    return _create_sr_resnet('sr_resnet50', pretrained, **dict(model_args, **kwargs))


@register_model
def sr_resnet101(pretrained: bool = False, **kwargs) -> SRResNet:
    model_args = dict(block=SRBottleneck, layers=(3, 4, 23, 3))
    return _create_sr_resnet('sr_resnet101', pretrained, **dict(model_args, **kwargs))


@register_model
def sr_resnet152(pretrained: bool = False, **kwargs) -> SRResNet:
    model_args = dict(block=SRBottleneck, layers=(3, 8, 36, 3))
    return _create_sr_resnet('sr_resnet152', pretrained, **dict(model_args, **kwargs))


@register_model
def sr_resnet50d(pretrained: bool = False, **kwargs) -> SRResNet:
    model_args = dict(block=SRBottleneck, layers=(3, 4, 6, 3), stem_width=32, stem_type='deep', avg_down=True)
    return _create_sr_resnet('sr_resnet50d', pretrained, **dict(model_args, **kwargs))


@register_model
def sr_resnext50_32x4d(pretrained: bool = False, **kwargs) -> SRResNet:
    model_args = dict(block=SRBottleneck, layers=(3, 4, 6, 3), cardinality=32, base_width=4)
    return _create_sr_resnet('sr_resnext50_32x4d', pretrained, **dict(model_args, **kwargs))
