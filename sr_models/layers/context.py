"""The context block of SRNet's head and the registry of context modules that can sit in it (Table IV).

Every block maps the backbone's stage-4 feature (B, in_channels, H, W) to (B, channels, H, W). Most modules sit
between two 3x3 convs (Table IV's "+2x3x3" row): 3x3 conv in_channels -> channels, module(channels), 3x3 conv
channels -> channels. Blocks that replace the convs altogether (PSP, ASPP) register a whole block instead.
"""
from __future__ import annotations

from typing import Callable, Dict

from functools import partial

from timm.layers import ConvNormAct, NonLocalAttn, SEModule
from torch import nn

from .aspp import ASPP
from .asymmetric_non_local import AsymmetricPyramidNonLocal
from .cgnl import CompactGeneralizedNonLocal
from .criss_cross import CrissCrossAttention
from .double_attention import DoubleAttention
from .ema import EMAUnit
from .encoding import ContextEncoding
from .pyramid_pooling import PyramidPoolingModule
from .squeeze_reasoning import create_squeeze_reasoning

__all__ = ["CONTEXT_MODULES", "CONTEXT_BLOCKS", "create_context_block", "create_context_module", "context_names"]


def _psp_block(in_channels: int, channels: int, bins=(1, 2, 3, 6)) -> nn.Module:
    """PSPNet's head: pyramid pooling (branches of `channels`), then a 3x3 conv to `channels`."""
    ppm = PyramidPoolingModule(in_channels, channels, bins)
    return nn.Sequential(ppm, ConvNormAct(ppm.out_channels, channels, 3))


# name -> factory(channels, **kwargs) of a module that keeps the shape (B, channels, H, W)
CONTEXT_MODULES: Dict[str, Callable[..., nn.Module]] = {
    "none": lambda channels: nn.Identity(),
    "sr": create_squeeze_reasoning,  # SqueezeReasoning, or a preset with sr_preset="sfsegnets"
    "se": partial(SEModule, rd_ratio=1 / 16),
    "nl": partial(NonLocalAttn, use_scale=True, rd_ratio=1 / 2),
    "rcca": CrissCrossAttention,
    "ema": EMAUnit,
    "a2": DoubleAttention,
    "cgnl": CompactGeneralizedNonLocal,
    "enc": ContextEncoding,
    "ann": AsymmetricPyramidNonLocal,
}

# name -> factory(in_channels, channels, **kwargs) of a whole block (B, in_channels, H, W) -> (B, channels, H, W)
CONTEXT_BLOCKS: Dict[str, Callable[..., nn.Module]] = {
    "psp": _psp_block,
    "aspp": ASPP,
}


def context_names() -> list[str]:
    """Every name `create_context_block` accepts."""
    return sorted({*CONTEXT_MODULES, *CONTEXT_BLOCKS})


def create_context_module(name: str, channels: int = 512, **kwargs) -> nn.Module:
    """The context module `name` alone, (B, channels, H, W) -> same shape (the Table IV "overhead" rows)."""
    if name not in CONTEXT_MODULES:
        raise ValueError(f"unknown context module {name!r}; choose one of {sorted(CONTEXT_MODULES)}")
    return CONTEXT_MODULES[name](channels, **kwargs)


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
        create_context_module(name, channels, **kwargs),
        ConvNormAct(channels, channels, 3),
    )
