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
        """torchvision's `num_classes`: the largest thing label plus the background. A panoptic model's `id2label`
        also names its `num_stuff_classes` stuff categories, after the things."""
        stuff = (self.detector_args or {}).get("num_stuff_classes", 0)
        return max((int(k) for k in self.id2label), default=0) + 1 - stuff
