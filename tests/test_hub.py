"""Publishing to the Hub, end to end, against the loopback Hub of tests/hub_server.py.

The client side (hub/publish.py, timm, transformers) runs in subprocesses: huggingface_hub reads HF_ENDPOINT,
HF_HUB_DISABLE_XET, HF_HOME and the token when it is imported, and this pytest process imported it long ago.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch
import yaml
from huggingface_hub import ModelCard

import sr_models
from hub_server import LoopbackHub

REPO = Path(__file__).resolve().parents[1]
TOKEN = "hf_loopback_secret_token_123"
ORG = "loopback-org"
REPO_ID = f"{ORG}/srnet_resnet18_d8.cityscapes"  # the registry's hf_hub_id of that tag, with SR_MODELS_HUB_ORG=ORG


@pytest.fixture(scope="module")
def hub():
    server = LoopbackHub(TOKEN).start()
    yield server
    server.stop()


def _env(hub, tmp_path, token=True):
    env = {**os.environ, "HF_ENDPOINT": hub.endpoint, "HF_HUB_DISABLE_XET": "1", "HF_HOME": str(tmp_path / "hf"),
           "SR_MODELS_HUB_ORG": ORG, "HF_HUB_DISABLE_TELEMETRY": "1", "OMP_NUM_THREADS": "1"}
    env.pop("HF_TOKEN", None)
    if token:
        env["HF_TOKEN"] = TOKEN
    return env


def _publish(hub, tmp_path, source, *args, token=True):
    return subprocess.run([sys.executable, str(REPO / "hub" / "publish.py"), str(source), *args], cwd=REPO,
                          env=_env(hub, tmp_path, token), capture_output=True, text=True, timeout=600)


def _make_run(path: Path, seed: int, miou: float) -> Path:
    """A training run folder as train/seg.py writes it (model + metrics.json + config.yaml)."""
    torch.manual_seed(seed)
    model = timm.create_model("srnet_resnet18_d8", num_classes=19)
    sr_models.save_pretrained(model, path)
    per_class = {name: miou for name in model.pretrained_cfg["label_names"]}
    metrics = {"task": "semantic-segmentation", "dataset": "cityscapes", "mIoU": miou, "aAcc": 90.0,
               "per_class_iou": per_class, "large_object_mIoU": miou, "large_object_classes": ["truck", "bus", "train"],
               "steps": 10, "eval_mode": "whole", "eval_images": 3}
    (path / "metrics.json").write_text(json.dumps(metrics))
    (path / "config.yaml").write_text(yaml.safe_dump({
        "task": "semantic-segmentation", "model": {"name": "srnet_resnet18_d8", "args": {}},
        "data": {"name": "cityscapes", "crop_size": [769, 769]}, "optim": {"name": "sgd", "lr": 0.01},
        "schedule": {"name": "poly", "power": 0.9}, "batch_size": 8, "max_steps": 10}))
    return path


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    return _make_run(tmp_path_factory.mktemp("run1"), seed=1, miou=61.5)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A real (tiny) training run of train/seg.py's code on the embedded data set."""
    from sr_models.training import load_config, train
    from sr_models.training.segmentation import build_segmentation_task

    folder = tmp_path_factory.mktemp("trained")
    (folder / "tiny.yaml").write_text(yaml.safe_dump({
        "task": "semantic-segmentation",
        "model": {"name": "srnet_resnet18_d8", "args": {"backbone": "resnet10t", "channels": 32}},
        "data": {"name": "embedded", "crop_size": [32, 32], "embedded": {"image_size": 32, "num_images": 8}},
        "batch_size": 4, "max_steps": 4, "checkpoint_every": 4, "eval": {"mode": "whole", "max_images": 4},
        "overlays": 1}))
    train(load_config(folder / "tiny.yaml"), folder / "run", build_segmentation_task)
    return folder / "run"


LOAD_EVERY_DOOR = r"""
import json, sys, torch, timm, sr_models
from transformers import AutoModelForSemanticSegmentation, pipeline
from PIL import Image
repo_id, local, tag = sys.argv[1], sys.argv[2], sys.argv[3]
x = torch.randn(1, 3, 64, 96, generator=torch.Generator().manual_seed(0))
with torch.no_grad():
    expected = timm.create_model("local-dir:" + local, pretrained=True).eval()(x)
    loaded = {"hf-hub": timm.create_model("hf-hub:" + repo_id, pretrained=True),
              "transformers": AutoModelForSemanticSegmentation.from_pretrained(repo_id)}
    if tag != "-":
        loaded["registry tag"] = timm.create_model(tag, pretrained=True)
    report = {}
    for door, model in loaded.items():
        out = model.eval()(x) if door != "transformers" else model.eval()(pixel_values=x).logits
        report[door] = (out - expected).abs().max().item()
segments = pipeline("image-segmentation", model=repo_id)(Image.new("RGB", (61, 45)))
report["labels"] = [s["label"] for s in segments]
print(json.dumps(report))
"""


