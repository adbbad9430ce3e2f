"""The context block of a segmentation head and the registry of context modules that can sit in it (Table IV).

One factory builds the context of every head in the zoo:
- SRNet's head (`convs=True`): 3x3 conv in_channels -> channels, module(channels), 3x3 conv channels -> channels
  (Table IV's "+2x3x3" row);
- DFSeg (`convs=False`, Section IV-B): the module alone on the last stage, keeping its in_channels.
Blocks that replace the convs altogether (PSP, ASPP) register a whole block (B, in_channels, H, W) ->
(B, channels, H, W) and are built the same way in both heads (DFSeg's PPM is the PSP block with a 1x1 conv).
"""
from __future__ import annotations

import inspect
from functools import partial
from typing import Callable, Dict, Optional, Sequence, Tuple

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

__all__ = ["CONTEXT_MODULES", "CONTEXT_BLOCKS", "create_context_block", "create_context_module", "context_names",
           "context_out_channels"]


def _psp_block(in_channels: int, channels: int, bins: Sequence[int] = (1, 2, 3, 6), kernel_size: int = 3,
               drop_rate: float = 0.0) -> nn.Module:
    """PSPNet's head: pyramid pooling (branches of `channels`), then a conv to `channels` (PSPNet 3x3; DFSeg 1x1 +
    dropout 0.1, the released code's PSPModule)."""
    ppm = PyramidPoolingModule(in_channels, channels, bins)
    layers = [ppm, ConvNormAct(ppm.out_channels, channels, kernel_size)]
    return nn.Sequential(*layers, nn.Dropout2d(drop_rate)) if drop_rate else nn.Sequential(*layers)


def _non_local(channels: int, use_scale: bool = True, rd_ratio: float = 1 / 2, rd_channels: Optional[int] = None,
               rd_divisor: int = 8) -> nn.Module:
    """timm's NonLocalAttn (embedded Gaussian, Wang et al.) with the paper's C/2 embedding; every option named, since
    NonLocalAttn itself swallows unknown ones."""
    return NonLocalAttn(channels, use_scale=use_scale, rd_ratio=rd_ratio, rd_channels=rd_channels,
                        rd_divisor=rd_divisor)


# name -> factory(channels, **kwargs) of a module that keeps the shape (B, channels, H, W)
CONTEXT_MODULES: Dict[str, Callable[..., nn.Module]] = {
    "none": lambda channels: nn.Identity(),
    "sr": create_squeeze_reasoning,  # SqueezeReasoning, or a preset with sr_preset="sfsegnets"
    "se": partial(SEModule, rd_ratio=1 / 16),
    "nl": _non_local,
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


def _build(name: str, factory: Callable[..., nn.Module], channel_args: Tuple[int, ...], kwargs: dict) -> nn.Module:
    """`factory(*channel_args, **kwargs)`, refusing options it does not take with a one-line TypeError."""
    params = list(inspect.signature(factory).parameters.values())[len(channel_args):]
    if all(p.kind != p.VAR_KEYWORD for p in params):  # else the factory passes them on and its callee checks
        options = sorted(p.name for p in params if p.kind != p.VAR_POSITIONAL and p.name not in ("device", "dtype"))
        unknown = sorted(set(kwargs) - set(options))
        if unknown:
            takes = f"its options are {', '.join(options)}" if options else "it takes no options"
            raise TypeError(f"context={name!r} does not take {', '.join(unknown)}; {takes}")
    try:
        return factory(*channel_args, **kwargs)
    except TypeError as e:
        raise TypeError(f"context={name!r}: {e}") from e


def create_context_module(name: str, channels: int = 512, **kwargs) -> nn.Module:
    """The context module `name` alone, (B, channels, H, W) -> same shape (the Table IV "overhead" rows)."""
    if name not in CONTEXT_MODULES:
        raise ValueError(f"unknown context module {name!r}; choose one of {sorted(CONTEXT_MODULES)}")
    return _build(name, CONTEXT_MODULES[name], (channels,), kwargs)


def context_out_channels(name: str, in_channels: int, channels: int, convs: bool = True) -> int:
    """Channels of `create_context_block(name, in_channels, channels, convs)`'s output."""
    return in_channels if name in CONTEXT_MODULES and not convs else channels


def create_context_block(name: str, in_channels: int, channels: int = 512, convs: bool = True,
                         **kwargs) -> nn.Module:
    """The whole block registered under `name`, else the context module `name` between two 3x3 convs
    (`convs=False`: the module alone on `in_channels`, see `context_out_channels`)."""
    if name in CONTEXT_BLOCKS:
        return _build(name, CONTEXT_BLOCKS[name], (in_channels, channels), kwargs)
    if name not in CONTEXT_MODULES:
        raise ValueError(f"unknown context={name!r}; choose one of {context_names()}")
    if not convs:
        return create_context_module(name, in_channels, **kwargs)
    return nn.Sequential(
        ConvNormAct(in_channels, channels, 3),
        create_context_module(name, channels, **kwargs),
        ConvNormAct(channels, channels, 3),
    )
