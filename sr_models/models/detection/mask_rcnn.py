"""Table IX(a) detectors: torchvision's Mask R-CNN / Cascade Mask R-CNN on a timm ResNet + FPN, with SR or NL.

Each entrypoint is a line over `_create_mask_rcnn(backbone, context, cascade)`; extra keyword arguments go to
torchvision's `MaskRCNN` (`min_size`, `max_size`, `box_detections_per_img`, ...), except `trainable_layers`,
`context_args`, `backbone_args` and `frozen_norm`, which go to `timm_fpn_backbone`.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

from torchvision.models.detection import MaskRCNN

from ._registry import register_detector
from .backbone import timm_fpn_backbone
from .cascade import CascadeMaskRCNN

__all__ = []


def _create_mask_rcnn(
        backbone: str,
        num_classes: int,
        pretrained_backbone: bool,
        context: Optional[str] = None,
        cascade: bool = False,
        trainable_layers: Optional[int] = None,
        context_args: Optional[Dict[str, Any]] = None,
        backbone_args: Optional[Dict[str, Any]] = None,
        frozen_norm: Optional[bool] = None,
        **kwargs,
) -> MaskRCNN:
    fpn = timm_fpn_backbone(backbone, pretrained_backbone, trainable_layers, context, context_args,
                            frozen_norm=frozen_norm, **(backbone_args or {}))
    return (CascadeMaskRCNN if cascade else MaskRCNN)(fpn, num_classes, **kwargs)


@register_detector
def maskrcnn_resnet50_fpn(num_classes: int = 91, pretrained_backbone: bool = False, **kwargs) -> MaskRCNN:
    return _create_mask_rcnn("resnet50", num_classes, pretrained_backbone, **kwargs)


@register_detector
def maskrcnn_sr_resnet50_fpn(num_classes: int = 91, pretrained_backbone: bool = False, **kwargs) -> MaskRCNN:
    return _create_mask_rcnn("resnet50", num_classes, pretrained_backbone, context="sr", **kwargs)


@register_detector
def maskrcnn_nl_resnet50_fpn(num_classes: int = 91, pretrained_backbone: bool = False, **kwargs) -> MaskRCNN:
    return _create_mask_rcnn("resnet50", num_classes, pretrained_backbone, context="nl", **kwargs)


@register_detector
def maskrcnn_resnet101_fpn(num_classes: int = 91, pretrained_backbone: bool = False, **kwargs) -> MaskRCNN:
    return _create_mask_rcnn("resnet101", num_classes, pretrained_backbone, **kwargs)


@register_detector
def maskrcnn_sr_resnet101_fpn(num_classes: int = 91, pretrained_backbone: bool = False, **kwargs) -> MaskRCNN:
    return _create_mask_rcnn("resnet101", num_classes, pretrained_backbone, context="sr", **kwargs)


@register_detector
def maskrcnn_nl_resnet101_fpn(num_classes: int = 91, pretrained_backbone: bool = False, **kwargs) -> MaskRCNN:
    return _create_mask_rcnn("resnet101", num_classes, pretrained_backbone, context="nl", **kwargs)


@register_detector
def maskrcnn_resnext101_32x4d_fpn(num_classes: int = 91, pretrained_backbone: bool = False, **kwargs) -> MaskRCNN:
    return _create_mask_rcnn("resnext101_32x4d", num_classes, pretrained_backbone, **kwargs)


@register_detector
def maskrcnn_sr_resnext101_32x4d_fpn(num_classes: int = 91, pretrained_backbone: bool = False, **kwargs) -> MaskRCNN:
    return _create_mask_rcnn("resnext101_32x4d", num_classes, pretrained_backbone, context="sr", **kwargs)


@register_detector
def cascade_maskrcnn_resnext101_32x4d_fpn(
        num_classes: int = 91, pretrained_backbone: bool = False, **kwargs) -> CascadeMaskRCNN:
    return _create_mask_rcnn("resnext101_32x4d", num_classes, pretrained_backbone, cascade=True, **kwargs)


@register_detector
def cascade_maskrcnn_sr_resnext101_32x4d_fpn(
        num_classes: int = 91, pretrained_backbone: bool = False, **kwargs) -> CascadeMaskRCNN:
    return _create_mask_rcnn("resnext101_32x4d", num_classes, pretrained_backbone, context="sr", cascade=True,
                             **kwargs)


# Not in the paper: CPU-sized variants (ResNet-14-T, one bottleneck per stage) for the embedded set, demo and tests
@register_detector
def maskrcnn_resnet14t_fpn(num_classes: int = 91, pretrained_backbone: bool = False, **kwargs) -> MaskRCNN:
    return _create_mask_rcnn("resnet14t", num_classes, pretrained_backbone, **kwargs)


@register_detector
def maskrcnn_sr_resnet14t_fpn(num_classes: int = 91, pretrained_backbone: bool = False, **kwargs) -> MaskRCNN:
    return _create_mask_rcnn("resnet14t", num_classes, pretrained_backbone, context="sr", **kwargs)