def _load_every_door(hub, tmp_path, repo_id, local, tag="-"):
    loaded = subprocess.run([sys.executable, "-c", LOAD_EVERY_DOOR, repo_id, str(local), tag],
                            env=_env(hub, tmp_path), capture_output=True, text=True, timeout=600)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    return json.loads(loaded.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_publish_a_trained_run_then_hf_hub_transformers_and_pipeline_give_its_logits(hub, tmp_path, trained_run):
    repo_id = f"{ORG}/srnet-embedded"
    result = _publish(hub, tmp_path, trained_run, "--repo-id", repo_id)
    assert result.returncode == 0, result.stderr[-3000:]
    assert TOKEN not in result.stdout + result.stderr
    report = _load_every_door(hub, tmp_path, repo_id, trained_run)
    assert report["hf-hub"] == report["transformers"] == 0.0
    assert set(report["labels"]) <= {"background", "car", "sign", "truck", "bus", "train"}
    card = ModelCard(hub.repos[repo_id].commits[hub.repos[repo_id].refs["main"]]["README.md"].content.decode())
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert card.data.eval_results[0].metric_value == metrics["mIoU"] and card.data.datasets == ["embedded"]


@pytest.mark.slow
def test_registry_tag_finds_its_weights_on_the_hub(hub, tmp_path, first_run):
    result = _publish(hub, tmp_path, first_run, "--repo-id", REPO_ID)
    assert result.returncode == 0, result.stderr[-3000:]
    report = _load_every_door(hub, tmp_path, REPO_ID, first_run, tag="srnet_resnet18_d8.cityscapes")
    assert report["registry tag"] == report["hf-hub"] == report["transformers"] == 0.0
    assert set(report["labels"]) <= set(timm.create_model("srnet_resnet18_d8").pretrained_cfg["label_names"])


@pytest.mark.slow
def test_second_publish_is_a_new_revision_and_a_failed_one_changes_nothing(hub, tmp_path, tmp_path_factory, first_run):
    repo_id = f"{ORG}/revisions"
    assert _publish(hub, tmp_path, first_run, "--repo-id", repo_id).returncode == 0
    first_sha = hub.repos[repo_id].refs["main"]
    second_run = _make_run(tmp_path_factory.mktemp("run2"), seed=2, miou=70.0)
    assert _publish(hub, tmp_path, second_run, "--repo-id", repo_id).returncode == 0
    second_sha = hub.repos[repo_id].refs["main"]
    assert second_sha != first_sha
    old = hub.repos[repo_id].commits[first_sha]["model.safetensors"].content
    assert old == (first_run / "model.safetensors").read_bytes()  # the old revision is still there, unchanged
    code = ("import sys; from huggingface_hub import hf_hub_download; "
            "print(open(hf_hub_download(sys.argv[1], 'model.safetensors', revision=sys.argv[2]), 'rb').read() "
            "== open(sys.argv[3], 'rb').read())")
    by_revision = subprocess.run([sys.executable, "-c", code, repo_id, first_sha, str(first_run / "model.safetensors")],
                                 env=_env(hub, tmp_path), capture_output=True, text=True, timeout=300)
    assert by_revision.stdout.strip() == "True", by_revision.stderr[-2000:]

    hub.fail_next["commit"] = 1  # the server fails in the middle of the upload
    failed = _publish(hub, tmp_path, first_run, "--repo-id", repo_id)
    assert failed.returncode == 1
    assert "error: upload to loopback-org/revisions failed" in failed.stderr
    assert TOKEN not in failed.stdout + failed.stderr
    assert hub.repos[repo_id].refs["main"] == second_sha  # the previous revision is intact


def test_publish_without_a_token_fails_clearly(hub, tmp_path, first_run):
    result = _publish(hub, tmp_path, first_run, "--repo-id", f"{ORG}/no-token", token=False)
    assert result.returncode == 1 and "no Hugging Face token" in result.stderr
    assert f"{ORG}/no-token" not in hub.repos


def test_dry_run_stages_and_verifies_without_uploading(hub, tmp_path, first_run):
    result = _publish(hub, tmp_path, first_run, "--repo-id", f"{ORG}/dry", "--dry-run")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "dry run" in result.stdout and f"{ORG}/dry" not in hub.repos


def test_a_folder_that_is_not_a_saved_model_fails_clearly(hub, tmp_path):
    (tmp_path / "empty").mkdir()
    result = _publish(hub, tmp_path, tmp_path / "empty", "--repo-id", f"{ORG}/x")
    assert result.returncode == 1 and "has no config.json" in result.stderr


def test_card_parses_and_its_metadata_holds_the_run_numbers(first_run, tmp_path):
    from sr_models.model_card import render_model_card
    from sr_models.profile import count_params

    model = timm.create_model(f"local-dir:{first_run}", pretrained=True)
    card_path = tmp_path / "README.md"
    render_model_card(first_run, model, REPO_ID).save(card_path)
    card = ModelCard.load(card_path)
    assert card.data.library_name == "timm" and {"timm", "transformers", "sr-models"} <= set(card.data.tags)
    assert card.data.pipeline_tag == "image-segmentation" and card.data.datasets == ["cityscapes"]
    result = card.data.eval_results[0]
    assert result.metric_type == "mean_iou" and result.metric_value == 61.5
    assert f"{count_params(model) / 1e6:.2f}M" in card.text and "| truck | 61.5 |" in card.text
    assert "lr 0.01" in card.text and f"hf-hub:{REPO_ID}" in card.text


def test_card_of_a_bare_folder_says_it_has_no_evaluation(tmp_path):
    from sr_models.model_card import render_model_card

    model = timm.create_model("sr_resnet18", num_classes=3)
    sr_models.save_pretrained(model, tmp_path / "bare")
    card = render_model_card(tmp_path / "bare", model, f"{ORG}/bare")
    assert "without evaluation results" in card.text and card.data.eval_results is None
    assert card.data.pipeline_tag == "image-classification"


def test_pretrained_tag_missing_on_the_hub_names_the_repo_it_tried(hub, tmp_path):
    code = "import sr_models, timm; timm.create_model('srnet_resnet50_d8.ade20k', pretrained=True)"
    result = subprocess.run([sys.executable, "-c", code], env=_env(hub, tmp_path), capture_output=True, text=True,
                            timeout=300)
    assert result.returncode != 0
    assert f"{ORG}/srnet_resnet50_d8.ade20k" in result.stderr
