"""Detector folders through transformers: Auto classes, the object-detection and instance-segmentation pipelines."""
import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoModelForInstanceSegmentation, AutoModelForObjectDetection, pipeline

import sr_models
from sr_models.hf.detection import load_detector, save_detector

LABELS = {1: "car", 2: "bus"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    torch.manual_seed(0)
    model = sr_models.create_detector("maskrcnn_sr_resnet14t_fpn", num_classes=3, min_size=64, max_size=80,
                                      box_score_thresh=0.0, box_detections_per_img=4).eval()
    path = save_detector(model, tmp_path_factory.mktemp("detector"), LABELS)
    return model, path


def test_the_folder_loads_through_both_auto_classes_and_matches_the_detector(folder):
    model, path = folder
    assert {p.name for p in path.iterdir()} >= {"config.json", "model.safetensors", "preprocessor_config.json"}
    x = torch.rand(3, 64, 64)
    with torch.no_grad():
        expected = model([x])[0]
        for auto in (AutoModelForObjectDetection, AutoModelForInstanceSegmentation):
            got = auto.from_pretrained(path).eval()(pixel_values=x[None]).detections[0]
            assert torch.allclose(got["boxes"], expected["boxes"], atol=1e-5)
            assert torch.allclose(got["masks"], expected["masks"], atol=1e-5)
    assert load_detector(path).id2label == LABELS


def test_pipelines_return_named_boxes_and_instance_masks(folder):
    _, path = folder
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (60, 70, 3), dtype=np.uint8))
    boxes = pipeline("object-detection", model=str(path))(image, threshold=0.0)
    assert boxes and all(b["label"] in LABELS.values() and 0 <= b["box"]["xmax"] <= 70 for b in boxes)
    masks = pipeline("image-segmentation", model=str(path), subtask="instance")(image, threshold=0.0)
    assert masks and all(m["label"] in LABELS.values() and m["mask"].size == (70, 60) for m in masks)
    assert [m["score"] for m in masks] == sorted((m["score"] for m in masks), reverse=True)


def test_staging_a_detector_folder_writes_box_and_mask_ap_into_the_model_index(folder, tmp_path):
    from huggingface_hub import ModelCard

    from sr_models.publishing import stage

    _, path = folder
    metrics = {"task": "instance-segmentation", "dataset": "embedded", "bbox_AP": 41.5, "bbox_AP50": 70.25,
               "segm_AP": 38.0, "segm_AP50": 66.5, "bbox_APl": None, "eval_images": 96, "steps": 300}
    (path / "metrics.json").write_text(__import__("json").dumps(metrics))
    try:
        hashes = stage(path, tmp_path / "staging", "org/maskrcnn-sr-embedded")
    finally:
        (path / "metrics.json").unlink()
    assert {"README.md", "config.json", "model.safetensors", "preprocessor_config.json"} <= set(hashes)
    card = ModelCard.load(tmp_path / "staging" / "README.md")
    results = {(r.metric_name, r.metric_value) for r in card.data.eval_results}
    assert results == {("box AP", 41.5), ("box AP50", 70.25), ("mask AP", 38.0), ("mask AP50", 66.5)}
    assert card.data.pipeline_tag == "object-detection" and "| box | 41.5 | 70.2 |" in card.text


@pytest.mark.slow
def test_publish_to_the_loopback_hub_then_the_pipeline_loads_the_detector_by_repo_id(folder, tmp_path):
    """hub/publish.py uploads the folder; a fresh process reads it back from the Hub through the pipeline."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from huggingface_hub import ModelCard
    from hub_server import LoopbackHub

    _, path = folder
    run = tmp_path / "run"
    __import__("shutil").copytree(path, run)
    (run / "metrics.json").write_text(json.dumps({"dataset": "embedded", "bbox_AP": 12.5, "segm_AP": 10.0}))
    token, repo_id, repo = "hf_loopback_detector_token", "loopback-org/maskrcnn-sr", Path(__file__).parents[1]
    hub = LoopbackHub(token, tmp_path / "hub").start()
    try:
        env = {**os.environ, "HF_ENDPOINT": hub.endpoint, "HF_HUB_DISABLE_XET": "1", "HF_HOME": str(tmp_path / "hf"),
               "HF_TOKEN": token, "OMP_NUM_THREADS": "1"}
        published = subprocess.run([sys.executable, str(repo / "hub" / "publish.py"), str(run), "--repo-id", repo_id],
                                   cwd=repo, env=env, capture_output=True, text=True, timeout=600)
        assert published.returncode == 0, published.stderr[-3000:]
        card = ModelCard(hub.repos[repo_id].tree(hub.repos[repo_id].refs["main"])["README.md"].content.decode())
        assert {(r.metric_name, r.metric_value) for r in card.data.eval_results} == {("box AP", 12.5),
                                                                                     ("mask AP", 10.0)}
        code = ("import sr_models, numpy as np; from PIL import Image; from transformers import pipeline; "
                f"p = pipeline('object-detection', model='{repo_id}'); "
                "print(len(p(Image.fromarray(np.zeros((50, 60, 3), np.uint8)), threshold=0.0)))")
        loaded = subprocess.run([sys.executable, "-c", code], cwd=repo, env=env, capture_output=True, text=True,
                                timeout=600)
        assert loaded.returncode == 0 and int(loaded.stdout.split()[-1]) > 0, loaded.stderr[-3000:]
    finally:
        hub.stop()
