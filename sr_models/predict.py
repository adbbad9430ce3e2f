"""Run a segmenter over images: `sr-models-predict --model M --input I --output O` (or `python -m sr_models.predict`).

M is a model name or tag of the registry (`srnet_resnet50_d8.cityscapes`), a saved or run folder (the one holding
`config.json` and `model.safetensors`), or a Hub id (`org/name`, `hf-hub:org/name`). I is an image file, a folder
(searched recursively) or a glob pattern. Inference is `sr_models.inference.segment`: `--mode whole`, `slide`
(tiles of the model's training crop, or `--crop-size`) or `multiscale` (`--scales`, with flips unless `--no-flip`).

Writes, for each image, under O and keeping the image's path relative to the input folder:
    labels/<name>.png   train ids (`--format trainid`, default) or Cityscapes labelIds named for the official
                        evaluator and the server (`--format cityscapes`: labels/<city>/<city>_..._labelIds.png)
    colour/<name>.png   the prediction in the data set's colours (unless --no-colour)
    overlay/<name>.png  the colours blended over the image (unless --no-overlay; `--alpha` is their weight)
A bad argument or an unreadable image stops the command with one line `error: <what> (<where>)` and exit status 1.
"""
from __future__ import annotations

import argparse
import glob
import os
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np
import timm
import torch
from PIL import Image
from tqdm.auto import tqdm

from .cli_errors import add_debug_flag, reported_errors
from .constants import EVAL_SCALES
from .data.cityscapes_submission import submission_name, write_label_ids
from .data.embedded import EMBEDDED
from .data.images import read_image
from .data.metadata import CITYSCAPES, DATASETS, DatasetInfo
from .data.transforms import image_to_tensor
from .inference import segment
from .models._hub import resolve_model_source
from .training.overlays import colorize

