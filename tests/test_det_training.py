"""Detection training on the engine: the step schedule, a training run with COCO AP, exact resume, the folder."""
import json

import pytest
import torch
import yaml
from accelerate import Accelerator
from safetensors.torch import load_file

from sr_models.hf.detection import load_detector
from sr_models.training import RecipeError, recipe_from_dict
from sr_models.training.detection import build_detection_task
from sr_models.training.engine import train
from test_training import _finish, _launch, schedule_lrs

TINY = {
    "task": "instance-segmentation",
    "seed": 0,
    "model": {"name": "maskrcnn_sr_resnet14t_fpn",
              "args": {"min_size": 64, "max_size": 80, "rpn_pre_nms_top_n_train": 64, "rpn_post_nms_top_n_train": 32,
                       "rpn_pre_nms_top_n_test": 64, "rpn_post_nms_top_n_test": 16, "box_batch_size_per_image": 32,
                       "box_detections_per_img": 5, "box_score_thresh": 0.0}},
    "data": {"name": "embedded", "embedded": {"image_size": 64, "num_images": 4}},
    "optim": {"name": "sgd", "lr": 0.005, "weight_decay": 0.0001},
    "schedule": {"name": "step", "warmup_steps": 2, "warmup_ratio": 0.001, "milestones": [2], "gamma": 0.1},
    "batch_size": 2,
    "max_steps": 3,
    "checkpoint_every": 2,
    "log_every": 1,
    "eval": {"max_images": 2},
    "overlays": 1,
}


def test_step_schedule_warms_up_linearly_then_drops_tenfold_at_each_milestone():
    lrs = schedule_lrs({**TINY, "max_steps": 12, "schedule": {
        "name": "step", "warmup_steps": 4, "warmup_ratio": 0.001, "milestones": [8, 11], "gamma": 0.1}}, lr=0.02)
    expected = [0.02 * (0.001 + 0.999 * s / 4) for s in range(4)] + [0.02] * 4 + [0.002] * 3 + [0.0002] * 2
    assert lrs == pytest.approx(expected)


def test_detection_recipes_get_the_same_checks_as_every_recipe():
    # refused when the recipe is read, not later when the optimizer or model is built
    for bad, message in [({"optim": {"name": "sgdx"}}, "optim.name='sgdx' is not a timm optimizer"),
                         ({"model": {"name": "maskrcnn_sr_resnet14t_fpn", "args": {"num_classes": 3}}},
                          "model.args.num_classes is set by the task"),
                         ({"model": {"name": "maskrcnn_sr_resnet51_fpn"}}, "is not a registered detector"),
                         ({"data": {"name": "cityscapes"}}, "detection reads 'coco'")]:
        with pytest.raises(RecipeError, match=message):
            recipe_from_dict({**TINY, **bad})


@pytest.mark.slow
def test_training_writes_coco_ap_a_loadable_detector_and_resumes_exactly(tmp_path):
    cfg = recipe_from_dict({**TINY, "data": {**TINY["data"], "root": str(tmp_path / "data")}})
    metrics = train(cfg, tmp_path / "straight", build_detection_task)
    for key in ("bbox_AP", "bbox_AP50", "bbox_AP75", "segm_AP", "segm_AP50", "segm_APs"):
        assert key in metrics and (metrics[key] is None or 0 <= metrics[key] <= 100)
    assert metrics["steps"] == 3 and metrics["task"] == "instance-segmentation" and metrics["eval_images"] == 2
    run = tmp_path / "straight"
    assert json.loads((run / "metrics.json").read_text())["bbox_AP"] == metrics["bbox_AP"]
    assert (run / "overlays" / "0000.png").is_file()
    detector = load_detector(run)
    assert detector.id2label == {1: "car", 2: "truck", 3: "bus", 4: "train"}
    with torch.no_grad():
        assert set(detector([torch.rand(3, 64, 64)])[0]) == {"boxes", "labels", "scores", "masks"}

    # stop after the checkpoint at step 2, resume to step 3: the weights of the uninterrupted run
    first = recipe_from_dict({**TINY, "max_steps": 2, "data": {**TINY["data"], "root": str(tmp_path / "data")}})
    train(first, tmp_path / "resumed", build_detection_task)
    train(cfg, tmp_path / "resumed", build_detection_task, resume=True)
    straight = load_file(run / "checkpoints" / "step_3" / "model.safetensors")
    resumed = load_file(tmp_path / "resumed" / "checkpoints" / "step_3" / "model.safetensors")
    assert straight.keys() == resumed.keys()
    assert all(torch.allclose(straight[k], resumed[k], atol=1e-6) for k in straight)


@pytest.mark.slow
def test_a_detection_run_with_ema_writes_the_averaged_detector_as_a_detector_folder(tmp_path):
    cfg = recipe_from_dict({**TINY, "max_steps": 2, "ema": {"decay": 0.5},
                            "data": {**TINY["data"], "root": str(tmp_path / "data")}})
    train(cfg, tmp_path / "run", build_detection_task)
    ema = load_detector(tmp_path / "run" / "ema")
    assert ema.id2label == load_detector(tmp_path / "run").id2label
    saved = load_file(tmp_path / "run" / "ema" / "model.safetensors")
    assert any(not torch.equal(v, load_file(tmp_path / "run" / "model.safetensors")[k]) for k, v in saved.items())


def train_in_two_processes(recipe: dict, tmp_path, build_task) -> tuple:
    """`accelerate launch train/det.py` with 2 gloo processes on `recipe`: its metrics (replicas checked equal), and
    the metrics of one process (1 thread, as each launched one) evaluating the saved model on the same images."""
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(recipe))
    output = _finish(_launch(tmp_path / "tiny.yaml", tmp_path / "ddp", processes=2, script="det.py"))
    metrics = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert metrics["num_processes"] == 2, output[-2000:]
    first, second = metrics["replica_checksums"]
    assert first == second
    task = build_task(recipe_from_dict(recipe))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return metrics, task.evaluate(Accelerator(cpu=True), load_detector(tmp_path / "ddp"), task.val_set)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.slow
def test_two_cpu_processes_train_one_detector_and_evaluate_every_image_once(tmp_path):
    """2 processes: equal replicas, and the evaluation shared among them (each takes every other image, the
    results gathered) equals one process evaluating the saved model."""
    recipe = {**TINY, "max_steps": 2, "eval": {"max_images": 3},
              "data": {**TINY["data"], "root": str(tmp_path / "data")}}
    metrics, alone = train_in_two_processes(recipe, tmp_path, build_detection_task)
    assert metrics["eval_images"] == alone["eval_images"] == 3
    assert metrics["eval_detections"] == alone["eval_detections"] == 3 * TINY["model"]["args"]["box_detections_per_img"]
    for key in ("bbox_AP", "bbox_AP50", "segm_AP", "segm_AP50"):
        assert metrics[key] == pytest.approx(alone[key], abs=1e-6), key
