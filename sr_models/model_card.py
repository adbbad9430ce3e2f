"""Model cards for published folders, rendered from `model_cards/*.md` with huggingface_hub's `ModelCard`.

Every number on a card comes from the folder: parameters and multiply-adds are measured on the saved model at its
input size, evaluation results come from the run's `metrics.json`, the recipe from its resolved `config.yaml`.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Dict, List, Tuple

import yaml
from huggingface_hub import EvalResult, ModelCard, ModelCardData
from torch import nn

from .hf.saving import is_segmenter
from .profile import count_macs, count_params

__all__ = ["render_model_card", "TEMPLATES"]

TEMPLATES = Path(__file__).resolve().parents[1] / "model_cards"


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
    "image-segmentation": (("mIoU", "mean_iou", "mIoU"), ("pixel_accuracy", "accuracy", "pixel accuracy")),
    "image-classification": (("top1", "accuracy", "top-1 accuracy"), ("top5", "accuracy", "top-5 accuracy")),
}


def _eval_results(metrics: Dict[str, Any], task: str, dataset: str) -> List[EvalResult]:
    """The `model-index` entries of a run's `metrics.json`: mIoU and pixel accuracy, or top-1 and top-5."""
    return [EvalResult(task_type=task, dataset_type=dataset, dataset_name=dataset, dataset_split="validation",
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
    segmenter = is_segmenter(config["architecture"])
    pipeline_tag = "image-segmentation" if segmenter else "image-classification"
    # the data set the weights were trained and evaluated on; a bare folder does not say
    dataset = (metrics or {}).get("dataset") or (run_cfg or {}).get("data", {}).get("name")
    name = repo_id.split("/")[-1]
    card_data = ModelCardData(
        model_name=name,
        library_name="timm",
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
