"""Table IX(b)'s recipe as a `Task`: a registered Panoptic FPN, COCO-panoptic data, its losses, PQ / SQ / RQ."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Tuple

import torch
from accelerate import Accelerator
from accelerate.utils import gather_object
from PIL import Image
from torch import nn
from torchvision.transforms.v2.functional import to_dtype, to_pil_image
from torchvision.utils import draw_segmentation_masks

from ..data.coco_panoptic import COCOPanoptic, coco_panoptic
from ..data.embedded_panoptic import embedded_panoptic
from ..hf.detection import save_detector
from ..models.detection import create_detector
from .config import Recipe
from .detection import _collate, _forward, _loss, detection_datasets
from .engine import Task
from .panoptic_quality import PanopticEvaluator, to_category_instance

__all__ = ["build_panoptic_task", "panoptic_datasets", "overlay_panoptic"]


def panoptic_datasets(cfg: Recipe) -> Tuple[COCOPanoptic, COCOPanoptic]:
    """Training and validation sets of a panoptic recipe: COCO panoptic or the embedded panoptic set."""
    return detection_datasets(cfg, coco_panoptic, embedded_panoptic, "panoptic")


def _evaluate(cfg: Recipe):
    def evaluate(accelerator: Accelerator, model: nn.Module, dataset: COCOPanoptic) -> Dict[str, Any]:
        """PQ, SQ, RQ (all / things / stuff) over the validation images, shared among the processes."""
        count = len(dataset) if cfg.eval.max_images is None else min(len(dataset), cfg.eval.max_images)
        pairs = []
        for index in range(accelerator.process_index, count, accelerator.num_processes):
            image, target = dataset[index]
            with torch.no_grad():
                output = model([image.to(accelerator.device)])[0]
            pairs.append((to_category_instance(output["panoptic_seg"].cpu(), output["segments_info"]),
                          target["panoptic"]))
        num_things = len(dataset.categories.things)
        evaluator = PanopticEvaluator(range(1, num_things + 1), range(num_things + 1, len(dataset.categories.names) + 1))
        pairs = gather_object(pairs)
        for prediction, truth in pairs:
            evaluator.update(prediction, truth)
        metrics = evaluator.compute()
        names = dataset.label_names
        metrics["per_class_PQ"] = {names[c]: v for c, v in metrics["per_class_PQ"].items()}
        return {"task": "panoptic-segmentation", "dataset": cfg.data.name, **metrics, "eval_images": len(pairs)}
    return evaluate


def overlay_panoptic(image: torch.Tensor, panoptic_seg: torch.Tensor, segments_info, truth: torch.Tensor,
                     palette) -> Image.Image:
    """image | predicted segments | ground-truth segments, each segment in its category's colour."""
    pixels = to_dtype(image.cpu(), torch.uint8, scale=True)

    def panel(ids: torch.Tensor, categories) -> torch.Tensor:
        segments = [i for i in ids.unique().tolist() if i > 0]
        if not segments:
            return pixels
        masks = torch.stack([ids == i for i in segments])
        colours = [tuple(palette[categories[i]]) for i in segments]
        return draw_segmentation_masks(pixels, masks, alpha=0.6, colors=colours)

    predicted = panel(panoptic_seg.cpu(), {s["id"]: s["category_id"] for s in segments_info})
    true_ids = torch.where(truth[..., 0] >= 0, truth[..., 1], 0)
    pairs = truth.reshape(-1, 2).unique(dim=0)  # (category, instance) of every labelled segment
    true_categories = dict(zip(pairs[pairs[:, 0] >= 0, 1].tolist(), pairs[pairs[:, 0] >= 0, 0].tolist()))
    return to_pil_image(torch.cat([pixels, predicted, panel(true_ids, true_categories)], dim=2))


def _write_outputs(cfg: Recipe):
    def write_outputs(model: nn.Module, dataset: COCOPanoptic, output_dir: Path, metrics: Dict[str, Any]) -> None:
        """The model folder (safetensors + config) and image | prediction | ground-truth PNGs."""
        save_detector(model, output_dir, dataset.label_names)
        folder = output_dir / "overlays"
        folder.mkdir(exist_ok=True)
        palette = {i: c.get("color") or (255, 255, 255)
                   for i, c in enumerate(dataset.categories.things + dataset.categories.stuff, start=1)}
        for index in range(min(cfg.overlays, len(dataset))):
            image, target = dataset[index]
            with torch.no_grad():
                output = model([image.to(next(model.parameters()).device)])[0]
            overlay_panoptic(image, output["panoptic_seg"], output["segments_info"], target["panoptic"],
                             palette).save(folder / f"{index:04d}.png")
    return write_outputs


def build_panoptic_task(cfg: Recipe) -> Task:
    """Model, data, losses (Mask R-CNN's + the weighted semantic loss, summed) and PQ of a panoptic recipe."""
    train_set, val_set = panoptic_datasets(cfg)
    model = create_detector(cfg.model.name, num_classes=train_set.num_classes,
                            num_stuff_classes=len(train_set.categories.stuff),
                            pretrained_backbone=cfg.model.pretrained_backbone, **cfg.model.args)
    return Task(model, train_set, val_set, _loss, _evaluate(cfg), _write_outputs(cfg), metric="PQ", forward=_forward,
                collate_fn=_collate,
                save_model=lambda m, folder: save_detector(m, folder, val_set.label_names))
