"""The demo: every head on several seeds, mean ± std per head, and the paper's orderings stated from the numbers."""
import json
import os
import subprocess
import sys

import pytest

from sr_models.training.demo import RUNS, default_jobs, orderings, summarize


def _metrics(miou, large=None):
    per = {"background": 90.0, "car": 60.0, "sign": 30.0, "truck": miou, "bus": miou, "train": miou}
    return {"mIoU": miou, "per_class_iou": per, "large_object_mIoU": miou if large is None else large}


def test_summary_is_the_mean_and_sample_std_over_seeds():
    summary = summarize({"0": _metrics(50.0), "1": _metrics(60.0), "2": _metrics(70.0)})
    assert summary["mIoU"] == {"mean": 60.0, "std": 10.0}
    assert summary["other classes"] == {"mean": 60.0, "std": 0.0} and set(summary["seeds"]) == {"0", "1", "2"}


def test_default_jobs_leave_no_core_idle_at_the_end():
    assert default_jobs(15, 2) == 3  # 5 full rounds instead of 8 with the last run alone
    assert default_jobs(10, 2) == 2 and default_jobs(15, 1) == 1 and default_jobs(15, 4) == 5


def test_orderings_hold_only_when_every_pair_agrees():
    scores = {"sr_gap_fc": [50, 52, 54], "sr_ghp_fc": [55, 51, 56], "sr_gap_gcn": [49, 50, 51],
              "sr_ghp_gcn": [53, 53, 53]}
    results = {run: summarize({str(s): _metrics(v) for s, v in enumerate(values)}) for run, values in scores.items()}
    lines = orderings(results)
    # GHP - GAP: +2.0 with FC (2 of 3 seeds), +3.0 with GCN; GCN - FC: -2.0 with GAP, -1.0 with GHP
    assert lines[0].startswith("GHP >= GAP: holds") and "+2.0 (on 2 of 3 seeds)" in lines[0]
    assert lines[1].startswith("GCN >= FC: does NOT hold") and "sr_gap_gcn - sr_gap_fc: -2.0" in lines[1]


@pytest.mark.slow
def test_demo_runs_end_to_end_and_writes_results(tmp_path):
    """`make demo`'s job on a few steps: accelerate-launched runs on two seeds, results.json, the table, the reload."""
    command = [sys.executable, "-m", "sr_models.training.demo", "--output-dir", str(tmp_path / "demo"),
               "--runs", "fcn,sr_ghp_gcn", "--seeds", "0,1", "--set", "max_steps=2", "--set", "checkpoint_every=2",
               "--set", "batch_size=4", "--set", "data.embedded={num_images: 8}"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=900,
                            env={**os.environ, "ACCELERATE_USE_CPU": "1"})
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    results = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert set(results) == {"fcn", "sr_ghp_gcn"} and set(RUNS) >= set(results)
    for run in results.values():
        assert set(run["seeds"]) == {"0", "1"} and all(m["steps"] == 2 for m in run["seeds"].values())
        assert 0 <= run["mIoU"]["mean"] <= 100 and run["mIoU"]["std"] >= 0
    assert "| sr_ghp_gcn |" in result.stdout and "max logit difference 0.00e+00" in result.stdout
    assert list((tmp_path / "demo" / "fcn" / "seed_1" / "overlays").glob("*.png"))


def test_demo_refuses_bad_arguments_in_one_line(tmp_path):
    for flag, value, message in [("--seeds", "0,x", "--seeds '0,x' must be comma-separated integers"),
                                 ("--runs", "fcn,psp", "--runs 'fcn,psp' must list some of fcn")]:
        result = subprocess.run([sys.executable, "-m", "sr_models.training.demo", flag, value,
                                 "--output-dir", str(tmp_path)], capture_output=True, text=True, timeout=300)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 1 and len(lines) == 1 and lines[0].startswith(f"error: {message}")
