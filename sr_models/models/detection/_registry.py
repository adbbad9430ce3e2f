"""The detector registry: timm-style entrypoints, kept out of timm's classification registry.

timm's model contract (`num_classes`, `forward_features`, a classifier) does not hold for detectors, so they get
their own small registry: `@register_detector` on a function `name(num_classes=..., pretrained_backbone=False,
**kwargs)`, then `create_detector(name, ...)` and `list_detectors(pattern)`.
"""
from __future__ import annotations

import fnmatch
import inspect
from typing import Callable, Dict, List, Optional

from torch import nn

__all__ = ["register_detector", "create_detector", "list_detectors", "is_detector"]

_DETECTORS: Dict[str, Callable[..., nn.Module]] = {}


def register_detector(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register `fn` under its own name."""
    if fn.__name__ in _DETECTORS:
        raise ValueError(f"detector {fn.__name__!r} is already registered (by {_DETECTORS[fn.__name__].__module__})")
    _DETECTORS[fn.__name__] = fn
    return fn


def list_detectors(pattern: str = "*") -> List[str]:
    """Registered detector names matching the fnmatch `pattern`, in registration order."""
    return [name for name in _DETECTORS if fnmatch.fnmatch(name, pattern)]


def is_detector(name: str) -> bool:
    return name in _DETECTORS


def create_detector(name: str, num_classes: Optional[int] = None, pretrained_backbone: bool = False,
                    **kwargs) -> nn.Module:
    """Build the registered detector `name` (torchvision's detection contract: images in, losses or detections out).

    `num_classes` counts the background (torchvision's convention); without it, the entrypoint's default (91 for
    COCO's category ids with Mask R-CNN, 81 for COCO panoptic's things with Panoptic FPN).
    """
    if name not in _DETECTORS:
        raise ValueError(f"unknown detector {name!r}; sr_models.list_detectors() lists "
                         f"{len(_DETECTORS)} names, e.g. {', '.join(list(_DETECTORS)[:3])}")
    entrypoint = _DETECTORS[name]
    if num_classes is None:
        num_classes = inspect.signature(entrypoint).parameters["num_classes"].default
    model = entrypoint(num_classes=num_classes, pretrained_backbone=pretrained_backbone, **kwargs)
    # what rebuilds it without downloading (sr_models/hf/detection.py): the backbone's resolved freezing, not weights
    model.detector_cfg = dict(name=name, num_classes=num_classes, **{
        **kwargs, "frozen_norm": model.backbone.frozen_norm, "trainable_layers": model.backbone.trainable_layers})
    return model
