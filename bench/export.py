"""Latency of every execution path, side by side: fp32 eager, channels_last, bf16 autocast (alone and with
channels_last), torch.compile and onnxruntime, as ratios to fp32 eager, and the SR gate's cost over ResNet-50 per
path (timm's SE gate beside it, for scale, and sr_resnet50 on timm's own Bottleneck, whose rescale is a pass of its
own where SRBottleneck folds it into the residual sum).

Within a workload (models at one input size) every (model, path) pair runs once per round and rounds are
interleaved, so noise from other processes on a shared machine hits all of them alike; latencies are medians.
A round runs path by path, every model in turn, so the two forwards a ratio pairs run moments apart, in an order
rotated by one model each round (in a fixed order the first model of each path ran measurably slower).
Usage: python bench/export.py [--quick] [--rounds N] [--threads T] [--paths ...] [--output FILE]
"""
from __future__ import annotations

import argparse
import copy
import gc
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict

import timm
import torch
from timm.models.resnet import Bottleneck

import sr_models  # noqa: F401  (registers the models)
from sr_models.export import export_onnx
from sr_models.inference import bf16_is_native
from sr_models.profile import interleaved_times

AGAIN = "resnet50 again"  # a second, identical resnet50: its "gate cost" is this machine's noise
TIMM_BLOCKS = "sr_resnet50 timm blocks"  # the SR gate as timm's Bottleneck attention layer: rescale, then add
VARIANTS = {AGAIN: ("resnet50", {}), TIMM_BLOCKS: ("sr_resnet50", dict(block=Bottleneck))}  # label -> (name, args)
# (label, models, input size, batch sizes)
WORKLOADS = (
    ("classifiers 224x224", ("resnet50", "sr_resnet50", TIMM_BLOCKS, "seresnet50", AGAIN), (224, 224), (1, 8)),
    ("segmenters 512x1024", ("fcn_resnet50_d8", "srnet_resnet50_d8"), (512, 1024), (1,)),
    ("real-time 1024x2048", ("srnet_dfnet2",), (1024, 2048), (1,)),
)
QUICK = (
    ("classifiers 224x224", ("resnet50", "sr_resnet50", TIMM_BLOCKS, "seresnet50", AGAIN), (224, 224), (1,)),
    ("segmenters 128x256", ("fcn_resnet50_d8", "srnet_resnet50_d8"), (128, 256), (1,)),
    ("real-time 256x512", ("srnet_dfnet2",), (256, 512), (1,)),
)


def _eager(model: torch.nn.Module, x: torch.Tensor) -> Callable[[], torch.Tensor]:
    return lambda: model(x)


def _channels_last(model: torch.nn.Module, x: torch.Tensor) -> Callable[[], torch.Tensor]:
    model = model.to(memory_format=torch.channels_last)
    x = x.contiguous(memory_format=torch.channels_last)
    return lambda: model(x)


def _bf16(model: torch.nn.Module, x: torch.Tensor) -> Callable[[], torch.Tensor]:
    def run():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return model(x)
    return run


def _bf16_channels_last(model: torch.nn.Module, x: torch.Tensor) -> Callable[[], torch.Tensor]:
    return _bf16(model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last))


def _compile(model: torch.nn.Module, x: torch.Tensor) -> Callable[[], torch.Tensor]:
    compiled = torch.compile(model)
    return lambda: compiled(x)


_ONNX_DIR = tempfile.TemporaryDirectory()  # the run's exports, removed when it ends


def _onnxruntime(name: str, model: torch.nn.Module, x: torch.Tensor, threads: int) -> Callable[[], object]:
    import onnxruntime as ort

    path = Path(_ONNX_DIR.name) / f"{name}_{x.shape[-2]}x{x.shape[-1]}.onnx"
    if not path.exists():  # one export per model and size serves every batch size (the batch axis is dynamic)
        export_onnx(model, path, example_size=tuple(x.shape[-2:]))
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # idle threads must not spin
    options.enable_cpu_mem_arena = False  # no arena kept beside the PyTorch copies
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = {"pixel_values": x.numpy()}
    return lambda: session.run(None, feed)


PATHS = ("fp32 eager", "channels_last", "bf16 autocast", "bf16 + channels_last", "torch.compile", "onnxruntime")


def _make(path: str, name: str, model: torch.nn.Module, model_cl: torch.nn.Module, x: torch.Tensor,
          threads: int) -> Callable[[], object]:
    if path == "onnxruntime":
        return _onnxruntime(name, model, x, threads)
    if path in ("channels_last", "bf16 + channels_last"):
        model = model_cl  # one channels_last copy of the weights serves both paths
    make = {"fp32 eager": _eager, "channels_last": _channels_last, "bf16 autocast": _bf16,
            "bf16 + channels_last": _bf16_channels_last, "torch.compile": _compile}[path]
    return make(model, x)


def run_workload(names, size, batch: int, paths, rounds: int, threads: int, clock) -> Dict[tuple, list]:
    """Seconds per forward of every (model, path), one sample per interleaved round."""
    x = torch.randn(batch, 3, *size)
    made = {}
    for name in names:
        torch.manual_seed(0)  # the same weights in every workload, as in the model's one ONNX export
        registered, kwargs = VARIANTS.get(name, (name, {}))
        model = timm.create_model(registered, **kwargs).eval()
        model_cl = copy.deepcopy(model).to(memory_format=torch.channels_last)
        made.update({(name, path): _make(path, name, model, model_cl, x, threads) for path in paths})
    # path by path, the models one after another: the two calls of a gate-cost ratio run moments apart
    calls = {(name, path): made[(name, path)] for path in paths for name in names}
    with torch.no_grad():
        for call in calls.values():  # compile / first-run costs stay out of the timed rounds
            call()
    times = interleaved_times(calls, rounds, warmup=1, clock=clock, group_size=len(names))  # no model always first
    del calls
    gc.collect()
    return times