__all__ = ["load_model", "find_images", "label_info", "main"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm")


def load_model(spec: str) -> torch.nn.Module:
    """A timm model with its weights from a registry name/tag, a saved (or run) folder, or a Hub id; eval mode."""
    name, _ = resolve_model_source(spec, "--model")
    try:
        return timm.create_model(name, pretrained=True).eval()
    except (OSError, ValueError, RuntimeError) as e:  # download, missing weights, checkpoint of another model
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ValueError(f"cannot load {spec}: {reason} (--model)") from e


def find_images(spec: str) -> List[Tuple[Path, Path]]:
    """(image path, path relative to the input) for an image file, a folder (recursive) or a glob pattern."""
    path = Path(spec)
    if path.is_file():
        return [(path, Path(path.name))]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        root = path
    else:
        files = sorted(Path(p) for p in glob.glob(spec, recursive=True) if Path(p).suffix.lower() in IMAGE_SUFFIXES)
        root = Path(os.path.commonpath([p.parent for p in files])) if files else path
    if not files:
        raise FileNotFoundError(f"no images found at {spec} (--input)")
    return [(p, p.relative_to(root)) for p in files]


def label_info(model: torch.nn.Module) -> DatasetInfo:
    """The data set whose classes the model predicts (for its colours); a generated palette for other classes."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    names = tuple(cfg.get("label_names") or (str(i) for i in range(model.num_classes)))
    for info in (*DATASETS.values(), EMBEDDED):
        if info.label_names == names:
            return info
    return DatasetInfo(name=cfg.get("architecture", "model"), label_names=names, crop_size=(512, 512))


def _parse_floats(text: str, flag: str) -> Tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"{flag} {text!r} must be comma-separated numbers (command line)") from None


def _crop_size(text: Optional[str]) -> Optional[Tuple[int, int]]:
    """`769` or `512,1024` -> (height, width)."""
    if not text:
        return None
    values = _parse_floats(text, "--crop-size")
    if len(values) not in (1, 2) or not all(v.is_integer() and v > 0 for v in values):
        raise ValueError(f"--crop-size {text!r} must be one or two positive integers (command line)")
    return int(values[0]), int(values[-1])


def _overlay(image: Image.Image, colours: np.ndarray, alpha: float) -> Image.Image:
    blended = (1 - alpha) * np.asarray(image, np.float32) + alpha * colours.astype(np.float32)
    return Image.fromarray(blended.round().astype(np.uint8))


def predict(args: argparse.Namespace) -> int:
    """Segment every image of `args.input` and write the requested files; returns the number of images."""
    if args.mode not in ("whole", "slide", "multiscale"):
        raise ValueError(f"--mode {args.mode!r} is not one of whole, slide, multiscale (command line)")
    if not 0 <= args.alpha <= 1:
        raise ValueError(f"--alpha {args.alpha} must be in [0, 1] (command line)")
    scales = _parse_floats(args.scales, "--scales") if args.scales else EVAL_SCALES
    crop = _crop_size(args.crop_size)
    images = find_images(args.input)
    model = load_model(args.model).to(args.device)
    info = label_info(model)
    if args.format == "cityscapes" and info.label_names != CITYSCAPES.label_names:
        raise ValueError(f"--format cityscapes needs a model of the 19 Cityscapes classes; {args.model} predicts "
                         f"{model.num_classes} classes ({', '.join(info.label_names[:3])}, ...) (--model)")
    cfg = model.pretrained_cfg
    tiles = crop or tuple(cfg.get("input_size", (3, *info.crop_size))[1:])  # default: the training crop
    mean = torch.tensor(cfg.get("mean", info.mean)).view(3, 1, 1)
    std = torch.tensor(cfg.get("std", info.std)).view(3, 1, 1)
    output = Path(args.output)
    for path, relative in tqdm(images, desc="predict", unit="image"):
        image = read_image(path)
        pixels = ((image_to_tensor(image) - mean) / std)[None].to(args.device)
        labels = segment(model, pixels, mode=args.mode, crop_size=tiles if args.mode == "slide" or crop else None,
                         scales=scales, flip=args.flip)[0].cpu()
        name = relative.with_suffix(".png")
        if args.format == "cityscapes":
            write_label_ids(labels, output / "labels" / relative.parent / submission_name(relative))
        else:
            (output / "labels" / name).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(labels.numpy().astype(np.uint8)).save(output / "labels" / name)
        colours = colorize(labels, info.palette, info.ignore_index)
        if args.colour:
            (output / "colour" / name).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(colours).save(output / "colour" / name)
        if args.overlay:
            (output / "overlay" / name).parent.mkdir(parents=True, exist_ok=True)
            _overlay(image, colours, args.alpha).save(output / "overlay" / name)
    return len(images)


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="sr-models-predict", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="registry name/tag, saved or run folder, or Hub id")
    parser.add_argument("--input", required=True, help="an image, a folder or a glob pattern (quote it)")
    parser.add_argument("--output", required=True, help="folder for labels/, colour/ and overlay/")
    parser.add_argument("--mode", default="whole", help="whole (default), slide or multiscale")
    parser.add_argument("--crop-size", help="tile size for slide (and multiscale tiles), e.g. 769 or 512,1024")
    parser.add_argument("--scales", help=f"multiscale scales, default {','.join(map(str, EVAL_SCALES))}")
    parser.add_argument("--no-flip", dest="flip", action="store_false", help="multiscale without horizontal flips")
    parser.add_argument("--format", choices=("trainid", "cityscapes"), default="trainid",
                        help="labels/ as train ids (default) or as Cityscapes labelIds for the official evaluator")
    parser.add_argument("--no-colour", dest="colour", action="store_false", help="do not write colour/")
    parser.add_argument("--no-overlay", dest="overlay", action="store_false", help="do not write overlay/")
    parser.add_argument("--alpha", type=float, default=0.5, help="weight of the colours in the overlays (0.5)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    with reported_errors(args.debug):
        count = predict(args)
        print(f"{count} image(s) segmented; results in {args.output}")


if __name__ == "__main__":
    main()
