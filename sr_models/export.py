"""ONNX export: `python -m sr_models.export <model name | saved folder | hub id> --output model.onnx`.

The graph takes `pixel_values` (N, 3, H, W) and returns `logits` ((N, classes) or (N, classes, H, W)), with batch,
height and width dynamic; it goes through `torch.export` (`torch.onnx.export(dynamo=True)`). Needs the `[export]`
extra (onnx, onnxscript; onnxruntime for `--check`). See docs/export.md.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from typing import Sequence, Tuple, Union

import timm
import torch
from torch import nn

from .cli_errors import add_debug_flag, reported_errors
from .models._hub import resolve_model_source

__all__ = ["export_onnx", "onnx_parity", "load_model", "main"]

EXTRA_MODULES = ("onnx", "onnxscript")


def require_extra(modules: Sequence[str] = EXTRA_MODULES) -> None:
    """Raise ImportError naming the extra unless every module of `modules` is importable."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise ImportError(f"ONNX export needs {', '.join(missing)}: pip install 'sr-models[export]' "
                          f"(python environment {sys.prefix})")


def _in_chans(model: nn.Module) -> int:
    return getattr(model, "in_chans", None) or getattr(model, "pretrained_cfg", {}).get("input_size", (3,))[0]


@torch.no_grad()
def export_onnx(
        model: nn.Module,
        output: Union[str, Path],
        example_size: Tuple[int, int] = (224, 224),
        in_chans: int | None = None,
        opset_version: int | None = None,
) -> Path:
    """Write `model` (eval mode) as ONNX with input `pixel_values`, output `logits`, dynamic batch/height/width.

    The example input (batch 2, `example_size`) only traces the graph; batch 1 would specialise the batch axis.
    """
    require_extra()
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    example = torch.randn(2, in_chans or _in_chans(model), *example_size)
    dims = {0: torch.export.Dim.AUTO, 2: torch.export.Dim.AUTO, 3: torch.export.Dim.AUTO}
    program = torch.onnx.export(model, (example,), input_names=["pixel_values"], output_names=["logits"],
                                dynamic_shapes=(dims,), opset_version=opset_version, dynamo=True,
                                external_data=False, verbose=False)
    program.save(str(output))
    return output


@torch.no_grad()
def onnx_parity(model: nn.Module, onnx_path: Union[str, Path], input_size: Sequence[int], seed: int = 0) -> float:
    """Max |onnxruntime logits - PyTorch logits| on a random input of `input_size` (N, C, H, W)."""
    require_extra(("onnxruntime",))
    import onnxruntime as ort

    x = torch.randn(*input_size, generator=torch.Generator().manual_seed(seed))
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (logits,) = session.run(["logits"], {"pixel_values": x.numpy()})
    return (torch.from_numpy(logits) - model.eval()(x)).abs().max().item()


def load_model(source: str, num_classes: int | None = None) -> nn.Module:
    """A timm model from a registry name (random weights), a saved folder, or a Hub id (`org/name`, `hf-hub:...`).

    Raises ValueError / FileNotFoundError naming `source` when it is none of these.
    """
    kwargs = {} if num_classes is None else dict(num_classes=num_classes)
    name, registered = resolve_model_source(source)  # main() names the argument
    if registered:
        return timm.create_model(name, **kwargs)
    try:
        return timm.create_model(name, pretrained=True, **kwargs)
    except Exception as e:  # the Hub client's errors are many kinds: report the first line of any
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise FileNotFoundError(f"{source} is neither a folder here nor a loadable Hub repo ({reason})") from e


def _size(text: str) -> Tuple[int, int]:
    height, _, width = text.lower().partition("x")
    try:
        return int(height), int(width or height)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HxW (e.g. 512x1024), got {text!r}") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sr-models-export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="registered model name, saved folder (config.json + model.safetensors) "
                                      "or Hub id")
    parser.add_argument("--output", type=Path, default=Path("model.onnx"), help="ONNX file to write")
    parser.add_argument("--size", type=_size, default=(224, 224),
                        help="HxW of the tracing input (default 224x224); the graph then runs at any size")
    parser.add_argument("--num-classes", type=int, default=None, help="re-initialise the classifier(s)")
    parser.add_argument("--check", type=_size, default=None, metavar="HxW",
                        help="run onnxruntime at this size and print the max abs difference to PyTorch")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    with reported_errors(args.debug):
        require_extra(EXTRA_MODULES + (("onnxruntime",) if args.check else ()))
        try:
            model = load_model(args.model, args.num_classes).eval()
        except (ValueError, FileNotFoundError) as e:
            raise type(e)(f"{e} (model argument {args.model!r})") from e
        path = export_onnx(model, args.output, args.size)
        print(f"wrote {path} (pixel_values -> logits, dynamic batch/height/width, traced at "
              f"{args.size[0]}x{args.size[1]})")
        if args.check:
            diff = onnx_parity(model, path, (1, _in_chans(model), *args.check))
            print(f"onnxruntime vs PyTorch at {args.check[0]}x{args.check[1]}: max abs diff {diff:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
