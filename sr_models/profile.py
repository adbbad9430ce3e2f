"""Parameter and multiply-add counts, the units of the paper's tables."""
from __future__ import annotations

from functools import partial
from typing import Dict, Optional, Sequence

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


_PEAK_SCRIPT = """
import importlib, json, sys, torch
spec = json.loads(sys.argv[1])
module, _, name = spec["factory"].partition(":")
model = getattr(importlib.import_module(module), name)(*spec["args"], **spec["kwargs"]).eval()
x = torch.randn(*spec["input_size"])
torch.set_num_threads(spec["threads"])
def status_kib(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key))
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset the peak resident size (VmHWM) to the current one
before = status_kib("VmRSS")
with torch.no_grad():
    model(x)
print(json.dumps({"peak_kib": status_kib("VmHWM") - before}))
"""


def peak_memory_mib(
        factory: str,
        input_size: Sequence[int],
        args: Sequence = (),
        kwargs: dict | None = None,
        threads: int = 1,
) -> float:
    """Peak memory (MiB) one inference forward pass adds on the CPU, measured in a fresh process.

    `factory` is "module:callable" (e.g. "timm:create_model") called with `args`/`kwargs`; the result is the peak
    resident set size during the forward pass (Linux VmHWM, reset just before it) minus the resident size just
    before it (weights and input excluded), so measurements of different models do not disturb each other.
    """
    import json
    import subprocess
    import sys

    spec = dict(factory=factory, args=list(args), kwargs=kwargs or {}, input_size=list(input_size), threads=threads)
    code = "import sr_models\n" + _PEAK_SCRIPT
    out = subprocess.run([sys.executable, "-c", code, json.dumps(spec)], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"peak-memory measurement of {factory}{tuple(args)} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_kib"] / 1024


@torch.no_grad()
def interleaved_times(calls: dict, rounds: int, warmup: int = 1, clock=None,
                      group_size: Optional[int] = None) -> Dict[str, list]:
    """Seconds of each zero-argument callable in `calls`, one sample per round, timed in interleaved rounds.

    Each round runs every callable once, so machine noise (other processes, frequency changes) hits all of them
    alike and their ratios stay meaningful on a shared machine; sample i of every callable comes from round i, so
    ratios can be taken round by round. Round i runs them rotated by i (with `group_size`, `calls` is a sequence of
    groups of that many callables, each rotated alone): a callable that always ran first would carry that
    position's cost (measured: 2-5 % for resnet50 first after another path's models), which rotation spreads over
    all of them. `clock` defaults to wall time (`time.perf_counter`); `time.process_time` counts only this
    process's CPU time (robust on a crowded machine).
    """
    import time

    clock = clock or time.perf_counter
    if group_size is not None and group_size < 1:
        raise ValueError(f"interleaved_times: group_size={group_size} must be a positive number of callables")
    names = list(calls)
    size = group_size or max(len(names), 1)
    groups = [names[i:i + size] for i in range(0, len(names), size)]
    times = {name: [] for name in calls}
    for round_ in range(warmup + rounds):
        for group in groups:
            shift = round_ % len(group)
            for name in group[shift:] + group[:shift]:
                start = clock()
                calls[name]()
                if round_ >= warmup:
                    times[name].append(clock() - start)
    return times


def interleaved_latency_ms(calls: dict, rounds: int, warmup: int = 1, clock=None) -> dict:
    """Median milliseconds of each callable in `calls` over `interleaved_times` rounds."""
    import statistics

    return {name: statistics.median(t) * 1e3 for name, t in interleaved_times(calls, rounds, warmup, clock).items()}


@torch.no_grad()
def count_detector_macs(model: nn.Module, image_size: Sequence[int] = (800, 1216), num_boxes: int = 1000,
                        num_masks: int = 100) -> Dict[str, int]:
    """Multiply-adds of a torchvision two-stage detector on one `image_size` (H, W) image, part by part.

    As mmdetection's `get_flops` (its `forward_dummy`): backbone + FPN, the RPN head on every level, the box head
    on `num_boxes` proposals and the mask head on `num_masks` of them, in every stage of a cascade, and Panoptic
    FPN's semantic head. The image is
    taken as already resized and padded, and RoIAlign (not a multiply-add) is skipped: the heads get pooled
    features of the right shape, so the count does not depend on how many boxes a random RPN keeps, and it runs
    on the meta device.
    """
    param = next(model.parameters())
    zeros = partial(torch.zeros, device=param.device, dtype=param.dtype)
    detector = getattr(model, "detector", model)  # Panoptic FPN: a Mask R-CNN and a semantic branch
    stages = getattr(detector.roi_heads, "stages", [detector.roi_heads])
    channels = detector.backbone.out_channels
    was_training = model.training
    model.eval()
    counts: Dict[str, int] = {}
    try:
        def count(name: str, fn):
            with FlopCounterMode(display=False) as counter:
                out = fn()
            counts[name] = counts.get(name, 0) + counter.get_total_flops() // 2
            return out

        features = count("backbone+fpn", lambda: detector.backbone(zeros(1, 3, *image_size)))
        count("rpn", lambda: detector.rpn.head(list(features.values())))
        if hasattr(model, "semantic_head"):
            count("semantic_head", lambda: model.semantic_head(list(features.values())))
        for stage in stages:
            box_size, mask_size = stage.box_roi_pool.output_size, stage.mask_roi_pool.output_size
            count("box_head", lambda: stage.box_predictor(stage.box_head(zeros(num_boxes, channels, *box_size))))
            count("mask_head", lambda: stage.mask_predictor(stage.mask_head(zeros(num_masks, channels, *mask_size))))
    finally:
        model.train(was_training)
    counts["total"] = sum(counts.values())
    return counts
