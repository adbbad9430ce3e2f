"""The Table IX demos end to end on a few steps: two runs each, results.json with their metrics, overlays."""
import json

import pytest

from sr_models.training.demo_detection import DEMOS, run_detection_demo


@pytest.mark.slow
@pytest.mark.parametrize("task", ["instance", "panoptic"])
def test_detection_demo_writes_results_and_overlays(task, tmp_path):
    extra = ["model.args.stuff_area_threshold=16"] if task == "panoptic" else []
    results = run_detection_demo(task, tmp_path / "demo", overrides=[
        "max_steps=2", "checkpoint_every=2", "eval.max_images=2", "overlays=1", "batch_size=2",
        "data.embedded.num_images=4", "data.embedded.image_size=64", "model.args.min_size=64",
        "model.args.max_size=80", f"data.root={tmp_path / 'data'}", *extra])
    saved = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert saved == results and set(saved) == set(DEMOS[task].runs)
    for run, metrics in saved.items():
        assert all(metrics[k] is None or 0 <= metrics[k] <= 100 for k, _ in DEMOS[task].metrics)
        assert metrics["steps"] == 2
        assert (tmp_path / "demo" / run / "overlays" / "0000.png").is_file()


def test_sr_models_demo_hands_the_table9_tasks_to_the_detection_demo(monkeypatch):
    from sr_models.training import demo, demo_detection

    calls = []
    monkeypatch.setattr(demo_detection, "main", calls.append)
    demo.main(["--task", "panoptic", "--output-dir", "somewhere", "--set", "max_steps=5"])
    assert calls == [["--task", "panoptic", "--output-dir", "somewhere", "--set", "max_steps=5"]]
