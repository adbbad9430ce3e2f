"""Table IV and Fig. 5a on this CPU: every context module's params, multiply-adds and peak memory at 96x96, and the
latency / peak memory of SR vs the non-local family on the 1/8 feature maps of growing images.

Latency rounds are interleaved (one forward of each module per round, medians reported) so machine noise hits all
modules alike. Usage: python bench/context_heads.py [--quick] [--rounds N] [--threads T] [--max-nl-side S]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

import sr_models  # noqa: F401
from sr_models.layers.context import create_context_block, create_context_module
from sr_models.profile import count_macs, count_params, interleaved_latency_ms, peak_memory_mib

# Table IV: name -> (kwargs, paper params, paper multiply-adds, paper memory MB); PSP/ASPP are whole blocks
TABLE4 = {
    "+2x3x3": (dict(name="none"), 11.80e6, 108.74e9, 108.00),
    "ASPP": (dict(name="aspp"), 15.54e6, 148.37e9, 191.20),
    "PSP": (dict(name="psp"), 23.07e6, 174.09e9, 221.05),
    "SE": (dict(name="se"), 0.03e6, 9.47e6, 18.88),
    "NL": (dict(name="nl"), 0.53e6, 48.36e9, 865.52),
    "A2Net": (dict(name="a2"), 0.53e6, 4.94e9, 183.32),
    "CGNL": (dict(name="cgnl"), 0.53e6, 4.91e9, 201.94),
    "RCCA": (dict(name="rcca"), 0.53e6, 11.55e9, 394.28),
    "Encoding": (dict(name="enc"), 0.59e6, 12.31e9, 257.12),
    "ANN": (dict(name="ann"), 0.68e6, 10.41e9, 421.12),
    "EMAU": (dict(name="ema"), 0.54e6, 6.97e9, 132.64),
    "SR (GAP)": (dict(name="sr", squeeze="gap"), 0.26e6, 2.43e9, 82.31),
    "SR (GHP)": (dict(name="sr", squeeze="ghp"), 0.40e6, 3.64e9, 110.75),
}
# Fig. 5a: modules on the 1/8 feature map (512 channels; PSP and ASPP blocks on 2048) of these images
SPEED = ["SR (GHP)", "SR (GAP)", "NL", "RCCA", "EMAU", "PSP", "ASPP"]
IMAGES = [(512, 512), (768, 768), (1024, 1024), (1024, 2048)]


def _is_block(kwargs: dict) -> bool:
    return kwargs["name"] in ("none", "psp", "aspp")


def build(kwargs: dict) -> torch.nn.Module:
    """The module of a Table IV row (blocks take the 2048-channel stage-4 feature, modules 512 channels)."""
    kwargs = dict(kwargs)
    name = kwargs.pop("name")
    return (create_context_block(name, 2048, 512, **kwargs) if _is_block({"name": name})
            else create_context_module(name, 512, **kwargs)).eval()


def _factory(kwargs: dict):
    """(factory, args, kwargs) for `peak_memory_mib`, which builds the module in a fresh process."""
    kwargs = dict(kwargs)
    name = kwargs.pop("name")
    if _is_block({"name": name}):
        return "sr_models.layers.context:create_context_block", (name, 2048, 512), kwargs
    return "sr_models.layers.context:create_context_module", (name, 512), kwargs


def table4(threads: int, memory: bool) -> list[str]:
    lines = ["| method | params | paper | GMACs | paper | peak mem (MiB) | paper (MB) |", "|---|---|---|---|---|---|---|"]
    for row, (kwargs, params, macs, mem) in TABLE4.items():
        module = build(kwargs)
        channels = 2048 if _is_block(kwargs) else 512
        ours_macs = count_macs(module.to("meta"), (1, channels, 96, 96))
        ours_mem = (f"{peak_memory_mib(*_factory(kwargs)[:1], (1, channels, 96, 96), *_factory(kwargs)[1:], threads=threads):.1f}"
                    if memory else "-")
        lines.append(f"| {row} | {count_params(module) / 1e6:.2f}M | {params / 1e6:.2f}M | {ours_macs / 1e9:.2f} | "
                     f"{macs / 1e9:.2f} | {ours_mem} | {mem:.2f} |")
    return lines


def speed(rounds: int, threads: int, images, max_nl_side: int, memory: bool) -> list[str]:
    lines = ["| image | feature | method | latency (ms) | x NL | peak mem (MiB) | x NL |", "|---|---|---|---|---|---|---|"]
    for height, width in images:
        h, w = height // 8, width // 8
        rows = [r for r in SPEED if r != "NL" or max(h, w) <= max_nl_side]
        modules = {r: build(TABLE4[r][0]) for r in rows}
        inputs = {r: torch.randn(1, 2048 if _is_block(TABLE4[r][0]) else 512, h, w) for r in rows}
        latency = interleaved_latency_ms({r: (lambda r=r: modules[r](inputs[r])) for r in rows}, rounds)
        peak = {r: peak_memory_mib(_factory(TABLE4[r][0])[0], tuple(inputs[r].shape), *_factory(TABLE4[r][0])[1:],
                                   threads=threads) if memory else float("nan") for r in rows}
        for r in rows:
            nl_time = f"{latency[r] / latency['NL']:.3f}" if "NL" in latency else "-"
            nl_mem = f"{peak[r] / peak['NL']:.3f}" if "NL" in peak and memory else "-"
            lines.append(f"| {height}x{width} | {h}x{w} | {r} | {latency[r]:.1f} | {nl_time} | {peak[r]:.1f} | {nl_mem} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="768x768 only, 3 rounds, no memory of Table IV")
    parser.add_argument("--max-nl-side", type=int, default=128,
                        help="skip NL on feature maps with a side above this (NL at 128x256 needs 4 GiB)")
    parser.add_argument("--output", type=Path, help="also write the tables to this markdown file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    images = [(768, 768)] if args.quick else IMAGES
    rounds = 3 if args.quick else args.rounds
    header = (f"torch {torch.__version__}, {args.threads} threads, CPU inference, batch 1; latency = median of "
              f"{rounds} interleaved rounds; peak memory = RSS increase of a fresh process over one forward")
    lines = [header, "", "Table IV (96x96 feature map):", ""] + table4(args.threads, not args.quick)
    lines += ["", "Fig. 5a (1/8 feature maps):", ""] + speed(rounds, args.threads, images, args.max_nl_side, True)
    text = "\n".join(lines)
    print(text)
    if args.output:
        args.output.write_text(f"# bench/context_heads.py\n\n{text}\n")


if __name__ == "__main__":
    main()
