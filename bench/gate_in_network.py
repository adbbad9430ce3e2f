"""Where the SR gate's cost goes inside sr_resnet50: the gate's work added step by step, timed in the whole network.

bench/gate.py times the gate alone, in a loop, where its small ops stay in cache; inside the network each runs
after a large convolution and costs several times more. This bench builds sr_resnet50 three ways and times each
against resnet50 (same weights where they share them) on the eager paths:
  - "constant gate": SRBottleneck with Eq. 5 replaced by a fixed vector: the residual becomes
    shortcut + x * g (`addcmul`) where resnet50 adds; no pooling, no reasoning;
  - "constant gate + pooled sums": the same, and each block also sums its map over H x W as the real gate does
    (conv3's input in stages 1-2, the block's output in stages 3-4);
  - "sr_resnet50": the gate as it runs (the sums, Eq. 5's small products, the sigmoid, the casts).
Consecutive rows differ by one step: the rescale inside the sum, the sums, the reasoning.
Usage: python bench/gate_in_network.py [--rounds N] [--batch-sizes 1 8] [--output FILE]
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time
from functools import partial
from pathlib import Path

import timm
import torch

from sr_models.inference import bf16_is_native
from sr_models.layers import SqueezeReasoningGate
from sr_models.models.sr_resnet import SRBottleneck
from sr_models.profile import interleaved_times

PATHS = ("fp32 eager", "channels_last", "bf16 autocast", "bf16 + channels_last")


class FixedGate(SqueezeReasoningGate):
    """The SR gate with its output fixed: `weights` returns a constant (1, C, 1, 1) vector in the map's dtype,
    after summing the map over H x W if `pooled` (the sum's result unused, its cost kept)."""

    def __init__(self, channels: int, pooled: bool = False, **kwargs):
        super().__init__(channels, **kwargs)
        self.pooled = pooled
        self.register_buffer("fixed", torch.rand(1, channels, 1, 1) / 2 + 0.5, persistent=False)
        self.register_buffer("fixed_bf16", self.fixed.bfloat16(), persistent=False)  # no cast in the timed pass

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        if self.pooled:
            x.sum((2, 3))
        return self.fixed_bf16 if x.dtype == torch.bfloat16 else self.fixed


class FixedGateBottleneck(SRBottleneck):
    """SRBottleneck whose stages 1-2 take the fixed gate where they pool conv3's input (the map the real gate sums)."""

    def _gate_from_conv3_input(self, h: torch.Tensor) -> torch.Tensor:
        return self.se.weights(h)


def fixed_gate_sr_resnet50(pooled: bool) -> torch.nn.Module:
    gate = partial(FixedGate, pooled=pooled, inplace=True)
    return timm.create_model("sr_resnet50", block=FixedGateBottleneck, block_args=dict(attn_layer=gate))


# label -> model factory; resnet50 twice: how far from 1.000 noise alone puts a ratio
MODELS = {
    "resnet50": partial(timm.create_model, "resnet50"),
    "constant gate": partial(fixed_gate_sr_resnet50, pooled=False),
    "constant gate + pooled sums": partial(fixed_gate_sr_resnet50, pooled=True),
    "sr_resnet50": partial(timm.create_model, "sr_resnet50"),
    "resnet50 again": partial(timm.create_model, "resnet50"),
}


def build(label: str) -> torch.nn.Module:
    torch.manual_seed(0)  # the same weights in every model that shares them
    return MODELS[label]().eval()


def _call(model: torch.nn.Module, x: torch.Tensor, path: str):
    if "channels_last" in path:
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    bf16 = path.startswith("bf16")

    def run():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            return model(x)
    return run


def measure(batch: int, paths, rounds: int, clock) -> list:
    """Table rows: each model's time / resnet50's on every path, the median of the per-round ratios."""
    x = torch.randn(batch, 3, 224, 224)
    calls = {}
    for path in paths:  # a model per path: channels_last converts its weights in place
        calls.update({(label, path): _call(build(label), x, path) for label in MODELS})
    with torch.no_grad():
        for call in calls.values():
            call()
        times = interleaved_times(calls, rounds, warmup=1, clock=clock, group_size=len(MODELS))
    rows = []
    for label in list(MODELS)[1:]:
        ratios = [statistics.median(a / b for a, b in zip(times[(label, p)], times[("resnet50", p)])) for p in paths]
        rows.append(f"| {label} | {batch} | " + " | ".join(f"{r:.3f}" for r in ratios) + " |")
    plain = [statistics.median(times[("resnet50", p)]) * 1e3 for p in paths]
    rows.append(f"| (resnet50, ms) | {batch} | " + " | ".join(f"{t:.1f}" for t in plain) + " |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--output", type=Path, help="also write the table to this markdown file")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error(f"--rounds {args.rounds}: at least one round is needed")
    if min(args.batch_sizes) < 1:
        parser.error(f"--batch-sizes {' '.join(map(str, args.batch_sizes))}: every batch size must be at least 1")
    if args.output and not args.output.parent.is_dir():
        parser.error(f"--output {args.output}: no folder {args.output.parent} to write it in")
    paths = [p for p in PATHS if bf16_is_native() or not p.startswith("bf16")]
    torch.set_num_threads(1)
    lines = [f"torch {torch.__version__}, 1 thread, {platform.machine()}, bf16 native: {bf16_is_native()}; "
             f"{args.rounds} interleaved rounds (model order rotated each round), CPU time of this process; "
             "cell = time / resnet50's time on the same path, median over rounds of the per-round ratio", "",
             "| model | batch | " + " | ".join(paths) + " |", "|---|---|" + "---|" * len(paths)]
    print("\n".join(lines), flush=True)
    for batch in args.batch_sizes:
        rows = measure(batch, paths, args.rounds, time.process_time)
        print("\n".join(rows), flush=True)
        lines += rows
        if args.output:
            args.output.write_text("# bench/gate_in_network.py\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
