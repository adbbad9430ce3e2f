"""Command line of `sr-models-train`, `train/seg.py`, `train/cls.py` and `train/det.py` (run them with
`accelerate launch`, or `python` for one process).

`sr-models-train` (or `accelerate launch -m sr_models.training.cli`) trains the task its recipe names.
"""
from __future__ import annotations

import argparse
import importlib
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

from ..cli_errors import add_debug_flag, reported_errors
from ..hub_client import hub_timeout, set_hub_timeout
from .config import TASKS, Recipe, load_config
from .engine import Task, train

__all__ = ["main", "task_builder"]


def task_builder(task: str) -> Callable[[Recipe], Task]:
    """The function building the `Task` of a recipe's `task` (see `config.TASKS`)."""
    module, name = TASKS[task].split(":")
    return getattr(importlib.import_module(module), name)


def main(tasks: Union[str, Sequence[str], None] = None, argv: Optional[Sequence[str]] = None) -> None:
    """Parse the flags, load and check the recipe (of one of `tasks`; None, as `sr-models-train`: any task), train,
    print the metrics; errors as one `error:` line."""
    tasks = (tasks,) if isinstance(tasks, str) else tuple(tasks or ())
    what = f"a {' or '.join(tasks)} model" if tasks else "the model of a recipe"
    parser = argparse.ArgumentParser(description=f"Train {what} (launch with `accelerate launch`).")
    parser.add_argument("--config", required=True, help="a packaged recipe's name (e.g. srnet_r50_cityscapes) or "
                                                        "a YAML file (e.g. train/configs/srnet_r50_cityscapes.yaml)")
    parser.add_argument("--output-dir", required=True, help="run folder: model, metrics.json, checkpoints/")
    parser.add_argument("--max-steps", type=int, help="override max_steps")
    start = parser.add_mutually_exclusive_group()
    start.add_argument("--resume", action="store_true", help="continue from the newest checkpoint of --output-dir")
    start.add_argument("--overwrite", action="store_true", help="delete a non-empty --output-dir and start again")
    parser.add_argument("--resume-partial", action="store_true",
                        help="with --resume: continue without a checkpoint's missing or unreadable optimizer or "
                             "RNG state (printed as a warning; the run then differs from an uninterrupted one)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override any recipe key, e.g. --set optim.lr=0.02 --set model.args.context=nl")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    if args.resume_partial and not args.resume:
        parser.error("--resume-partial goes with --resume")
    with reported_errors(args.debug):
        set_hub_timeout(hub_timeout())  # pretrained weights and data sets may come from the Hub
        overrides = list(args.overrides) + ([f"max_steps={args.max_steps}"] if args.max_steps is not None else [])
        cfg = load_config(args.config, overrides)
        if tasks and cfg.task not in tasks:
            raise ValueError(f"{args.config} is a {cfg.task} recipe; this command trains {' or '.join(tasks)} recipes")
        metrics = train(cfg, Path(args.output_dir), task_builder(cfg.task), resume=args.resume,
                        overwrite=args.overwrite, resume_partial=args.resume_partial)
        summary = {k: v for k, v in metrics.items() if not isinstance(v, (dict, list))}
        print("metrics:", summary)


if __name__ == "__main__":
    main()
