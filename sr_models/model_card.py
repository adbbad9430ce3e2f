"""Model cards for published folders, rendered from `model_cards/*.md` with huggingface_hub's `ModelCard`.

Every number on a card comes from the folder: parameters and multiply-adds are measured on the saved model at its
input size, evaluation results come from the run's `metrics.json`, the recipe from its resolved `config.yaml`.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Dict, Optional

import yaml
from huggingface_hub import EvalResult, ModelCard, ModelCardData
from torch import nn

from .hf.saving import is_segmenter
from .profile import count_macs, count_params

__all__ = ["render_model_card", "TEMPLATES"]

TEMPLATES = Path(__file__).resolve().parents[1] / "model_cards"


def _recipe(cfg: Optional[Dict[str, Any]]) -> str:
    """A readable summary of a resolved training config."""
    if not cfg:
        return ""
    optim, schedule, data = cfg.get("optim", {}), cfg.get("schedule", {}), cfg.get("data", {})
    lines = [
        f"- data: `{data.get('name')}`" + (f", crop {data['crop_size']}" if data.get("crop_size") else "")
        + (f", scale {data['scale_range']}" if data.get("scale_range") else ""),
        f"- optimizer: {optim.get('name')} lr {optim.get('lr')}, momentum {optim.get('momentum')}, "
        f"weight decay {optim.get('weight_decay')}",
        f"- schedule: {schedule.get('name')}" + (f" (power {schedule['power']})" if schedule.get("power") else "")
        + f", warm-up {schedule.get('warmup_steps', 0)} steps, {cfg.get('max_steps')} steps",
        f"- batch size {cfg.get('batch_size')} per process x {cfg.get('grad_accum_steps', 1)} accumulation steps",
    ]
    loss = cfg.get("loss", {})
    if cfg.get("task") == "semantic-segmentation":
        lines.append(f"- loss: cross-entropy + {loss.get('aux_weight')} x auxiliary"
                     + (f", OHEM {loss['ohem_thresh']}" if loss.get("ohem_thresh") else ""))
    lines.append("\nThe full resolved config:\n\n```yaml\n" + yaml.safe_dump(cfg, sort_keys=False) + "```")
    return "\n".join(lines)


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
    dataset = (metrics or {}).get("dataset") or (run_cfg or {}).get("data", {}).get("name") or pretrained_cfg.get("tag")
    name = repo_id.split("/")[-1]
    eval_results = None
    if metrics:
        task = "image-segmentation" if segmenter else "image-classification"
        pairs = [("mean_iou", metrics["mIoU"])] if segmenter else [("accuracy", metrics["top1"])]
        eval_results = [EvalResult(task_type=task, dataset_type=str(dataset), dataset_name=str(dataset),
                                   dataset_split="validation", metric_type=metric, metric_value=value)
                        for metric, value in pairs]
    card_data = ModelCardData(
        model_name=name,
        library_name="timm",
        license=pretrained_cfg.get("license", "apache-2.0"),
        tags=["timm", "transformers", "sr-models", "semantic-segmentation" if segmenter else "image-classification"],
        pipeline_tag="image-segmentation" if segmenter else "image-classification",
        datasets=[str(dataset)] if dataset else None,
        eval_results=eval_results,
    )
    return ModelCard.from_template(
        card_data,
        template_path=str(TEMPLATES / ("segmenter.md" if segmenter else "classifier.md")),
        repo_id=repo_id,
        repo_name=name,
        architecture=config["architecture"],
        model_summary=f"Built with `timm.create_model(\"{config['architecture']}\", **model_args)`.",
        params=f"{count_params(model) / 1e6:.2f}M",
        gmacs=f"{macs / 1e9:.2f}",
        input_hw=f"{height}x{width}",
        input_h=height,
        input_w=width,
        num_classes=config["num_classes"],
        dataset=dataset,
        model_args=json.dumps(config.get("model_args", {})),
        metrics=metrics,
        recipe=_recipe(run_cfg),
    )
