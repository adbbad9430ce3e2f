"""The Table IX demos in small, each a network trained with and without SR on an embedded set:

    sr-models-demo --task instance   Mask R-CNN on the embedded instance set (Table IX(a)): box and mask AP
    sr-models-demo --task panoptic   Panoptic FPN on the embedded panoptic set (Table IX(b)): PQ, things, stuff

Each trains its recipe (`train/configs/demo_<task>_embedded.yaml`) once per run of its `DEMOS` entry (the model
name is their only difference) and writes `<output-dir>/<run>/` (the model folder, `metrics.json`,
`overlays/*.png`) and `<output-dir>/results.json`.
Usage: python -m sr_models.training.demo_detection --task instance --output-dir outputs/demo_instance
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence, Tuple

from ..cli_errors import add_debug_flag, reported_errors
from ..recipes import RECIPES
from .config import load_config
from .detection import build_detection_task
from .engine import Task, train
from .panoptic import build_panoptic_task

__all__ = ["DEMOS", "DetectionDemo", "run_detection_demo", "main"]

CONFIGS = RECIPES  # the packaged recipes (train/configs in a checkout)


@dataclass(frozen=True)
class DetectionDemo:
    config: Path
    runs: Dict[str, str]  # run name -> registered model name
    build_task: Callable[..., Task]
    metrics: Tuple[Tuple[str, str], ...]  # (metrics.json key, table title)


DEMOS = {
    "instance": DetectionDemo(
        CONFIGS / "demo_instance_embedded.yaml",
        {"maskrcnn": "maskrcnn_resnet14t_fpn", "maskrcnn_sr": "maskrcnn_sr_resnet14t_fpn"}, build_detection_task,
        (("bbox_AP", "box AP"), ("bbox_AP50", "box AP50"), ("segm_AP", "mask AP"), ("segm_AP50", "mask AP50"))),
    "panoptic": DetectionDemo(
        CONFIGS / "demo_panoptic_embedded.yaml",
        {"panoptic_fpn": "panoptic_fpn_resnet14t", "panoptic_fpn_sr": "panoptic_fpn_sr_resnet14t"},
        build_panoptic_task, (("PQ", "PQ"), ("PQ_th", "PQ things"), ("PQ_st", "PQ stuff"))),
}


def run_detection_demo(task: str, output_dir: Path, config: Optional[Path] = None,
                       overrides: Sequence[str] = ()) -> Dict[str, Dict]:
    """Train every run of `DEMOS[task]`, write and return the results (percent)."""
    if task not in DEMOS:
        raise ValueError(f"--task {task!r} is not one of {sorted(DEMOS)}")
    demo, output_dir = DEMOS[task], Path(output_dir)
    results: Dict[str, Dict] = {}
    for run, name in demo.runs.items():
        start = time.time()
        cfg = load_config(config or demo.config, [*overrides, f"model.name={name}"])
        metrics = train(cfg, output_dir / run, demo.build_task, overwrite=True)
        results[run] = {"model": name, **{k: metrics[k] for k, _ in demo.metrics}, "steps": metrics["steps"],
                        "train_and_eval_seconds": round(time.time() - start, 1)}
    (output_dir / "results.json").write_text(json.dumps(results, indent=2))
    titles = [title for _, title in demo.metrics]
    print(f"\n| run | {' | '.join(titles)} | seconds |\n|" + "---|" * (len(titles) + 2))
    for run, r in results.items():
        cells = " | ".join(f"{r[k]:.1f}" if r[k] is not None else "-" for k, _ in demo.metrics)
        print(f"| {run} | {cells} | {r['train_and_eval_seconds']:.0f} |")
    print(f"overlays: {output_dir}/<run>/overlays/*.png; results: {output_dir / 'results.json'}")
    return results


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=sorted(DEMOS), required=True)
    parser.add_argument("--config", type=Path, help="another recipe than the task's demo recipe")
    parser.add_argument("--output-dir", type=Path, help="default: outputs/demo_<task>")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="extra recipe overrides for both runs, e.g. --set max_steps=50")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    with reported_errors(args.debug):
        run_detection_demo(args.task, args.output_dir or Path(f"outputs/demo_{args.task}"), args.config,
                           args.overrides)


if __name__ == "__main__":
    main()
