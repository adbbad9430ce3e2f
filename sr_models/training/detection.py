"""Table IX(a)'s recipe as a `Task`: a registered detector, COCO-format instances, its own losses, COCO AP."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence, Tuple

import torch
from accelerate import Accelerator
from accelerate.utils import gather_object
from PIL import Image
from torch import nn
from torchvision.transforms.v2.functional import to_dtype, to_pil_image
from torchvision.utils import draw_bounding_boxes, draw_segmentation_masks

from ..data.coco import CocoInstances, DetectionDataset, coco_instances, collate_detection, detection_transform
from ..data.embedded_instances import embedded_instances
from ..models.detection import create_detector
from ..hf.detection import save_detector
from .coco_eval import coco_metrics, to_coco_results
from .config import Recipe
from .engine import Task

__all__ = ["build_detection_task", "detection_datasets", "overlay_detections"]


def detection_datasets(cfg: Recipe, coco: Callable = coco_instances, embedded: Callable = embedded_instances,
                       kind: str = "instances") -> Tuple[DetectionDataset, DetectionDataset]:
    """Training and validation sets of a detection recipe (`coco` / `embedded` make the `kind` of set: COCO
    instances by default, COCO panoptic for Panoptic FPN); the training resize follows the model's sizes."""
    data, args = cfg.data, cfg.model.args
    train_tf = detection_transform(True, args.get("min_size", 800), args.get("max_size", 1333),
                                   flip=True if data.flip is None else data.flip)
    val_tf = detection_transform(False)
    if data.name == "coco":
        return coco(data.root, data.train_split, train_tf), coco(data.root, data.val_split, val_tf)
    e = data.embedded
    root = Path(data.root) if data.root else Path(tempfile.gettempdir()) / (
        f"sr_models_embedded_{kind}_{e.image_size}px_seed{e.seed}_{e.num_images or 'default'}")
    sets = [embedded(root, split, tf, num_images=e.num_images, image_size=e.image_size, seed=e.seed)
            for split, tf in ((data.train_split, train_tf), (data.val_split, val_tf))]
    return sets[0], sets[1]


def _collate(batch: Sequence) -> Dict[str, List]:
    images, targets = collate_detection(batch)
    return {"images": images, "targets": targets}


def _forward(model: nn.Module, batch: Dict[str, List]) -> Dict[str, torch.Tensor]:
    return model(batch["images"], batch["targets"])


def _loss(losses: Dict[str, torch.Tensor], batch: Any) -> torch.Tensor:
    return sum(losses.values())


def _evaluate(cfg: Recipe):
    def evaluate(accelerator: Accelerator, model: nn.Module, dataset: CocoInstances) -> Dict[str, Any]:
        """COCO box and mask AP over the validation images, shared among the processes."""
        count = len(dataset) if cfg.eval.max_images is None else min(len(dataset), cfg.eval.max_images)
        bbox, segm = [], []
        for index in range(accelerator.process_index, count, accelerator.num_processes):
            image, target = dataset[index]
            with torch.no_grad():
                output = model([image.to(accelerator.device)])[0]
            b, s = to_coco_results(output, target["image_id"])
            bbox += b
            segm += s
        bbox, segm = gather_object(bbox), gather_object(segm)
        metrics = coco_metrics(dataset.coco, bbox, segm, [dataset.ids[i] for i in range(count)])
        return {"task": "instance-segmentation", "dataset": cfg.data.name, **metrics, "eval_images": count,
                "eval_detections": len(bbox)}
    return evaluate


def overlay_detections(image: torch.Tensor, output: Dict[str, torch.Tensor], target: Dict[str, Any],
                       names: Dict[int, str], score_thresh: float = 0.5) -> Image.Image:
    """image + predicted masks and boxes (score >= `score_thresh`) | image + ground truth, side by side."""
    pixels = to_dtype(image.cpu(), torch.uint8, scale=True)
    keep = output["scores"] >= score_thresh

    def panel(boxes, labels, masks, scores=None) -> torch.Tensor:
        text = [f"{names.get(int(c), c)}" + (f" {s:.2f}" if scores is not None else "")
                for c, s in zip(labels.tolist(), scores.tolist() if scores is not None else labels.tolist())]
        drawn = draw_segmentation_masks(pixels, masks.bool(), alpha=0.45) if len(masks) else pixels
        return draw_bounding_boxes(drawn, boxes, text, colors="yellow") if len(boxes) else drawn

    predicted = panel(output["boxes"][keep].cpu(), output["labels"][keep].cpu(),
                      output["masks"][keep, 0].cpu() > 0.5, output["scores"][keep].cpu())
    truth = panel(torch.as_tensor(target["boxes"]), target["labels"], torch.as_tensor(target["masks"]))
    return to_pil_image(torch.cat([predicted, truth], dim=2))


def _write_outputs(cfg: Recipe):
    def write_outputs(model: nn.Module, dataset: CocoInstances, output_dir: Path, metrics: Dict[str, Any]) -> None:
        """The detector folder (safetensors + config) and prediction | ground-truth PNGs."""
        save_detector(model, output_dir, dataset.label_names)
        folder = output_dir / "overlays"
        folder.mkdir(exist_ok=True)
        for index in range(min(cfg.overlays, len(dataset))):
            image, target = dataset[index]
            with torch.no_grad():
                output = model([image.to(next(model.parameters()).device)])[0]
            overlay_detections(image, output, target, dataset.label_names).save(folder / f"{index:04d}.png")
    return write_outputs


def build_detection_task(cfg: Recipe) -> Task:
    """Model, data, losses (torchvision's, summed) and COCO evaluation of a detection recipe."""
    train_set, val_set = detection_datasets(cfg)
    model = create_detector(cfg.model.name, num_classes=train_set.num_classes,
                            pretrained_backbone=cfg.model.pretrained_backbone, **cfg.model.args)
    return Task(model, train_set, val_set, _loss, _evaluate(cfg), _write_outputs(cfg), metric="segm_AP",
                forward=_forward, collate_fn=_collate,
                save_model=lambda m, folder: save_detector(m, folder, val_set.label_names))
