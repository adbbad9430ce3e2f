"""Warm start: an SR-ResNet (or an SRNet on an SR-ResNet backbone) from a pretrained timm ResNet.

Every weight the two share is copied. Each `SqueezeReasoningGate` is then set so that its block computes exactly
the plain ResNet block: the gate's W_g (Eq. 5's state transform) is zeroed and its bias set to 0, so the gate is
sigmoid(0) = 1/2 for every input and channel, and the BatchNorm just before the gate (the last of the residual
branch) has its weight and bias doubled. 2 x 1/2 = 1 exactly in floating point, so the block's output, and the
network's logits, are the ResNet's. A_g keeps its initialisation; W_g receives a gradient from the first step
(its input G (I - A_g) is not zero), so the gates start learning at once, at the sigmoid's steepest point, where
an SR-ResNet trained from scratch starts too. See docs/training.md ("Warm start") for the alternatives weighed.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Union

import timm
import torch
from timm.models import load_state_dict
from timm.models.resnet import BasicBlock, Bottleneck
from torch import nn

from ..layers import SqueezeReasoningGate

__all__ = ["load_resnet_state_dict", "warm_start_from_resnet", "init_gates_as_identity"]

_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")  # timm's order in a saved folder


def load_resnet_state_dict(source: Union[str, Path]) -> Dict[str, torch.Tensor]:
    """The weights of a timm ResNet from a checkpoint file, a saved folder, a Hub id (`org/name`, `hf-hub:org/name`)
    or a timm pretrained tag (`resnet50.a1_in1k`)."""
    path = Path(source)
    if path.is_file():
        return load_state_dict(str(path))
    if path.is_dir():
        for name in _WEIGHT_FILES:
            if (path / name).is_file():
                return load_state_dict(str(path / name))
        raise FileNotFoundError(f"init_from={source}: the folder holds none of {', '.join(_WEIGHT_FILES)}")
    name = str(source)
    if "/" in name and not name.startswith("hf-hub:"):
        name = f"hf-hub:{name}"
    if not name.startswith("hf-hub:") and not timm.is_model(name):
        raise ValueError(f"init_from={source!r} is not a file, a folder, a Hub id or a timm model name")
    return timm.create_model(name, pretrained=True).state_dict()


def _gated_blocks(model: nn.Module) -> List[nn.Module]:
    return [m for m in model.modules() if isinstance(m, (BasicBlock, Bottleneck))
            and isinstance(m.se, SqueezeReasoningGate)]


@torch.no_grad()
def init_gates_as_identity(model: nn.Module) -> int:
    """Set every SR gate of `model`'s ResNet blocks to a constant 1/2 and double the BatchNorm before it (see the
    module docstring): each block then computes the plain ResNet block. Returns the number of gates set."""
    blocks = _gated_blocks(model)
    for block in blocks:
        state = block.se.reasoning.state  # W_g: nn.Linear with a bias (the gate has no norm)
        state.weight.zero_()
        state.bias.zero_()
        norm = block.bn3 if isinstance(block, Bottleneck) else block.bn2
        norm.weight.mul_(2.0)
        norm.bias.mul_(2.0)
    return len(blocks)


@torch.no_grad()
def warm_start_from_resnet(model: nn.Module, source: Union[str, Path, Dict[str, torch.Tensor]]) -> Dict[str, list]:
    """Copy a timm ResNet's weights into an SR-ResNet (or the backbone of an SRNet built on one) and set its SR gates
    so the network starts as that ResNet. A classifier of another shape (other classes) is left as initialised.

    Returns what happened: `copied`, `kept` (the model's own: the gates, and a classifier of another shape) and
    `unused` (weights of the ResNet the model has no place for, e.g. its classifier in a segmenter's backbone).
    """
    state = load_resnet_state_dict(source) if not isinstance(source, dict) else source
    target = model.backbone if hasattr(model, "backbone") else model
    if not _gated_blocks(target):
        raise ValueError(f"init_from: {type(model).__name__} has no SR-ResNet blocks to warm-start "
                         f"(use an sr_resnet* model, or an SRNet with backbone='sr_resnet*')")
    own = target.state_dict()
    copied, mismatched = [], []
    for key, value in state.items():
        if key in own and own[key].shape == value.shape:
            own[key].copy_(value)
            copied.append(key)
        elif key in own:
            mismatched.append(key)
    classifier = getattr(target, "pretrained_cfg", {}).get("classifier", "fc")
    bad = [k for k in mismatched if not k.startswith(f"{classifier}.")]
    absent = [k for k in own if k not in state and ".se." not in k and not k.startswith(f"{classifier}.")
              and not k.endswith("num_batches_tracked")]
    extra = [k for k in state if k not in own and not k.startswith(f"{classifier}.")]
    if bad or absent or extra:
        example = (bad or absent or extra)[0]
        raise ValueError(f"init_from: the checkpoint is not this model's ResNet ({len(bad)} weights of another shape, "
                         f"{len(absent)} missing, {len(extra)} extra, e.g. {example!r}); use the ResNet of the same "
                         f"depth and width")
    init_gates_as_identity(target)
    return {"copied": copied, "kept": [k for k in own if k not in copied], "unused": [k for k in state if k not in own]}
