"""The README's main job: dilated FCN vs SR heads on the embedded data set, over several seeds.

Trains every run of `RUNS` (the `demo_embedded` recipe, differing only in the head) once per seed, as many at a
time as there are cores (each run is `python -m sr_models.training.cli`: one process, one thread, Accelerate inside;
without `accelerate launch`, whose extra interpreter would cost each run ~0.7 GB and seconds of start-up), into
`outputs/demo/<run>/seed_<s>/`; writes `outputs/demo/results.json` (every run's
metrics per seed, and their mean and sample standard deviation); prints a Table-I-like comparison as mean ± std and
says which of the paper's ablation orderings (GHP >= GAP, GCN >= FC; Table III) hold on these seeds; reloads one run
through transformers and timm to check that both give the same logits.

Usage: sr-models-demo --seeds 0,1,2   (or python -m sr_models.training.demo)
       sr-models-demo --task instance | panoptic --output-dir DIR   (Table IX: sr_models.training.demo_detection)
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import timm
import torch
from tqdm.auto import tqdm
from transformers import AutoModelForSemanticSegmentation

from ..cli_errors import add_debug_flag, reported_errors
from ..data.embedded import EMBEDDED
from .config import load_config

__all__ = ["RUNS", "ORDERINGS", "summarize", "orderings", "main"]

# run name -> overrides of the demo recipe: the head is the only difference (Table III's squeeze x reasoning grid)
RUNS: Dict[str, List[str]] = {
    "fcn": ["model.args.context=none"],
    "sr_gap_fc": ["model.args.context=sr", "model.args.squeeze=gap", "model.args.reasoning=fc"],
    "sr_ghp_fc": ["model.args.context=sr", "model.args.squeeze=ghp", "model.args.reasoning=fc"],
    "sr_gap_gcn": ["model.args.context=sr", "model.args.squeeze=gap", "model.args.reasoning=gcn"],
    "sr_ghp_gcn": ["model.args.context=sr", "model.args.squeeze=ghp", "model.args.reasoning=gcn"],
}
# the paper's orderings: (claim, [(better run, worse run), ...]) with the other part of the head held fixed
ORDERINGS = (
    ("GHP >= GAP", [("sr_ghp_fc", "sr_gap_fc"), ("sr_ghp_gcn", "sr_gap_gcn")]),
    ("GCN >= FC", [("sr_gap_gcn", "sr_gap_fc"), ("sr_ghp_gcn", "sr_ghp_fc")]),
)
_STEP = re.compile(r"train:.*?\|\s*(\d+)/\d+")  # tqdm's "train:  45%|####  | 135/300" in a run's log


@dataclass
class Job:
    """One training run of one head on one seed."""
    run: str
    seed: int
    output_dir: Path
    process: Optional[subprocess.Popen] = None

    @property
    def log(self) -> Path:
        return self.output_dir.with_name(f"{self.output_dir.name}.log")

    def steps_done(self) -> int:
        log = self.log
        steps = _STEP.findall(log.read_text(errors="replace")) if log.is_file() else []
        return int(steps[-1]) if steps else 0


def launch(config: str, job: Job, overrides: List[str], threads: int) -> subprocess.Popen:
    """Start `python -m sr_models.training.cli` (one CPU process, replacing an earlier demo run in its folder) with
    its output going to `<output_dir>.log`."""
    command = [sys.executable, "-m", "sr_models.training.cli", "--config", str(config), "--output-dir",
               str(job.output_dir), "--overwrite"]
    for item in [*overrides, f"seed={job.seed}"]:
        command += ["--set", item]
    job.output_dir.parent.mkdir(parents=True, exist_ok=True)
    log = job.log.open("w")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": str(threads)}
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)


def run_all(jobs: List[Job], config: str, overrides: List[str], parallel: int, threads: int, steps: int) -> None:
    """Run the jobs `parallel` at a time, one progress bar per head (its seeds' steps summed); fail if one fails."""
    runs = list(dict.fromkeys(job.run for job in jobs))
    bars = {run: tqdm(total=steps * sum(j.run == run for j in jobs), desc=f"{run:>10s}", position=i)
            for i, run in enumerate(runs)}
    waiting, running = list(jobs), []
    try:
        while waiting or running:
            while waiting and len(running) < parallel:
                job = waiting.pop(0)
                job.process = launch(config, job, RUNS[job.run] + overrides, threads)
                running.append(job)
            time.sleep(1)
            for job in list(running):
                if job.process.poll() is not None:
                    running.remove(job)
                    if job.process.returncode != 0:
                        raise RuntimeError(f"run {job.run} seed {job.seed} failed (exit {job.process.returncode}; "
                                           f"see {job.log})")
            for run, bar in bars.items():
                bar.update(sum(j.steps_done() for j in jobs if j.run == run) - bar.n)
    finally:
        for job in running:
            job.process.terminate()
            job.process.wait()
        for bar in bars.values():
            bar.close()


def _mean_std(values: Sequence[float]) -> Dict[str, float]:
    """Mean and sample standard deviation (0 for one seed), rounded to 0.01."""
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": round(statistics.fmean(values), 2), "std": round(std, 2)}


def summarize(per_seed: Dict[str, Dict[str, float]]) -> Dict[str, object]:
    """One run's seeds -> mean ± std of mIoU, of each large-object class, of the large objects and of the rest."""
    large = EMBEDDED.large_object_classes
    columns: Dict[str, List[float]] = {}
    for metrics in per_seed.values():
        per = metrics["per_class_iou"]
        others = [v for k, v in per.items() if k not in large]
        values = {"mIoU": metrics["mIoU"], **{c: per.get(c, 0.0) for c in large},
                  "large objects": metrics["large_object_mIoU"], "other classes": sum(others) / len(others)}
        for key, value in values.items():
            columns.setdefault(key, []).append(value)
    return {"seeds": per_seed, **{key: _mean_std(values) for key, values in columns.items()}}


def orderings(results: Dict[str, Dict[str, object]]) -> List[str]:
    """One line per ordering of the paper: holds (mean mIoU of the claimed-better head >= the other's in every
    pair), with the mean differences and on how many seeds each pair is ordered that way."""
    lines = []
    for claim, pairs in ORDERINGS:
        pairs = [(a, b) for a, b in pairs if a in results and b in results]
        if not pairs:
            continue
        parts, holds = [], True
        for better, worse in pairs:
            gap = results[better]["mIoU"]["mean"] - results[worse]["mIoU"]["mean"]
            seeds = results[better]["seeds"]
            wins = sum(seeds[s]["mIoU"] >= results[worse]["seeds"][s]["mIoU"] for s in seeds)
            holds &= gap >= 0
            parts.append(f"{better} - {worse}: {gap:+.1f} (on {wins} of {len(seeds)} seeds)")
        lines.append(f"{claim}: {'holds' if holds else 'does NOT hold'} ({'; '.join(parts)})")
    return lines


def check_reload(run_dir: Path) -> float:
    """Largest logit difference between the run loaded through transformers and through timm."""
    x = torch.randn(2, 3, 64, 80, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        hf = AutoModelForSemanticSegmentation.from_pretrained(run_dir).eval()(pixel_values=x).logits
        tm = timm.create_model(f"local-dir:{run_dir}", pretrained=True).eval()(x)
    return (hf - tm).abs().max().item()


def _names(text: str, choices: Sequence[str], flag: str) -> List[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in choices]
    if not names or unknown:
        raise ValueError(f"{flag} {text!r} must list some of {', '.join(choices)} (command line)")
    return names


def main(argv: Optional[Sequence[str]] = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    task = argparse.ArgumentParser(add_help=False)
    task.add_argument("--task", default="semantic")  # its choices are checked by the full parser below
    known, rest = task.parse_known_args(argv)
    if known.task in ("instance", "panoptic"):  # the Table IX demos take their own flags
        from .demo_detection import main as detection_demo

        return detection_demo(["--task", known.task, *rest])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=("semantic", "instance", "panoptic"), default="semantic",
                        help="semantic: this demo (default); instance / panoptic: the Table IX demos")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated training seeds (default: 0,1,2)")
    parser.add_argument("--runs", default=",".join(RUNS), help=f"comma-separated heads (default: all of {list(RUNS)})")
    parser.add_argument("--jobs", type=int, default=None,
                        help="runs trained at a time (default: the cores, one more if the runs do not divide among them)")
    parser.add_argument("--config", default="demo_embedded", help="recipe name or YAML file (default: demo_embedded)")
    parser.add_argument("--output-dir", type=Path, default=Path("outputs/demo"))
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="extra config overrides for every run, e.g. --set max_steps=50")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    with reported_errors(args.debug):
        run_demo(args)


def default_jobs(runs: int, cores: int) -> int:
    """One single-threaded run per core, and one more when the runs do not divide among the cores: a last run
    training alone would leave cores idle (15 runs on 2 cores: 8 rounds, the last alone; 3 at a time: 5 full rounds,
    the same results, ~455 s instead of 483 s here)."""
    return cores if runs % cores == 0 else cores + 1


def run_demo(args: argparse.Namespace) -> None:
    """Train every head on every seed, print the table and the orderings, check the reload (module docstring)."""
    if not re.fullmatch(r"\s*\d+(\s*,\s*\d+)*\s*", args.seeds):
        raise ValueError(f"--seeds {args.seeds!r} must be comma-separated integers (command line)")
    seeds = list(dict.fromkeys(int(s) for s in args.seeds.split(",")))
    runs = _names(args.runs, list(RUNS), "--runs")
    if args.jobs is not None and args.jobs < 1:
        raise ValueError(f"--jobs {args.jobs} must be at least 1 (command line)")
    start = time.time()
    cfg = load_config(args.config, args.overrides)
    jobs = [Job(run, seed, args.output_dir / run / f"seed_{seed}") for seed in seeds for run in runs]
    args.jobs = args.jobs or default_jobs(len(jobs), os.cpu_count() or 1)
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    print(f"training {', '.join(runs)} on seeds {', '.join(map(str, seeds))}: {len(jobs)} runs of "
          f"{cfg.max_steps} steps, {args.jobs} at a time ({threads} thread(s) each); "
          f"logs in {args.output_dir}/<run>/seed_<s>.log", flush=True)
    run_all(jobs, args.config, args.overrides, args.jobs, threads, cfg.max_steps)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = children.ru_utime + children.ru_stime  # every finished run, launcher included
    results = {run: summarize({str(j.seed): json.loads((j.output_dir / "metrics.json").read_text())
                               for j in jobs if j.run == run}) for run in runs}
    (args.output_dir / "results.json").write_text(json.dumps(results, indent=2))

    columns = ["mIoU", *EMBEDDED.large_object_classes, "large objects", "other classes"]
    print(f"\nEmbedded data set, validation split, mIoU % as mean ± std over seeds {', '.join(map(str, seeds))} "
          f"(like Table I);\n{time.time() - start:.0f} s in total, {cpu:.0f} s of CPU time in the runs "
          f"({cpu / (os.cpu_count() or 1):.0f} s on {os.cpu_count()} idle cores)\n")
    print(f"| run | {' | '.join(columns)} |")
    print(f"|---|{'---|' * len(columns)}")
    for run, summary in results.items():
        cells = [f"{summary[c]['mean']:.1f} ± {summary[c]['std']:.1f}" for c in columns]
        print(f"| {run} | {' | '.join(cells)} |")
    print()
    for line in orderings(results):
        print(line)
    if "fcn" in results:
        for run in [r for r in results if r != "fcn"]:
            print(f"{run} - fcn: {results[run]['mIoU']['mean'] - results['fcn']['mIoU']['mean']:+.1f} mIoU points")
    reload_dir = jobs[-1].output_dir
    difference = check_reload(reload_dir)
    print(f"{reload_dir} reloaded through transformers and timm: max logit difference {difference:.2e}")
    if difference > 1e-5:
        raise RuntimeError(f"the transformers and timm reloads of {reload_dir} disagree")
    print(f"overlays: {args.output_dir}/<run>/seed_<s>/overlays/*.png; results: {args.output_dir / 'results.json'}")


if __name__ == "__main__":
    main()
