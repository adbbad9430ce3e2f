"""Classification (Section IV-E) as a `Task`: SR-ResNet from timm's registry, CE with label smoothing or timm's
mixup / CutMix with soft-target CE, top-1/5."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Dict, Optional

import timm
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from timm.data import Mixup
from timm.loss import SoftTargetCrossEntropy
from torch import nn

from ..data import build_dataset, classification_transform
from ..hf import save_pretrained
from .config import Recipe
from .engine import Task
from .metrics import topk_correct

__all__ = ["build_classification_task"]


def _evaluate(accelerator: Accelerator, model: nn.Module, dataset) -> Dict[str, Any]:
    """Top-1 / top-5 accuracy (percent) over the validation split, shared among the processes."""
    hits, count = torch.zeros(2, dtype=torch.long, device=accelerator.device), 0
    with torch.no_grad():
        for index in range(accelerator.process_index, len(dataset), accelerator.num_processes):
            item = dataset[index]
            logits = model(item["pixel_values"][None].to(accelerator.device))
            correct = topk_correct(logits, torch.tensor([item["labels"]], device=accelerator.device))
            hits += torch.tensor([correct[1], correct[5]], device=accelerator.device)
    hits = accelerator.reduce(hits, "sum").cpu()
    count = len(dataset)
    return {"task": "image-classification", "top1": round(100 * hits[0].item() / count, 2),
            "top5": round(100 * hits[1].item() / count, 2), "eval_images": count}


def build_classification_task(cfg: Recipe) -> Task:
    """Model, data, loss and evaluation of a classification recipe; each split is built once."""
    data = {**cfg.data.as_mapping(), "task": "classification"}
    train_set = build_dataset(data, cfg.data.train_split, train=True)
    val_set = build_dataset(data, cfg.data.val_split, train=False)
    label_names = train_set.label_names
    model = timm.create_model(cfg.model.name, num_classes=len(label_names),
                              pretrained_cfg_overlay=dict(num_classes=len(label_names), label_names=label_names),
                              **cfg.model.args)
    # the transforms follow the model's pretrained cfg where the recipe leaves them unset
    train_set.transform = classification_transform(data, True, model)
    val_set.transform = classification_transform(data, False, model)
    mixup = _mixup(cfg, len(label_names))
    smoothing = cfg.loss.label_smoothing
    soft_target_ce = SoftTargetCrossEntropy()

    def loss(logits: torch.Tensor, batch: Dict[str, torch.Tensor]) -> torch.Tensor:
        if mixup is not None:  # the labels are mixed, smoothed one-hot rows
            return soft_target_ce(logits, batch["labels"])
        return F.cross_entropy(logits, batch["labels"], label_smoothing=smoothing)

    def mix(batch: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        if len(batch["labels"]) % 2:
            raise ValueError(f"mixup/cutmix needs an even batch size (got {len(batch['labels'])}); set batch_size")
        pixels, labels = mixup(batch["pixel_values"], batch["labels"])
        return {**batch, "pixel_values": pixels, "labels": labels}

    def write_outputs(model: nn.Module, dataset, output_dir: Path, metrics: Dict[str, Any]) -> None:
        save_pretrained(model, output_dir)

    return Task(model, train_set, val_set, loss, _evaluate, write_outputs,
                prepare_batch=mix if mixup is not None else None, metric="top1")


def _mixup(cfg: Recipe, num_classes: int) -> Optional[Mixup]:
    """timm's `Mixup` (mixup and/or CutMix) from the `mixup` section, off while both alphas are 0 and there is no
    `cutmix_minmax`; it smooths the mixed one-hot targets by `loss.label_smoothing`."""
    args = dataclasses.asdict(cfg.mixup)
    if not (args["mixup_alpha"] or args["cutmix_alpha"] or args["cutmix_minmax"]):
        return None
    return Mixup(**args, label_smoothing=cfg.loss.label_smoothing, num_classes=num_classes)
