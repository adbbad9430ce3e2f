"""Training with Accelerate: schedules, configs, the loss falling, two real processes, kill -9 and resume."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

import sr_models  # noqa: F401
from sr_models.training import build_schedule, load_config, recipe_from_dict
from sr_models.training.engine import train
from sr_models.training.segmentation import build_segmentation_task

REPO = Path(__file__).resolve().parents[1]

TINY = {
    "task": "semantic-segmentation",
    "seed": 0,
    "model": {"name": "srnet_resnet18_d8", "args": {"backbone": "resnet10t", "channels": 32}},
    "data": {"name": "embedded", "crop_size": [32, 32], "scale_range": [0.75, 1.25],
             "embedded": {"image_size": 32, "num_images": 16}},
    "optim": {"name": "sgd", "lr": 0.02},
    "batch_size": 4,
    "max_steps": 6,
    "checkpoint_every": 2,
    "keep_checkpoints": 5,
    "log_every": 1,
    "eval": {"mode": "whole", "max_images": 4},
    "overlays": 2,
}


def _write_config(tmp_path, **changes) -> Path:
    cfg = {**TINY, **changes}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _launch(config: Path, output_dir: Path, *extra: str, processes: int = 1, script: str = "seg.py",
            **popen) -> subprocess.Popen:
    command = [sys.executable, "-m", "accelerate.commands.launch", "--num_machines", "1", "--mixed_precision", "no",
               "--dynamo_backend", "no", "--num_processes", str(processes)]
    command += ["--multi_gpu"] if processes > 1 else []
    command += [str(REPO / "train" / script), "--config", str(config), "--output-dir", str(output_dir), *extra]
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)


def _finish(process: subprocess.Popen) -> str:
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output[-3000:]
    return output


def schedule_lrs(recipe: dict, lr: float) -> list:
    """The learning rate before each of the recipe's `max_steps` updates and after the last, under its schedule."""
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    schedule = build_schedule(recipe_from_dict(recipe), optimizer)
    values = []
    for _ in range(recipe["max_steps"] + 1):
        values.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    return values


def test_poly_and_cosine_schedules_follow_their_formulas():
    def lrs(name, **schedule):
        return schedule_lrs({**TINY, "max_steps": 100, "schedule": {"name": name, **schedule}}, lr=0.01)

    poly = lrs("poly", power=0.9, warmup_steps=10)
    assert poly[0] == 0 and poly[5] == pytest.approx(0.005) and poly[10] == pytest.approx(0.01)  # linear warm-up
    assert poly[55] == pytest.approx(0.01 * (1 - 45 / 90) ** 0.9)  # (1 - iter / total)^0.9 after warm-up
    assert poly[100] == pytest.approx(0.0, abs=1e-12)
    cosine = lrs("cosine", warmup_steps=10)
    assert cosine[10] == pytest.approx(0.01) and cosine[55] == pytest.approx(0.005)
    assert cosine[100] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("changes, error, message", [
    ({"model": {"name": "srnet_resnet9000", "args": {}}}, ValueError, "not a registered timm model"),
    ({"data": {"name": "cityscapes", "root": "/nonexistent/cityscapes"}}, FileNotFoundError, "does not exist"),
    ({"task": "detection"}, ValueError, "task='detection'"),
    ({"batch_size": 0}, ValueError, "batch_size=0"),
])
def test_bad_configs_fail_clearly(tmp_path, changes, error, message):
    with pytest.raises(error, match=message):
        load_config(_write_config(tmp_path, **changes))


def test_overrides_reach_any_key_and_bad_ones_fail(tmp_path):
    cfg = load_config(_write_config(tmp_path), ["optim.lr=0.5", "model.args.context=none", "eval.scales=[1, 2]"])
    assert cfg.optim.lr == 0.5 and cfg.model.args["context"] == "none" and cfg.eval.scales == [1, 2]
    with pytest.raises(ValueError, match="key.sub=value"):
        load_config(_write_config(tmp_path), ["optim.lr"])


def test_crop_larger_than_the_images_fails_clearly(tmp_path):
    cfg = load_config(_write_config(tmp_path), ["data.crop_size=[64, 64]"])
    with pytest.raises(ValueError, match=r"crop_size=\[64, 64\] is larger than the images \(32x32"):
        build_segmentation_task(cfg)


