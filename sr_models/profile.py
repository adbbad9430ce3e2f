"""Parameter and multiply-add counts, the units of the paper's tables."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_params(module: nn.Module) -> int:
    """Number of parameters (the paper's "Params")."""
    return sum(p.numel() for p in module.parameters())


@torch.no_grad()
def count_macs(module: nn.Module, input_size: Sequence[int]) -> int:
    """Multiply-adds of one forward pass on a zero tensor of `input_size` (the paper's "FLOPs"/"GFLOPs").

    torch's FlopCounterMode counts convolutions and matrix products at 2 FLOPs per multiply-add; the paper,
    like fvcore, counts multiply-adds, so this returns FLOPs / 2. Element-wise operations are not counted.
    """
    param = next(module.parameters(), None)
    x = torch.zeros(*input_size, device=param.device if param is not None else None)
    was_training = module.training
    module.eval()
    try:
        with FlopCounterMode(display=False) as counter:
            module(x)
    finally:
        module.train(was_training)
    return counter.get_total_flops() // 2
