"""Table V on this CPU: SRNet(DFv2) vs the DFSeg-v2 baseline (DFv2 + PPM), latency and peak memory at 1024x2048.

Rounds are interleaved (one forward of each model per round; medians reported).
Usage: python bench/realtime.py [--quick] [--rounds N] [--threads T] [--output FILE]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import timm
import torch

import sr_models  # noqa: F401
from sr_models.profile import count_macs, count_params, interleaved_latency_ms, peak_memory_mib

MODELS = {"DFv2 + PPM (dfseg_dfnet2)": "dfseg_dfnet2", "SRNet(DFv2) (srnet_dfnet2)": "srnet_dfnet2"}
PAPER = {"dfseg_dfnet2": (18.83e6, 55), "srnet_dfnet2": (18.87e6, 65)}  # params, FPS on a 1080 Ti


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="512x1024 and 3 rounds")
    parser.add_argument("--output", type=Path, help="also write the table to this markdown file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    height, width = (512, 1024) if args.quick else (1024, 2048)
    rounds = 3 if args.quick else args.rounds
    models = {label: timm.create_model(name, num_classes=19).eval() for label, name in MODELS.items()}
    x = torch.randn(1, 3, height, width)
    latency = interleaved_latency_ms({label: (lambda m=model: m(x)) for label, model in models.items()}, rounds)
    base = next(iter(latency.values()))
    lines = [f"torch {torch.__version__}, {args.threads} threads, CPU inference, batch 1, {height}x{width}, "
             f"{rounds} interleaved rounds (median)", "",
             "| model | params | paper | GMACs | latency (ms) | x DFSeg | peak mem (MiB) | paper FPS (1080 Ti) |",
             "|---|---|---|---|---|---|---|---|"]
    for label, name in MODELS.items():
        model = models[label]
        macs = count_macs(model, (1, 3, height, width))
        memory = peak_memory_mib("timm:create_model", (1, 3, height, width), (name,), dict(num_classes=19),
                                 threads=args.threads)
        params, fps = PAPER[name]
        lines.append(f"| {label} | {count_params(model) / 1e6:.2f}M | {params / 1e6:.2f}M | {macs / 1e9:.1f} | "
                     f"{latency[label]:.0f} | {latency[label] / base:.3f} | {memory:.0f} | {fps} |")
    text = "\n".join(lines)
    print(text)
    if args.output:
        args.output.write_text(f"# bench/realtime.py\n\n{text}\n")


if __name__ == "__main__":
    main()
