"""Every registered sr-models model built and run once, with params and multiply-adds beside the paper's numbers.

Usage: python -m sr_models.summary [--filter PATTERN]   (also installed as `sr-models-summary`)
"""
from __future__ import annotations

import argparse
import time

import timm
import torch

from .cli_errors import add_debug_flag, reported_errors
from .layers import SqueezeReasoning
from .models import list_sr_models
from .profile import count_macs, count_params

# (what, our builder, input size, paper params, paper multiply-adds): Tables IV and X
PAPER_ROWS = [
    ("Table IV  dilated FCN R-50, 768x768", lambda: timm.create_model("fcn_resnet50_d8").backbone, (1, 3, 768, 768),
     23.63e6, 241.05e9),
    ("Table IV  +2x3x3, 96x96x2048", lambda: timm.create_model("fcn_resnet50_d8").head.context, (1, 2048, 96, 96),
     11.80e6, 108.74e9),
    ("Table IV  +SR (GAP), 96x96x512", lambda: SqueezeReasoning(512, squeeze="gap"), (1, 512, 96, 96), 0.26e6, 2.43e9),
    ("Table IV  +SR (GHP), 96x96x512", lambda: SqueezeReasoning(512, squeeze="ghp"), (1, 512, 96, 96), 0.40e6, 3.64e9),
    ("Table V   DFv1 (dfseg_dfnet1), 1024x2048", lambda: timm.create_model("dfseg_dfnet1"), (1, 3, 1024, 2048),
     9.37e6, None),
    ("Table V   DFv2 + PPM (dfseg_dfnet2)", lambda: timm.create_model("dfseg_dfnet2"), (1, 3, 1024, 2048), 18.83e6,
     None),
    ("Table V   SRNet(DFv2) (srnet_dfnet2)", lambda: timm.create_model("srnet_dfnet2"), (1, 3, 1024, 2048), 18.87e6,
     None),
    ("Table X   ResNet-50 (timm)", lambda: timm.create_model("resnet50"), (1, 3, 224, 224), 25.56e6, 4.122e9),
    ("Table X   SRNet-r50 = sr_resnet50", lambda: timm.create_model("sr_resnet50"), (1, 3, 224, 224), 25.64e6, 4.127e9),
    ("Table X   ResNet-101 (timm)", lambda: timm.create_model("resnet101"), (1, 3, 224, 224), 44.55e6, 7.849e9),
    ("Table X   SRNet-r101 = sr_resnet101", lambda: timm.create_model("sr_resnet101"), (1, 3, 224, 224), 44.70e6,
     7.858e9),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--filter", default="*", help="fnmatch pattern of model names (default: all)")
    parser.add_argument("--size", type=int, default=128, help="image side for the forward pass of each model")
    add_debug_flag(parser)
    args = parser.parse_args()
    with reported_errors(args.debug):
        _summary(args)


def _summary(args: argparse.Namespace) -> None:
    """The paper's rows beside ours, then one forward pass of every registered model."""
    torch.set_num_threads(max(torch.get_num_threads(), 1))

    print("Paper numbers (params, multiply-adds) beside ours:\n")
    print(f"{'row':40s} {'params':>9s} {'paper':>9s} {'GMACs':>8s} {'paper':>8s}")
    for what, build, size, paper_params, paper_macs in PAPER_ROWS:
        module = build().to("meta")  # shapes only: counting needs no memory or time
        print(f"{what:40s} {count_params(module) / 1e6:8.2f}M {paper_params / 1e6:8.2f}M "
              f"{count_macs(module, size) / 1e9:8.3f} " + (f"{paper_macs / 1e9:8.3f}" if paper_macs else f"{'-':>8s}"))

    names = list_sr_models(args.filter)
    print(f"\n{len(names)} registered models, one forward pass each at {args.size}x{args.size}:\n")
    print(f"{'model':28s} {'params':>9s} {'GMACs':>8s} {'output':>22s} {'time':>7s}")
    for name in names:
        model = timm.create_model(name).eval()
        x = torch.randn(1, 3, args.size, args.size)
        start = time.perf_counter()
        with torch.no_grad():
            out = model(x)
        elapsed = time.perf_counter() - start
        print(f"{name:28s} {count_params(model) / 1e6:8.2f}M {count_macs(model, tuple(x.shape)) / 1e9:8.3f} "
              f"{str(tuple(out.shape)):>22s} {elapsed:6.2f}s")


if __name__ == "__main__":
    main()
