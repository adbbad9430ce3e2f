"""transformers configuration of the sr-models detectors: the registered detector name and its arguments."""
from __future__ import annotations

from typing import Any

from transformers import PreTrainedConfig


class SRDetectorConfig(PreTrainedConfig):
    """`detector` names an entry of `sr_models.list_detectors()`, `detector_args` its keyword arguments (JSON values);
    `id2label` maps the label ids (COCO category ids) to names, and the background 0 needs no entry."""

    model_type = "sr_detector"
    detector: str = "maskrcnn_resnet50_fpn"
    detector_args: dict[str, Any] | None = None

    @property
    def num_detector_classes(self) -> int:
        """torchvision's `num_classes`: the largest label id plus the background."""
        return max((int(k) for k in self.id2label), default=0) + 1
