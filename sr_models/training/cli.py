"""Command line of `sr-models-train`, `train/seg.py` and `train/cls.py` (run them with `accelerate launch`).

`sr-models-train` (or `accelerate launch -m sr_models.training.cli`) trains the task its recipe names.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional, Sequence

from ..hub_client import hub_timeout, set_hub_timeout
from .config import load_config
from .engine import train

__all__ = ["main"]


def main(task: Optional[str] = None, argv: Optional[Sequence[str]] = None) -> None:
    """Parse the flags, load and override the config, train, print the metrics; `task` None: the recipe's task."""
    what = f"a {task} model" if task else "the model of a recipe"
    parser = argparse.ArgumentParser(description=f"Train {what} (launch with `accelerate launch`).")
    parser.add_argument("--config", required=True, help="a packaged recipe's name (e.g. srnet_r50_cityscapes) or "
                                                        "a YAML file (e.g. train/configs/srnet_r50_cityscapes.yaml)")
    parser.add_argument("--output-dir", required=True, help="run folder: model, metrics.json, checkpoints/")
    parser.add_argument("--max-steps", type=int, help="override max_steps")
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint of --output-dir")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override any config key, e.g. --set optim.lr=0.02 --set model.args.context=nl")
    args = parser.parse_args(argv)
    set_hub_timeout(hub_timeout())  # pretrained weights and data sets may come from the Hub
    overrides = list(args.overrides) + ([f"max_steps={args.max_steps}"] if args.max_steps is not None else [])
    cfg = load_config(args.config, overrides)
    if task is not None and cfg["task"] != task:
        parser.error(f"{args.config} is a {cfg['task']} recipe; use the other script")
    task = cfg["task"]
    if task == "semantic-segmentation":
        from .segmentation import build_segmentation_task as build
    else:
        from .classification import build_classification_task as build
    metrics = train(cfg, Path(args.output_dir), build, resume=args.resume)
    summary = {k: v for k, v in metrics.items() if not isinstance(v, (dict, list))}
    print("metrics:", summary)


if __name__ == "__main__":
    main()
