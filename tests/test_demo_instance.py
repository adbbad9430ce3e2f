"""The instance demo end to end on a few steps: two runs, results.json with box/mask AP, overlays."""
import json

import pytest

from sr_models.training.demo_instance import METRICS, RUNS, run_instance_demo


@pytest.mark.slow
def test_instance_demo_writes_results_and_overlays(tmp_path):
    results = run_instance_demo(tmp_path / "demo", overrides=[
        "max_steps=2", "checkpoint_every=2", "eval.max_images=2", "overlays=1", "batch_size=2",
        "data.embedded.num_images=4", "data.embedded.image_size=64", "model.args.min_size=64",
        "model.args.max_size=80", f"data.root={tmp_path / 'data'}"])
    saved = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert saved == results and set(saved) == set(RUNS) == {"maskrcnn", "maskrcnn_sr"}
    for run, metrics in saved.items():
        assert all(0 <= metrics[k] <= 100 for k in METRICS) and metrics["steps"] == 2
        assert (tmp_path / "demo" / run / "overlays" / "0000.png").is_file()
