"""The README's main job: dilated FCN vs SR heads on the embedded data set, trained with `accelerate launch`.

Trains three runs of `train/configs/demo_embedded.yaml` (`fcn`, `sr_gap_fc`, `sr_ghp_gcn`) side by side, writes
`outputs/demo/<run>/` and `outputs/demo/results.json`, prints a Table-I-like comparison, and reloads one run through
transformers and timm to check that both give the same logits. Usage: python -m sr_models.training.demo
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

import timm
import torch
from tqdm.auto import tqdm
from transformers import AutoModelForSemanticSegmentation

from ..cli_errors import add_debug_flag, reported_errors
from ..data.embedded import EMBEDDED
from .config import load_config

__all__ = ["RUNS", "main"]

# run name -> overrides of the demo recipe: the head is the only difference
RUNS: Dict[str, List[str]] = {
    "fcn": ["model.args.context=none"],
    "sr_gap_fc": ["model.args.context=sr", "model.args.squeeze=gap", "model.args.reasoning=fc"],
    "sr_ghp_gcn": ["model.args.context=sr", "model.args.squeeze=ghp", "model.args.reasoning=gcn"],
}
REPO = Path(__file__).resolve().parents[2]
_STEP = re.compile(r"train:.*?\|\s*(\d+)/\d+")  # tqdm's "train:  45%|####  | 135/300" in a run's log


def launch(config: Path, output_dir: Path, overrides: List[str], threads: int) -> subprocess.Popen:
    """Start `accelerate launch train/seg.py` (one CPU process, replacing an earlier demo run in `output_dir`) with
    its output going to `<output_dir>.log`."""
    command = [sys.executable, "-m", "accelerate.commands.launch", "--quiet", "--num_processes", "1",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               str(REPO / "train" / "seg.py"),
               "--config", str(config), "--output-dir", str(output_dir), "--overwrite"]
    for item in overrides:
        command += ["--set", item]
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    log = output_dir.with_name(f"{output_dir.name}.log").open("w")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": str(threads)}
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)


def follow(runs: Dict[str, subprocess.Popen], output_dir: Path, total: int) -> None:
    """One progress bar per run, read from the runs' logs, until every run has ended; fail if one failed."""
    bars = {name: tqdm(total=total, desc=f"{name:>10s}", position=i) for i, name in enumerate(runs)}
    while any(bar.n < total and runs[name].poll() is None for name, bar in bars.items()):
        time.sleep(2)
        for name, bar in bars.items():
            steps = _STEP.findall((output_dir / f"{name}.log").read_text(errors="replace"))
            if steps:
                bar.update(int(steps[-1]) - bar.n)
    for name, process in runs.items():
        if process.wait() != 0:
            raise RuntimeError(f"run {name} failed (exit {process.returncode}); see {output_dir / f'{name}.log'}")
    for bar in bars.values():
        bar.close()


def check_reload(run_dir: Path) -> float:
    """Largest logit difference between the run loaded through transformers and through timm."""
    x = torch.randn(2, 3, 64, 80, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        hf = AutoModelForSemanticSegmentation.from_pretrained(run_dir).eval()(pixel_values=x).logits
        tm = timm.create_model(f"local-dir:{run_dir}", pretrained=True).eval()(x)
    return (hf - tm).abs().max().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=REPO / "train" / "configs" / "demo_embedded.yaml")
    parser.add_argument("--output-dir", type=Path, default=Path("outputs/demo"))
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="extra config overrides for every run, e.g. --set max_steps=50")
    add_debug_flag(parser)
    args = parser.parse_args()
    with reported_errors(args.debug):
        run_demo(args)


def run_demo(args: argparse.Namespace) -> None:
    """Train the runs, print the table, check the reload (see the module docstring)."""
    start = time.time()
    cfg = load_config(args.config, args.overrides)
    threads = max(1, (os.cpu_count() or 1) // len(RUNS))
    print(f"training {', '.join(RUNS)} side by side ({threads} thread(s) each, {cfg.max_steps} steps); "
          f"logs in {args.output_dir}/<run>.log", flush=True)
    runs = {name: launch(args.config, args.output_dir / name, overrides + args.overrides, threads)
            for name, overrides in RUNS.items()}
    follow(runs, args.output_dir, cfg.max_steps)
    results = {name: json.loads((args.output_dir / name / "metrics.json").read_text()) for name in RUNS}
    (args.output_dir / "results.json").write_text(json.dumps(results, indent=2))

    large = EMBEDDED.large_object_classes
    print(f"\nEmbedded data set, validation split (mIoU %, like Table I); {time.time() - start:.0f} s in total\n")
    print(f"| run | mIoU | {' | '.join(large)} | large objects | other classes |")
    print(f"|---|---|{'---|' * len(large)}---|---|")
    for name, m in results.items():
        per = m["per_class_iou"]
        others = [v for k, v in per.items() if k not in large]
        print(f"| {name} | {m['mIoU']:.1f} | {' | '.join(f'{per.get(c, 0):.1f}' for c in large)} | "
              f"{m['large_object_mIoU']:.1f} | {sum(others) / len(others):.1f} |")
    gain = results["sr_ghp_gcn"]["mIoU"] - results["fcn"]["mIoU"]
    print(f"\nSR(GHP + GCN) - FCN: {gain:+.1f} mIoU points")
    difference = check_reload(args.output_dir / "sr_ghp_gcn")
    print(f"sr_ghp_gcn reloaded through transformers and timm: max logit difference {difference:.2e}")
    if difference > 1e-5:
        raise RuntimeError(f"the transformers and timm reloads of {args.output_dir / 'sr_ghp_gcn'} disagree")
    print(f"overlays: {args.output_dir}/<run>/overlays/*.png; results: {args.output_dir / 'results.json'}")


if __name__ == "__main__":
    main()
