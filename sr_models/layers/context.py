"""The context block of SRNet's head and the registry of context modules that can sit in it (Table IV).

Every block maps the backbone's stage-4 feature (B, in_channels, H, W) to (B, channels, H, W). Most modules sit
between two 3x3 convs (Table IV's "+2x3x3" row): 3x3 conv in_channels -> channels, module(channels), 3x3 conv
channels -> channels. Blocks that replace the convs altogether (PSP, ASPP) register a whole block instead.
"""
from __future__ import annotations

from typing import Callable, Dict

from timm.layers import ConvNormAct
from torch import nn

from .squeeze_reasoning import SqueezeReasoning

__all__ = ["CONTEXT_MODULES", "CONTEXT_BLOCKS", "create_context_block", "context_names"]

# name -> factory(channels, **kwargs) of a module that keeps the shape (B, channels, H, W)
CONTEXT_MODULES: Dict[str, Callable[..., nn.Module]] = {
    "none": lambda channels: nn.Identity(),
    "sr": SqueezeReasoning,
}

# name -> factory(in_channels, channels, **kwargs) of a whole block (B, in_channels, H, W) -> (B, channels, H, W)
CONTEXT_BLOCKS: Dict[str, Callable[..., nn.Module]] = {}


def context_names() -> list[str]:
    """Every name `create_context_block` accepts."""
    return sorted({*CONTEXT_MODULES, *CONTEXT_BLOCKS})


def create_context_block(name: str, in_channels: int, channels: int = 512, **kwargs) -> nn.Module:
    """3x3 conv -> context module `name` -> 3x3 conv, or the whole block registered under `name`."""
    if name in CONTEXT_BLOCKS:
        return CONTEXT_BLOCKS[name](in_channels, channels, **kwargs)
    if name not in CONTEXT_MODULES:
        raise ValueError(f"unknown context={name!r}; choose one of {context_names()}")
    if name == "none" and kwargs:
        raise ValueError(f"context='none' takes no options, got {sorted(kwargs)}")
    return nn.Sequential(
        ConvNormAct(in_channels, channels, 3),
        CONTEXT_MODULES[name](channels, **kwargs),
        ConvNormAct(channels, channels, 3),
    )
