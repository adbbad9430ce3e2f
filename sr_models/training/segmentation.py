"""The paper's segmentation recipe as a `Task`: SRNet/FCN from timm's registry, CE + 0.4 aux (+ OHEM; or Dice,
Focal, Lovász; optional class weights), aAcc / mIoU / mAcc / mDice and the confusion matrix."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import timm
import torch
from accelerate import Accelerator
from torch import nn
from tqdm.auto import tqdm

from ..data import SegmentationDataset, build_dataset
from ..hf import save_pretrained
from ..inference import segment
from ..losses import SegmentationLoss, enet_class_weights
from .config import Recipe
from .engine import Task
from .metrics import confusion_matrix, segmentation_metrics
from .overlays import overlay_panel
from .plots import plot_confusion_matrix

__all__ = ["build_segmentation_task"]


def _evaluate(cfg: Recipe):
    def evaluate(accelerator: Accelerator, model: nn.Module, dataset) -> Dict[str, Any]:
        """mIoU over the validation split, the images shared among the processes, confusion matrices summed."""
        info, eval_cfg = dataset.info, cfg.eval
        count = len(dataset) if eval_cfg.max_images is None else min(len(dataset), eval_cfg.max_images)
        confusion = torch.zeros(info.num_classes, info.num_classes, dtype=torch.long, device=accelerator.device)
        for index in range(accelerator.process_index, count, accelerator.num_processes):
            item = dataset[index]
            labels = segment(model, item["pixel_values"][None].to(accelerator.device), mode=eval_cfg.mode,
                             crop_size=eval_cfg.crop_size or cfg.data.crop_size or info.crop_size,
                             scales=eval_cfg.scales, flip=eval_cfg.flip,
                             bf16=cfg.mixed_precision == "bf16")[0]  # the run's precision, not the CPU's default
            confusion += confusion_matrix(labels, item["labels"].to(accelerator.device), info.num_classes,
                                          info.ignore_index)
        confusion = accelerator.reduce(confusion, "sum")
        metrics = segmentation_metrics(confusion.cpu(), info.label_names, info.large_object_classes)
        return {"task": "semantic-segmentation", "dataset": info.name, **metrics, "eval_mode": eval_cfg.mode,
                "eval_images": count, "confusion_matrix": confusion.cpu().numpy()}
    return evaluate


def _write_outputs(cfg: Recipe):
    def write_outputs(model: nn.Module, dataset, output_dir: Path, metrics: Dict[str, Any]) -> None:
        """The model folder (timm + transformers), the confusion matrix as confusion_matrix.npy and .png, and
        image | prediction | ground-truth PNGs."""
        save_pretrained(model, output_dir)
        info = dataset.info
        np.save(output_dir / "confusion_matrix.npy", metrics["confusion_matrix"])
        plot_confusion_matrix(metrics["confusion_matrix"], info.label_names, output_dir / "confusion_matrix.png")
        folder = output_dir / "overlays"
        folder.mkdir(exist_ok=True)
        for index in range(min(cfg.overlays, len(dataset))):
            item = dataset[index]
            prediction = segment(model, item["pixel_values"][None].to(next(model.parameters()).device),
                                 bf16=cfg.mixed_precision == "bf16")[0]
            overlay_panel(item["pixel_values"], prediction, item["labels"], dataset.transform.mean,
                          dataset.transform.std, info.palette).save(folder / f"{index:04d}.png")
    return write_outputs


def build_segmentation_task(cfg: Recipe) -> Task:
    """Model, data, loss and evaluation of a segmentation recipe."""
    data = cfg.data.as_mapping()
    train_set = build_dataset(data, cfg.data.train_split, train=True)
    val_set = build_dataset(data, cfg.data.val_split, train=False)
    info = train_set.info
    overlay = dict(num_classes=info.num_classes, label_names=list(info.label_names), mean=tuple(info.mean),
                   std=tuple(info.std), input_size=(3, *train_set.transform.crop_size))
    model = timm.create_model(cfg.model.name, num_classes=info.num_classes,
                              pretrained_backbone=cfg.model.pretrained_backbone,
                              pretrained_cfg_overlay=overlay, **cfg.model.args)
    criterion = SegmentationLoss(info.ignore_index, cfg.loss.aux_weight, cfg.loss.ohem_thresh,
                                 cfg.loss.ohem_min_kept, cfg.loss.name, class_weights(cfg.loss.class_weight, train_set))

    def loss(output, batch: Dict[str, torch.Tensor]) -> torch.Tensor:
        logits, aux = output if isinstance(output, tuple) else (output, None)
        return criterion(logits, batch["labels"], aux)

    return Task(model, train_set, val_set, loss, _evaluate(cfg), _write_outputs(cfg), metric="mIoU")


def class_weights(setting: Union[None, str, Sequence[float]], dataset: SegmentationDataset) -> Optional[List[float]]:
    """`loss.class_weight`: null (none), `dataset` (the data set's published weights, e.g. Cityscapes'),
    `computed` (ENet's 1 / ln(1.02 + p_class) from the pixel counts of `dataset`'s label maps) or a list."""
    info = dataset.info
    if setting is None:
        return None
    if setting == "dataset":
        if not info.class_weights:
            raise ValueError(f"loss.class_weight='dataset': data set {info.name!r} has no published class weights; "
                             f"use 'computed' or a list of {info.num_classes} numbers")
        return list(info.class_weights)
    if setting == "computed":
        counts = torch.zeros(256, dtype=torch.long)
        for index in tqdm(range(len(dataset)), desc="class weights", leave=False):
            counts += torch.bincount(torch.from_numpy(dataset.load(index)[1]).flatten().long(), minlength=256)
        return enet_class_weights(counts[:info.num_classes]).tolist()
    if isinstance(setting, str) or len(setting) != info.num_classes:
        raise ValueError(f"loss.class_weight={setting!r} must be null, 'dataset', 'computed' or a list of "
                         f"{info.num_classes} numbers (one per class of {info.name!r})")
    return [float(w) for w in setting]
