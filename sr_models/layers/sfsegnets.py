"""Weights of the authors' released code (lxtGH/SFSegNets, commit 531067b) in sr-models' names and layouts.

Their `ChannelReasonModule` maps onto `SqueezeReasoning.sfsegnets(...)`, their `SRNet_r50/r101` onto
`srnet_resnet50_d8/srnet_resnet101_d8(sr_preset="sfsegnets")`. Written from the released code's module and
parameter names (network/nn/operators.py, network/srnet.py, network/resnet_d.py); see docs/fidelity.md.
"""
from __future__ import annotations

import re
from typing import Dict, Mapping

import torch

__all__ = ["convert_sfsegnets_state_dict"]

# ChannelReasonModule child -> SqueezeReasoning child
_SR_CHILDREN = {
    "t": "proj_x",  # x~ (theta)
    "p": "squeeze.proj_b",  # GHP phi
    "g": "squeeze.proj_c",  # GHP g
    "conv_adj": "reasoning.op.adjacency",  # A_g, Conv1d(K, K, 1) -> (K, K)
    "bn_adj": "reasoning.op.adjacency_norm",  # BN_K
    "conv_wg": "reasoning.op.state",  # W_g, Conv1d(d, d, 1) -> (d, d)
    "bn_wg": "reasoning.op.norm",
    "z": "reconstruction.proj",  # grouped W_R
    "gn": "reconstruction.norm",
}

# their SRNet prefix -> ours (first match wins); the SR module inside the head is `head.module`
_SRNET_PREFIXES = [
    (r"layer0\.0\.", "backbone.conv1."),  # deep stem 3x3 64-64-128
    (r"layer0\.1\.", "backbone.bn1."),
    (r"(layer[1-4])\.", r"backbone.\1."),
    (r"head\.conva\.0\.", "head.context.0.conv."),
    (r"head\.conva\.1\.", "head.context.0.bn."),
    (r"head\.module\.", "head.context.1."),
    (r"head\.convb\.0\.", "head.context.2.conv."),
    (r"head\.convb\.1\.", "head.context.2.bn."),
    (r"head\.bottleneck\.0\.", "head.bottleneck.conv."),
    (r"head\.bottleneck\.1\.", "head.bottleneck.bn."),
    (r"head\.bottleneck\.3\.", "head.classifier."),
    (r"aux_layer\.aux\.0\.", "aux_head.conv.conv."),
    (r"aux_layer\.aux\.1\.", "aux_head.conv.bn."),
    (r"aux_layer\.aux\.4\.", "aux_head.classifier."),
]
_AUX_CONV_BIAS = "aux_head.conv.conv.bias"


def _sr_key(key: str) -> str:
    child, _, leaf = key.partition(".")
    if child not in _SR_CHILDREN or not leaf:
        raise ValueError(f"unexpected key {key!r} in a ChannelReasonModule state dict (expected one of "
                         f"{sorted(_SR_CHILDREN)} + parameter)")
    return f"{_SR_CHILDREN[child]}.{leaf}"


def _srnet_key(key: str) -> str:
    for pattern, replacement in _SRNET_PREFIXES:
        renamed, hits = re.subn(f"^{pattern}", replacement, key)
        if hits:
            if renamed.startswith("head.context.1."):
                return "head.context.1." + _sr_key(renamed[len("head.context.1."):])
            return renamed
    raise ValueError(f"unexpected key {key!r} in an SFSegNets SRNet state dict")


def convert_sfsegnets_state_dict(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Their `ChannelReasonModule` or `SRNet` state dict (a `module.` prefix from DistributedDataParallel is
    dropped) -> ours, to load with `strict=True` into `SqueezeReasoning.sfsegnets(C, C')` or
    `srnet_resnet{50,101}_d8(sr_preset="sfsegnets")`.

    Layouts: their Conv1d weights (K, K, 1) / (d, d, 1) become our (K, K) / (d, d) matrices; the bias of their
    auxiliary 3x3 conv, which feeds a BatchNorm, is folded into that BatchNorm's running mean (exact in eval and
    train mode: a constant before a BatchNorm only shifts its mean).
    """
    items = {re.sub(r"^module\.", "", k): v for k, v in state_dict.items()}
    if not items:
        raise ValueError("the SFSegNets state dict is empty")
    bare_module = all(k.partition(".")[0] in _SR_CHILDREN for k in items)
    out = {(_sr_key(k) if bare_module else _srnet_key(k)): v for k, v in items.items()}
    for name in ("reasoning.op.adjacency.weight", "reasoning.op.state.weight"):
        for key in [k for k in out if k == name or k.endswith("." + name)]:
            if out[key].ndim != 3 or out[key].shape[-1] != 1:
                raise ValueError(f"{key}: expected a Conv1d weight (out, in, 1), got shape {tuple(out[key].shape)}")
            out[key] = out[key][..., 0]
    bias = out.pop(_AUX_CONV_BIAS, None)
    if bias is not None:
        out["aux_head.conv.bn.running_mean"] = out["aux_head.conv.bn.running_mean"] - bias
    return out
