"""transformers configuration of the sr-models detectors: the registered detector name and its arguments."""
from __future__ import annotations

from typing import Any

from transformers import PreTrainedConfig


class SRDetectorConfig(PreTrainedConfig):
    """`detector` names an entry of `sr_models.list_detectors()`, `detector_args` its keyword arguments (JSON values,
    `num_classes` and the backbone's resolved freezing included);
    `id2label` maps the label ids (COCO category ids) to names, and the background 0 needs no entry."""

    model_type = "sr_detector"
    detector: str = "maskrcnn_resnet50_fpn"
    detector_args: dict[str, Any] | None = None
