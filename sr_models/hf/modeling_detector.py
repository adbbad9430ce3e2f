"""transformers adapter over the sr-models detectors (torchvision Mask R-CNN on timm backbones): one implementation,
two front doors. `pixel_values` are (B, 3, H, W) in [0, 1]; the detector normalises and resizes them itself."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from ..models.detection import create_detector
from .configuration_detector import SRDetectorConfig

__all__ = ["SRDetectorForObjectDetection", "SRDetectionOutput", "detector_config"]


@dataclass
class SRDetectionOutput(ModelOutput):
    """`loss` (sum of the detector's losses) and `loss_dict` when labels are given; otherwise `detections`, per image
    torchvision's dict of `boxes` (XYXY, input pixels), `labels`, `scores`, `masks` (N, 1, H, W probabilities)."""
    loss: Optional[torch.Tensor] = None
    loss_dict: Optional[Dict[str, torch.Tensor]] = None
    detections: Optional[List[Dict[str, torch.Tensor]]] = None


def detector_config(model: nn.Module, id2label: Dict[int, str]) -> SRDetectorConfig:
    """The config that rebuilds `model` (made by `sr_models.create_detector`)."""
    cfg = dict(getattr(model, "detector_cfg", None) or {})
    if not cfg:
        raise ValueError(f"{type(model).__name__} was not built by sr_models.create_detector: no detector_cfg")
    name, num_classes = cfg.pop("name"), cfg["num_classes"]
    stuff = cfg.get("num_stuff_classes", 0)  # a panoptic model names its stuff categories after the things
    labels = {int(k): v for k, v in id2label.items()} or {i: f"LABEL_{i}" for i in range(1, num_classes + stuff)}
    if max(labels) + 1 != num_classes + stuff:
        raise ValueError(f"id2label's largest id ({max(labels)}) does not match the detector's "
                         f"num_classes={num_classes} (background included)"
                         + (f" plus its {stuff} stuff classes" if stuff else ""))
    return SRDetectorConfig(detector=name, detector_args=cfg, id2label=labels,
                            label2id={v: k for k, v in labels.items()})


class SRDetectorForObjectDetection(PreTrainedModel):
    config_class = SRDetectorConfig
    base_model_prefix = "detector"
    main_input_name = "pixel_values"

    def __init__(self, config: SRDetectorConfig, detector: Optional[nn.Module] = None):
        super().__init__(config)
        self.detector = detector if detector is not None else create_detector(config.detector,
                                                                              **(config.detector_args or {}))
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        """Keep timm's and torchvision's own initialisation (transformers' default would reset it)."""

    def forward(self, pixel_values: torch.Tensor, labels: Optional[List[Dict[str, Any]]] = None,
                **kwargs) -> SRDetectionOutput:
        images = list(pixel_values)
        if labels is not None:
            losses = self.detector(images, labels)
            return SRDetectionOutput(loss=sum(losses.values()), loss_dict=losses)
        return SRDetectionOutput(detections=self.detector(images))
