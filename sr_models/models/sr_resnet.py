"""SR-ResNet classifiers (Section IV-E, Table X): timm's ResNet with SE's FC layers replaced by graph reasoning.

Every bottleneck (or basic block) applies `SqueezeReasoningGate` where SE-ResNet applies its SE module. The blocks
are timm's, with two changes of schedule: the gate's rescale runs inside the residual sum (`rescale_add`), one pass
over the map where `x * g` then `+ shortcut` take two, and in eval the bottlenecks of the first two stages pool the
gate's input before conv3 (`SRBottleneck`). Same modules, weights and math.
"""
from contextlib import nullcontext
from functools import partial
from typing import Any, Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.models import build_model_with_cfg, register_model
from timm.models.resnet import BasicBlock, Bottleneck, ResNet
from torch import nn
from torch.nn.utils import fuse_conv_bn_weights

from ..layers import SqueezeReasoningGate
from ..layers.squeeze_reasoning import rescale_add
from ._args import check_model_args
from ._hub import PAPER_ID, generate_hub_cfgs
from .segmentation import check_image

__all__ = ["SRResNet", "SRBasicBlock", "SRBottleneck"]

torch.fx.wrap("rescale_add")  # one call in FX graphs of these blocks (fx.wrap acts on the calling module's names)


def _plain_inference(h: torch.Tensor) -> bool:
    """Whether `h` flows through an eager forward that records no gradient: grad mode off, not an FX Proxy, no
    torch.compile / torch.export / jit.trace tracing. Call it under `if not torch.jit.is_scripting()`."""
    return not (torch.is_grad_enabled() or isinstance(h, torch.fx.Proxy) or torch.compiler.is_compiling()
                or torch.jit.is_tracing())


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
    bn3, the rescale, the sum and act3 become one pass as in timm's block without a gate. A plain inference pass
    (eager, no gradient) takes the gate's logits from GAP(h) in one product with `conv3_gate_map`.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.pool_before_conv3 = (self.conv3.in_channels < self.conv3.out_channels <= 512
                                  and type(self.bn3) is nn.BatchNorm2d and self.bn3.track_running_stats)
        self._gate_map: Optional[tuple] = None  # (tensors it was made from, their versions, P^T, c)

    def train(self, mode: bool = True) -> "SRBottleneck":
        super().train(mode)
        if self.pool_before_conv3 and not mode:
            self.conv3_gate_map()  # made here, not in the first forward a benchmark or FLOP counter sees
        return self

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
            gate_map = self.conv3_gate_map() if _plain_inference(h) else None
            if gate_map is not None:
                weight_t, bias = gate_map
                pooled = h.sum((2, 3)).to(weight_t.dtype)
                with torch.autocast("cpu", enabled=False) if torch.is_autocast_enabled("cpu") else nullcontext():
                    logits = torch.addmm(bias, pooled, weight_t, alpha=1.0 / (h.shape[2] * h.shape[3]))
                return logits.sigmoid_().to(h.dtype).view(h.shape[0], bias.shape[0], 1, 1)  # N may be 0
        with torch.autocast("cpu", enabled=False):  # a matrix-vector product: bf16 would be slower, not faster
            gate = self.se.weights_from_pooled(self._pooled_after_bn3(h), 1.0)
        return gate.to(h.dtype)

    def _pooled_after_bn3(self, h: torch.Tensor) -> torch.Tensor:
        """GAP(bn3(conv3(h))) as (N, C): bn3 (running statistics) of W_3 GAP(h), GAP(h) as a sum times 1 / HW."""
        weight = self.conv3.weight
        mean = F.linear(h.sum((2, 3)).to(weight.dtype), weight.view(weight.shape[0], weight.shape[1]))
        n, c = mean.shape[0], mean.shape[1]
        return self.bn3(mean.mul_(1.0 / (h.shape[2] * h.shape[3])).view(n, c, 1, 1)).view(n, c)

    def conv3_gate_map(self) -> Optional[Tuple[torch.Tensor, torch.Tensor]]:
        """(P^T, c) with the gate's pre-sigmoid output = GAP(h) P^T + c: conv3, bn3 and Eq. 5 composed,
        P = M W_3' and c = M b_3' + b for (W_3', b_3') conv3 with bn3 folded in (running statistics) and (M, b) the
        gate's `linear_map`. Made again when one of the tensors it comes from is replaced or changed in place (its
        `_version`); None if one was made under torch.inference_mode, which keeps no version."""
        bn, reasoning = self.bn3, self.se.reasoning
        sources = [t for t in (self.conv3.weight, bn.weight, bn.bias, bn.running_mean, bn.running_var,
                               reasoning.adjacency.weight, reasoning.state.weight, reasoning.state.bias)
                   if t is not None]  # bn3's affine pair is None without affine
        try:  # ~10 us in every inference forward: attribute reads, no module traversal
            versions = [(t.data_ptr(), t._version) for t in sources] + [bn.eps]
        except RuntimeError:  # "Inference tensors do not track version counter"
            return None
        if self._gate_map is None or self._gate_map[1] != versions:
            device = self.conv3.weight.device.type
            with torch.no_grad(), (torch.autocast(device, enabled=False) if torch.amp.is_autocast_available(device)
                                   else nullcontext()):  # in the weights' dtype, even if made inside autocast
                m, b = self.se.linear_map()
                weight, bias = fuse_conv_bn_weights(self.conv3.weight, None, bn.running_mean, bn.running_var, bn.eps,
                                                    bn.weight, bn.bias)  # bn3(conv3(h)) = conv(h, weight, bias)
                weight = weight.view(self.conv3.out_channels, self.conv3.in_channels)
                # the detached sources keep their storage (and so their data_ptr) from being reused while cached
                self._gate_map = ([t.detach() for t in sources], versions, (m @ weight).t(), torch.addmv(b, m, bias))
        return self._gate_map[2], self._gate_map[3]


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
