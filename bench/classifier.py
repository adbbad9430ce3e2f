"""SR-ResNet50 vs ResNet-50 vs SE-ResNet50: CPU inference latency and peak memory, measured side by side.

Repetitions are interleaved (one forward of each model per round) so machine noise hits all models alike;
the table reports medians and ratios to ResNet-50. Usage: python bench/classifier.py [--rounds N] [--threads T]
"""
from __future__ import annotations

import argparse

import timm
import torch

import sr_models  # noqa: F401  (registers sr_resnet50)
from sr_models.profile import count_macs, count_params, interleaved_latency_ms, peak_memory_mib

MODELS = ("resnet50", "seresnet50", "sr_resnet50")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    models = {name: timm.create_model(name).eval() for name in MODELS}
    print(f"torch {torch.__version__}, timm {timm.__version__}, {args.threads} threads, 224x224, "
          f"{args.rounds} interleaved rounds after 2 warm-up rounds; latency = median")
    print()
    print("| model | params | GMACs | batch | latency (ms) | x ResNet-50 | peak mem (MiB) | x ResNet-50 |")
    print("|---|---|---|---|---|---|---|---|")
    for batch in args.batch_sizes:
        x = torch.randn(batch, 3, 224, 224)
        latency = interleaved_latency_ms({name: (lambda m=model: m(x)) for name, model in models.items()},
                                         args.rounds, warmup=2)
        memory = {name: peak_memory_mib("timm:create_model", (batch, 3, 224, 224), args=(name,),
                                        threads=args.threads) for name in models}
        for name, model in models.items():
            print(f"| {name} | {count_params(model) / 1e6:.2f}M | {count_macs(model, (1, 3, 224, 224)) / 1e9:.3f} "
                  f"| {batch} | {latency[name]:.1f} | {latency[name] / latency['resnet50']:.3f} "
                  f"| {memory[name]:.0f} | {memory[name] / memory['resnet50']:.2f} |")


if __name__ == "__main__":
    main()
