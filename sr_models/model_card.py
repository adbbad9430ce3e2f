"""Model cards for published folders, rendered from the package's `model_cards/*.md` with huggingface_hub's `ModelCard`.

Every number on a card comes from the folder: parameters and multiply-adds are measured on the saved model at its
input size, evaluation results come from the run's `metrics.json`, the recipe from its resolved `config.yaml`.
The metadata says `library_name: sr-models`: the Hub's generated snippets for `timm` or `transformers` would omit
`import sr_models` and fail; the card's own usage snippet runs as printed.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Dict, List, Tuple

import yaml
from huggingface_hub import EvalResult, ModelCard, ModelCardData
from torch import nn

from .models.segmentation import is_segmenter
from .profile import count_detector_macs, count_macs, count_params

__all__ = ["render_model_card", "render_detector_card", "TEMPLATES", "LIBRARY_NAME"]

TEMPLATES = Path(__file__).resolve().parent / "model_cards"
LIBRARY_NAME = "sr-models"


def _recipe(cfg: Dict[str, Any], prefix: str = "") -> List[Tuple[str, str]]:
    """The settings of a resolved training config as (`section.key`, value) rows, unset (null) ones left out."""
    rows = []
    for key, value in cfg.items():
        if isinstance(value, dict):
            rows += _recipe(value, f"{prefix}{key}.")
        elif value is not None:
            rows.append((f"{prefix}{key}", str(value)))
    return rows


# (metrics.json key, model-index metric type, metric name) per task
_METRICS = {
    "image-segmentation": (("mIoU", "mean_iou", "mIoU"), ("aAcc", "accuracy", "pixel accuracy (aAcc)")),
    "image-classification": (("top1", "accuracy", "top-1 accuracy"), ("top5", "accuracy", "top-5 accuracy")),
    "object-detection": (("bbox_AP", "mAP", "box AP"), ("bbox_AP50", "mAP@0.5", "box AP50"),
                         ("segm_AP", "mAP", "mask AP"), ("segm_AP50", "mAP@0.5", "mask AP50")),
    "panoptic-segmentation": (("PQ", "PQ", "PQ"), ("PQ_th", "PQ", "PQ things"), ("PQ_st", "PQ", "PQ stuff")),
}


def _eval_results(metrics: Dict[str, Any], task: str, dataset: str) -> List[EvalResult]:
    """The `model-index` entries of a run's `metrics.json`: mIoU and pixel accuracy, or top-1 and top-5."""
    task_type = "image-segmentation" if task == "panoptic-segmentation" else task  # a Hub task id
    return [EvalResult(task_type=task_type, dataset_type=dataset, dataset_name=dataset, dataset_split="validation",
                       metric_type=metric, metric_name=name, metric_value=metrics[key])
            for key, metric, name in _METRICS[task] if metrics.get(key) is not None]


def render_model_card(folder: Path, model: nn.Module, repo_id: str) -> ModelCard:
    """The card of `folder` (a saved model, optionally a training run) whose loaded model is `model`."""
    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text())
    metrics = json.loads((folder / "metrics.json").read_text()) if (folder / "metrics.json").is_file() else None
    run_cfg = yaml.safe_load((folder / "config.yaml").read_text()) if (folder / "config.yaml").is_file() else None
    pretrained_cfg = config["pretrained_cfg"]
    _, height, width = pretrained_cfg["input_size"]
    macs = count_macs(copy.deepcopy(model).to("meta"), (1, 3, height, width))
    segmenter = is_segmenter(model)
    pipeline_tag = "image-segmentation" if segmenter else "image-classification"
    # the data set the weights were trained and evaluated on; a bare folder does not say
    dataset = (metrics or {}).get("dataset") or (run_cfg or {}).get("data", {}).get("name")
    name = repo_id.split("/")[-1]
    card_data = ModelCardData(
        model_name=name,
        library_name=LIBRARY_NAME,
        license=pretrained_cfg.get("license"),
        tags=["timm", "transformers", "sr-models", "semantic-segmentation" if segmenter else "image-classification"],
        pipeline_tag=pipeline_tag,
        datasets=[str(dataset)] if dataset else None,
        eval_results=(_eval_results(metrics, pipeline_tag, str(dataset)) if metrics else None) or None,
    )
    return ModelCard.from_template(
        card_data,
        template_path=str(TEMPLATES / ("segmenter.md" if segmenter else "classifier.md")),
        repo_id=repo_id,
        repo_name=name,
        architecture=config["architecture"],
        params=f"{count_params(model) / 1e6:.2f}M",
        gmacs=f"{macs / 1e9:.2f}",
        input_h=height,
        input_w=width,
        num_classes=config["num_classes"],
        label_names=config.get("label_names") or [],
        dataset=dataset,
        model_args=json.dumps(config.get("model_args", {})),
        metrics=metrics,
        recipe=_recipe(run_cfg) if run_cfg else None,
    )


def render_detector_card(folder: Path, model: nn.Module, repo_id: str) -> ModelCard:
    """The card of a detector folder (`sr_models.hf.detection.save_detector`, optionally a training run): box and
    mask AP from its `metrics.json` in the model-index, multiply-adds as `bench/detection.py` counts them."""
    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text())
    metrics = json.loads((folder / "metrics.json").read_text()) if (folder / "metrics.json").is_file() else None
    run_cfg = yaml.safe_load((folder / "config.yaml").read_text()) if (folder / "config.yaml").is_file() else None
    height = model.transform.min_size[-1]  # the short side the detector resizes to; long side 1.5x, padded to 32
    width = min(model.transform.max_size, -(-int(1.5 * height) // 32) * 32)
    macs = count_detector_macs(copy.deepcopy(model).to("meta"), (height, width))["total"]
    dataset = (metrics or {}).get("dataset") or (run_cfg or {}).get("data", {}).get("name")
    name = repo_id.split("/")[-1]
    panoptic = "num_stuff_classes" in (config.get("detector_args") or {})
    task = "panoptic-segmentation" if panoptic else "object-detection"
    card_data = ModelCardData(
        model_name=name, library_name=LIBRARY_NAME, license="apache-2.0",
        tags=["transformers", "sr-models", "object-detection", "instance-segmentation"]
        + (["panoptic-segmentation"] if panoptic else []),
        pipeline_tag="image-segmentation" if panoptic else "object-detection",
        datasets=[str(dataset)] if dataset else None,
        eval_results=(_eval_results(metrics, task, str(dataset)) if metrics else None) or None,
    )
    return ModelCard.from_template(
        card_data, template_path=str(TEMPLATES / "detector.md"), repo_id=repo_id, repo_name=name,
        detector=config["detector"], detector_args=json.dumps(config.get("detector_args") or {}),
        params=f"{count_params(model) / 1e6:.2f}M", gmacs=f"{macs / 1e9:.2f}", input_h=height, input_w=width,
        label_names=[config["id2label"][k] for k in sorted(config["id2label"], key=int)], dataset=dataset,
        metrics=metrics, recipe=_recipe(run_cfg) if run_cfg else None, panoptic=panoptic,
    )
