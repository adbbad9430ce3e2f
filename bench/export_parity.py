"""ONNX parity table: every registered model and every SRNet context head, exported at one input size and run in
onnxruntime at another; max |onnxruntime - PyTorch| on the logits (random weights, random input, batch 2).

Heads sit on `srnet_resnet18_d8` with a 32-wide head (the math of each head does not depend on its width);
DFSeg's PPM is `dfseg_dfnet1` / `dfseg_dfnet2`. Rows are written as they are measured.
Usage: python bench/export_parity.py [--export-size 64x64] [--check-size 96x128] [--output FILE]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import timm
import torch
from tqdm import tqdm

import sr_models  # noqa: F401
from sr_models.export import _size, export_onnx, onnx_parity
from sr_models.layers import context_names
from sr_models.models import list_sr_models


def cases(groups=("models", "heads")):
    """(label, timm name, kwargs): every registered model, then every head of SRNet."""
    for name in list_sr_models() if "models" in groups else ():
        yield name, name, {}
    for context in context_names() if "heads" in groups else ():
        yield f"srnet_resnet18_d8, context={context!r}, channels=32", "srnet_resnet18_d8", dict(context=context,
                                                                                             channels=32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--export-size", type=_size, default=(64, 64))
    parser.add_argument("--check-size", type=_size, default=(96, 128))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cases", nargs="+", choices=("models", "heads"), default=["models", "heads"])
    parser.add_argument("--output", type=Path, help="also write the table to this markdown file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    (eh, ew), (ch, cw) = args.export_size, args.check_size
    lines = [f"torch {torch.__version__}, onnxruntime CPU; exported with dynamic batch/height/width at batch 2, "
             f"{eh}x{ew}; checked at batch 2, {ch}x{cw}", "",
             "| model / head | export size | check size | max abs diff | export time (s) |", "|---|---|---|---|---|"]
    if args.output:
        args.output.write_text("# bench/export_parity.py\n\n" + "\n".join(lines) + "\n")
    print("\n".join(lines), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for label, name, kwargs in tqdm(list(cases(args.cases)), desc="export", leave=False):
            torch.manual_seed(0)
            model = timm.create_model(name, **kwargs).eval()
            start = time.perf_counter()
            path = export_onnx(model, Path(tmp) / "model.onnx", example_size=args.export_size)
            seconds = time.perf_counter() - start
            diff = onnx_parity(model, path, (2, 3, ch, cw))
            row = f"| {label} | {eh}x{ew} | {ch}x{cw} | {diff:.1e} | {seconds:.0f} |"
            tqdm.write(row)
            if args.output:
                with args.output.open("a") as f:
                    f.write(row + "\n")


if __name__ == "__main__":
    main()
