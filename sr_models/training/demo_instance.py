"""The instance demo (`sr-models-demo --task instance`): Table IX(a) in small, Mask R-CNN with and without SR.

Trains `train/configs/demo_instance_embedded.yaml` twice on the embedded instance set (cars, and the large vehicle
whose class only the image-level cues tell), once per detector of `RUNS`, and writes `<output-dir>/<run>/` (the
detector folder, `metrics.json`, `overlays/*.png`) and `<output-dir>/results.json` with box and mask AP (%).
Usage: python -m sr_models.training.demo_instance --output-dir outputs/demo_instance
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Dict, Optional, Sequence

from ..cli_errors import add_debug_flag, reported_errors
from .config import load_config
from .detection import build_detection_task
from .engine import train

__all__ = ["RUNS", "METRICS", "run_instance_demo", "main"]

RUNS: Dict[str, str] = {"maskrcnn": "maskrcnn_resnet14t_fpn", "maskrcnn_sr": "maskrcnn_sr_resnet14t_fpn"}
METRICS = ("bbox_AP", "bbox_AP50", "segm_AP", "segm_AP50")
CONFIG = Path(__file__).resolve().parents[2] / "train" / "configs" / "demo_instance_embedded.yaml"


def run_instance_demo(output_dir: Path, config: Path = CONFIG, overrides: Sequence[str] = ()) -> Dict[str, Dict]:
    """Train every run of `RUNS` (the model name is their only difference), write and return the results."""
    output_dir = Path(output_dir)
    results: Dict[str, Dict] = {}
    for run, name in RUNS.items():
        start = time.time()
        cfg = load_config(config, [*overrides, f"model.name={name}"])
        metrics = train(cfg, output_dir / run, build_detection_task, overwrite=True)
        results[run] = {"model": name, **{k: metrics[k] for k in METRICS}, "steps": metrics["steps"],
                        "train_and_eval_seconds": round(time.time() - start, 1)}
    (output_dir / "results.json").write_text(json.dumps(results, indent=2))
    print("\n| run | box AP | box AP50 | mask AP | mask AP50 | seconds |\n|---|---|---|---|---|---|")
    for run, r in results.items():
        print(f"| {run} | {r['bbox_AP']:.1f} | {r['bbox_AP50']:.1f} | {r['segm_AP']:.1f} | {r['segm_AP50']:.1f} | "
              f"{r['train_and_eval_seconds']:.0f} |")
    print(f"overlays: {output_dir}/<run>/overlays/*.png; results: {output_dir / 'results.json'}")
    return results


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--output-dir", type=Path, default=Path("outputs/demo_instance"))
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="extra recipe overrides for both runs, e.g. --set max_steps=50")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    with reported_errors(args.debug):
        run_instance_demo(args.output_dir, args.config, args.overrides)


if __name__ == "__main__":
    main()
