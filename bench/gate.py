"""The SR gate alone, on the feature maps it sees in sr_resnet50 at 224x224: what one call costs, and its floor.

For each of the four stage shapes: `SqueezeReasoningGate` as it runs (Eq. 5 as one baddbmm + one linear, in place),
the same gate written as the modules compose it (`x * sigmoid(GraphReasoning(mean(x)))`, twelve small ops), the two
passes over the map an SE-style gate adds (the pooled sum, the in-place rescale) timed alone, and the end of an
SR-ResNet block both ways: the gate then the residual addition (timm's block with the gate as its attention layer)
and the rescale inside the residual sum (`rescale_add`, as `SRBottleneck` runs it). Per forward = per call x blocks
per stage (3, 4, 6, 3). `torch.utils.benchmark`, fastest block, one thread; `--bf16`: bf16 maps under autocast.
Usage: python bench/gate.py [--batch-sizes 1 8] [--bf16] [--output FILE]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch.utils.benchmark import Timer

from sr_models.inference import bf16_is_native
from sr_models.layers import SqueezeReasoningGate
from sr_models.layers.squeeze_reasoning import rescale_add

# sr_resnet50 at 224x224: (channels, H = W, gates in the stage)
STAGES = ((256, 56, 3), (512, 28, 4), (1024, 14, 6), (2048, 7, 3))


def _modules_gate(gate: SqueezeReasoningGate, x: torch.Tensor) -> torch.Tensor:
    """Eq. 5 through the modules: GraphReasoning's own forward on the global average, then the rescale."""
    return x * gate.reasoning(x.mean((2, 3))).sigmoid()[:, :, None, None]


def time_us(stmt: str, **names) -> float:
    """Microseconds per call in the fastest of `blocked_autorange`'s blocks (as timeit: noise only adds time)."""
    measurement = Timer(stmt, globals=names).blocked_autorange(min_run_time=0.5)
    return min(measurement.raw_times) / measurement.number_per_run * 1e6


@torch.no_grad()
def measure(batch: int, channels_last: bool, bf16: bool) -> list:
    rows = []
    dtype = torch.bfloat16 if bf16 else torch.float32
    for channels, size, count in STAGES:
        gate = SqueezeReasoningGate(channels, inplace=True).eval()
        x, shortcut = (torch.randn(batch, channels, size, size, dtype=dtype) for _ in range(2))
        if channels_last:
            x, shortcut = (t.contiguous(memory_format=torch.channels_last) for t in (x, shortcut))
        scale = (torch.rand(batch, channels, 1, 1) + 0.5).to(dtype)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            tolerance = dict(rtol=0.02, atol=0.02) if bf16 else {}
            torch.testing.assert_close(gate(x.clone()), _modules_gate(gate, x), **tolerance)  # one gate, two ways
            torch.testing.assert_close(rescale_add(x.clone(), gate.weights(x), shortcut, True),
                                       gate(x.clone()) + shortcut, **tolerance)
            rows.append((channels, size, count, {
                "gate": time_us("gate(x)", gate=gate, x=x),
                "modules": time_us("f(gate, x)", f=_modules_gate, gate=gate, x=x),
                "sum": time_us("x.sum((2, 3))", x=x),
                "rescale": time_us("x.mul_(s)", x=x, s=scale),
                "gate_add": time_us("gate(x).add_(r)", gate=gate, x=x, r=shortcut),
                "fused": time_us("f(x, gate.weights(x), r, True)", f=rescale_add, gate=gate, x=x, r=shortcut),
            }))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--bf16", action="store_true", help="bf16 maps under bf16 autocast (as in inference)")
    parser.add_argument("--output", type=Path, help="also write the table to this markdown file")
    args = parser.parse_args()
    if args.output and not args.output.parent.is_dir():
        parser.error(f"--output {args.output}: no folder {args.output.parent} to write it in")
    if args.bf16 and not bf16_is_native():
        print("bench/gate.py --bf16: this CPU emulates bf16, so its bf16 timings would say nothing; nothing measured")
        return
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)  # the timed in-place rescales shrink the map call after call: no denormal stalls
    dtype = "bf16 maps, bf16 autocast" if args.bf16 else "float32"
    lines = [f"torch {torch.__version__}, 1 thread, {dtype}, eval, no autograd; microseconds per call (fastest block "
             f"of torch.utils.benchmark); per forward = the stage's gates summed over sr_resnet50", "",
             "| layout | batch | map (C x H x W) | gates | SR gate | as the modules compose it | sum alone "
             "| rescale alone | gate, then + shortcut | shortcut + x * gate in one pass |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    for layout in ("NCHW", "channels_last"):
        for batch in args.batch_sizes:
            rows = measure(batch, layout == "channels_last", args.bf16)
            total = {k: sum(count * t[k] for _, _, count, t in rows) / 1e3 for k in rows[0][3]}
            cells = [(f"{c} x {size} x {size}", count, {k: f"{v:.0f}" for k, v in t.items()})
                     for c, size, count, t in rows]
            cells.append(("per forward (ms)", 16, {k: f"{v:.2f}" for k, v in total.items()}))
            for where, count, t in cells:
                line = (f"| {layout} | {batch} | {where} | {count} | {t['gate']} | {t['modules']} | {t['sum']} "
                        f"| {t['rescale']} | {t['gate_add']} | {t['fused']} |")
                lines.append(line)
                print(line, flush=True)
    if args.output:
        args.output.write_text("# bench/gate.py\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
