"""The detectors' transformers front door: registration with the Auto classes and one saved folder.

A detector folder (`save_detector`) holds `config.json` (SRDetectorConfig), `model.safetensors` and
`preprocessor_config.json`: `AutoModelForObjectDetection` / `AutoModelForInstanceSegmentation`,
`pipeline("object-detection")`, `pipeline("image-segmentation", subtask="instance")` and `load_detector` all read it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional

from torch import nn
from transformers import (
    AutoConfig, AutoImageProcessor, AutoModelForImageSegmentation, AutoModelForInstanceSegmentation,
    AutoModelForObjectDetection,
)
from transformers.models.auto.modeling_auto import (
    MODEL_FOR_INSTANCE_SEGMENTATION_MAPPING_NAMES, MODEL_FOR_OBJECT_DETECTION_MAPPING_NAMES,
)

from .configuration_detector import SRDetectorConfig
from .image_processing_detector import SRDetectorImageProcessor
from .modeling_detector import SRDetectorForObjectDetection, detector_config

__all__ = ["save_detector", "load_detector", "SRDetectorConfig", "SRDetectorForObjectDetection",
           "SRDetectorImageProcessor"]

AutoConfig.register(SRDetectorConfig.model_type, SRDetectorConfig, exist_ok=True)
AutoModelForObjectDetection.register(SRDetectorConfig, SRDetectorForObjectDetection, exist_ok=True)
AutoModelForInstanceSegmentation.register(SRDetectorConfig, SRDetectorForObjectDetection, exist_ok=True)
# pipeline("image-segmentation") loads through AutoModelForImageSegmentation (as DETR's panoptic models)
AutoModelForImageSegmentation.register(SRDetectorConfig, SRDetectorForObjectDetection, exist_ok=True)
AutoImageProcessor.register(SRDetectorConfig, image_processor_classes={"torchvision": SRDetectorImageProcessor},
                            exist_ok=True)
# the pipelines check the model class against these name tables, not the registered extras
for _names in (MODEL_FOR_OBJECT_DETECTION_MAPPING_NAMES, MODEL_FOR_INSTANCE_SEGMENTATION_MAPPING_NAMES):
    _names.setdefault(SRDetectorConfig.model_type, SRDetectorForObjectDetection.__name__)


def save_detector(model: nn.Module, folder: str | Path, id2label: Optional[Dict[int, str]] = None) -> Path:
    """Write `model` (built by `sr_models.create_detector`) as a transformers folder; `id2label` names its labels."""
    folder = Path(folder)
    SRDetectorForObjectDetection(detector_config(model, id2label or {}), detector=model).save_pretrained(folder)
    SRDetectorImageProcessor().save_pretrained(folder)
    return folder


def load_detector(folder: str | Path) -> nn.Module:
    """The torchvision detector saved in `folder`, in eval mode, with `id2label` (int keys) as an attribute."""
    wrapper = SRDetectorForObjectDetection.from_pretrained(folder)
    detector = wrapper.detector.eval()
    detector.id2label = {int(k): v for k, v in wrapper.config.id2label.items()}
    return detector