def test_training_lowers_the_loss_and_writes_the_run_folder(tmp_path):
    cfg = load_config(_write_config(tmp_path), ["max_steps=30", "checkpoint_every=30", "batch_size=8"])
    task = build_segmentation_task(cfg)
    batch = torch.utils.data.default_collate([task.val_set[i] for i in range(8)])

    def loss_of(model):
        model.train()
        torch.manual_seed(0)
        with torch.no_grad():
            return task.loss(model(batch["pixel_values"]), batch).item()

    before = loss_of(task.model)
    metrics = train(cfg, tmp_path / "run", lambda _: task)
    after = loss_of(task.model)
    assert after < 0.8 * before
    run = tmp_path / "run"
    assert {"model.safetensors", "config.json", "preprocessor_config.json", "metrics.json", "config.yaml"} <= {
        p.name for p in run.iterdir()}
    assert len(list((run / "overlays").glob("*.png"))) == 2
    saved = json.loads((run / "metrics.json").read_text())
    assert saved["mIoU"] == metrics["mIoU"] and set(saved["per_class_iou"]) <= set(task.val_set.info.label_names)
    assert json.loads((run / "config.json").read_text())["label_names"][3] == "truck"


@pytest.mark.slow
def test_two_cpu_processes_train_one_model(tmp_path):
    config = _write_config(tmp_path)
    output = _finish(_launch(config, tmp_path / "ddp", processes=2))
    metrics = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert metrics["num_processes"] == 2, output[-2000:]
    first, second = metrics["replica_checksums"]
    assert first == second  # identical weights on both ranks


@pytest.mark.slow
def test_kill_9_then_resume_reaches_the_uninterrupted_weights(tmp_path):
    # 24 images / batch 4 = 6 batches per epoch: the checkpoint at step 5 is in the middle of the first epoch
    data = {**TINY["data"], "embedded": {"image_size": 32, "num_images": 24}}
    config = _write_config(tmp_path, max_steps=10, checkpoint_every=5, data=data)
    _finish(_launch(config, tmp_path / "straight"))
    crashed = _launch(config, tmp_path / "crashed", start_new_session=True)
    deadline = time.time() + 300
    while not (tmp_path / "crashed" / "checkpoints" / "step_5").exists():
        assert crashed.poll() is None and time.time() < deadline, "no checkpoint before the run ended"
        time.sleep(0.2)
    os.killpg(crashed.pid, signal.SIGKILL)
    crashed.wait()
    assert not (tmp_path / "crashed" / "model.safetensors").exists()  # really interrupted
    output = _finish(_launch(config, tmp_path / "crashed", "--resume"))
    assert "resumed from" in output and "at step 5" in output
    straight = load_file(tmp_path / "straight" / "model.safetensors")
    resumed = load_file(tmp_path / "crashed" / "model.safetensors")
    for key, value in straight.items():
        torch.testing.assert_close(resumed[key], value, rtol=0, atol=1e-6, msg=key)


def test_resume_without_a_checkpoint_fails_clearly(tmp_path):
    cfg = load_config(_write_config(tmp_path))
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train(cfg, tmp_path / "empty", build_segmentation_task, resume=True)


def test_classification_trains_on_a_tiny_image_folder(tmp_path):
    from PIL import Image

    from sr_models.training.classification import build_classification_task

    rng = torch.Generator().manual_seed(0)
    for split in ("train", "val"):
        for label, colour in [("red", 0), ("green", 1)]:
            for i in range(4):
                pixels = torch.rand(40, 40, 3, generator=rng) * 60
                pixels[..., colour] += 180
                (tmp_path / "data" / split / label).mkdir(parents=True, exist_ok=True)
                Image.fromarray(pixels.byte().numpy()).save(tmp_path / "data" / split / label / f"{i}.png")
    config = {"task": "image-classification", "model": {"name": "sr_resnet18", "args": {}},
              "data": {"name": "imagefolder", "root": str(tmp_path / "data"), "transform": {"input_size": [3, 32, 32]}},
              "optim": {"name": "adamw", "lr": 0.001, "weight_decay": 0.0001},
              "schedule": {"name": "cosine", "warmup_steps": 1}, "batch_size": 4, "max_steps": 3,
              "checkpoint_every": 3}
    (tmp_path / "cls.yaml").write_text(yaml.safe_dump(config))
    cfg = load_config(tmp_path / "cls.yaml")
    metrics = train(cfg, tmp_path / "run", build_classification_task)
    assert metrics["task"] == "image-classification" and 0 <= metrics["top1"] <= 100 and metrics["top5"] == 100
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["architecture"] == "sr_resnet18" and saved["label_names"] == ["green", "red"]


@pytest.mark.parametrize("recipe", sorted(p.name for p in (REPO / "train" / "configs").glob("*.yaml")))
def test_every_recipe_is_a_valid_config(recipe, tmp_path):
    raw = yaml.safe_load((REPO / "train" / "configs" / recipe).read_text())
    overrides = [f"data.root={tmp_path}"] if raw["data"].get("root") else []
    cfg = load_config(REPO / "train" / "configs" / recipe, overrides)  # refuses unknown keys, models, arguments
    detector = cfg.task in ("instance-segmentation", "panoptic-segmentation")
    assert (cfg.model.name in sr_models.list_detectors()) if detector else __import__("timm").is_model(cfg.model.name)