def _gate_cost(results: dict, paths) -> list:
    """Table lines: sr_resnet50 / resnet50 (and timm's seresnet50 / resnet50, for scale) latency per path and batch,
    the median of the ratios of the two models' times in the same round (a slow round slows both: pairing cancels
    it, as a ratio of medians may not)."""
    order = ("sr_resnet50", TIMM_BLOCKS, "seresnet50", AGAIN)
    rows = [(name, b) for name, b in results if name in order and ("resnet50", b) in results]
    if not rows:
        return []
    lines = ["", "Gate cost: sr_resnet50 (SR gate) and seresnet50 (timm's SE gate) / resnet50 on the same path, "
                 "median over rounds of the ratio of the two models' times in that round (1.000 = free); "
                 f"'{TIMM_BLOCKS}' is sr_resnet50 on timm's Bottleneck (the gate rescales, then the block adds); "
                 f"'{AGAIN}' is resnet50 timed against itself: how far from 1.000 noise alone puts a ratio", "",
             "| model | batch | " + " | ".join(paths) + " |", "|---|---|" + "---|" * len(paths)]
    for name, b in sorted(rows, key=lambda row: (order.index(row[0]), row[1])):
        gated, plain = results[(name, b)], results[("resnet50", b)]
        ratios = [statistics.median(s / r for s, r in zip(gated[(name, p)], plain[("resnet50", p)])) for p in paths]
        lines.append(f"| {name} | {b} | " + " | ".join(f"{ratio:.3f}" for ratio in ratios) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7, help="rounds of the classifier workloads")
    parser.add_argument("--seg-rounds", type=int, default=3, help="rounds of the segmenter workloads")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall time, or this process's CPU time (for a crowded machine; use with --threads 1)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="small inputs, batch 1 (a smoke run)")
    parser.add_argument("--paths", nargs="+", choices=PATHS,
                        help="default: all, without the bf16 paths on a CPU that only emulates bf16")
    parser.add_argument("--models", nargs="+", help="only the workloads' models named here")
    parser.add_argument("--output", type=Path, help="also write the tables to this markdown file")
    args = parser.parse_args()
    if args.output and not args.output.parent.is_dir():
        parser.error(f"--output {args.output}: no folder {args.output.parent} to write it in")
    known = {name for _, names, _, _ in WORKLOADS for name in names}
    if args.models and not set(args.models) <= known:
        parser.error(f"--models: {', '.join(sorted(set(args.models) - known))} not in the workloads "
                     f"({', '.join(sorted(known))})")
    if args.paths is None:
        args.paths = [p for p in PATHS if bf16_is_native() or not p.startswith("bf16")]
    torch.set_num_threads(args.threads)
    flags = open("/proc/cpuinfo").read() if Path("/proc/cpuinfo").exists() else ""
    isa = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f" {f}" in flags]
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    lines = [f"torch {torch.__version__}, {args.threads} threads, {platform.processor() or platform.machine()} "
             f"({', '.join(isa) or 'ISA unknown'}; bf16 native: {bf16_is_native()}); {args.rounds} (classifiers) / "
             f"{args.seg_rounds} (segmenters) interleaved rounds per workload (model order rotated each round) after "
             f"a warm-up; {'CPU time of this process' if args.clock == 'cpu' else 'wall time'} per forward = median; "
             f"ratio = fp32 eager / path (higher is faster)"
             + ("" if bf16_is_native() or any(p.startswith("bf16") for p in args.paths)
                else "; bf16 paths left out: this CPU emulates bf16"), ""]
    header = "| model | input | batch | " + " | ".join(args.paths) + " |"
    lines += [header, "|---|---|---|" + "---|" * len(args.paths)]
    print("\n".join(lines), flush=True)

    results = {}

    def save():
        text = "\n".join(lines + _gate_cost(results, args.paths))
        if args.output:
            args.output.write_text("# bench/export.py\n\n" + text + "\n")
        return text

    save()
    for label, names, size, batches in (QUICK if args.quick else WORKLOADS):
        names = [n for n in names if not args.models or n in args.models]
        for batch in batches:
            if not names:
                continue
            rounds = args.rounds if label.startswith("classifiers") else args.seg_rounds
            times = run_workload(names, size, batch, args.paths, rounds, args.threads, clock)
            latency = {key: statistics.median(t) * 1e3 for key, t in times.items()}
            for name in names:
                base = latency[(name, "fp32 eager")] if "fp32 eager" in args.paths else None
                cells = [f"{latency[(name, p)]:.1f} ms" + (f" ({base / latency[(name, p)]:.2f}x)" if base else "")
                         for p in args.paths]
                row = f"| {name} | {size[0]}x{size[1]} | {batch} | " + " | ".join(cells) + " |"
                lines.append(row)
                print(row, flush=True)
                results[(name, batch)] = times
            save()
    print("\n".join(_gate_cost(results, args.paths)))
    save()


if __name__ == "__main__":
    main()
