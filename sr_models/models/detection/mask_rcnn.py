"""Table IX(a) detectors: torchvision's Mask R-CNN / Cascade Mask R-CNN on a timm ResNet + FPN, with SR or NL.

Each entrypoint is a line over `_create_mask_rcnn(backbone, context, cascade)`; extra keyword arguments go to
torchvision's `MaskRCNN` (`min_size`, `max_size`, `box_detections_per_img`, ...), except `trainable_layers`,
`context_args`, `backbone_args` and `frozen_norm`, which go to `timm_fpn_backbone`, and `fpn_channels`,
`mask_layers`, `representation_size`, the widths of the FPN and torchvision's mask and box heads (all plain values,
so a detector's arguments can be saved as JSON and rebuild it).
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor

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
        fpn_channels: int = 256,
        mask_layers: Optional[Sequence[int]] = None,
        representation_size: Optional[int] = None,
        **kwargs,
) -> MaskRCNN:
    fpn = timm_fpn_backbone(backbone, pretrained_backbone, trainable_layers, context, context_args,
                            out_channels=fpn_channels, frozen_norm=frozen_norm, **(backbone_args or {}))
    if cascade:
        if mask_layers is not None or representation_size is not None:
            raise ValueError(f"mask_layers={mask_layers}, representation_size={representation_size}: the cascade "
                             f"detectors have mmdetection's fixed heads (4 x 256 mask convolutions, 1024-wide boxes)")
        return CascadeMaskRCNN(fpn, num_classes, **kwargs)
    if mask_layers is not None:  # torchvision's mask head with other widths (its default: 4 x 256)
        kwargs.update(mask_head=MaskRCNNHeads(fpn_channels, list(mask_layers), 1),
                      mask_predictor=MaskRCNNPredictor(mask_layers[-1], mask_layers[-1], num_classes))
    if representation_size is not None:  # torchvision's two-FC box head with another width (its default: 1024)
        kwargs.update(box_head=TwoMLPHead(fpn_channels * 7 * 7, representation_size),
                      box_predictor=FastRCNNPredictor(representation_size, num_classes))
    return MaskRCNN(fpn, num_classes if representation_size is None else None, **kwargs)


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


# Not in the paper: CPU-sized variants for the embedded set, the demo and tests: ResNet-14-T (one bottleneck per
# stage), a 64-channel FPN, a 2 x 64 mask head and a 256-wide box head
_LIGHT = dict(fpn_channels=64, mask_layers=(64, 64), representation_size=256)


@register_detector
def maskrcnn_resnet14t_fpn(num_classes: int = 91, pretrained_backbone: bool = False, **kwargs) -> MaskRCNN:
    return _create_mask_rcnn("resnet14t", num_classes, pretrained_backbone, **{**_LIGHT, **kwargs})


@register_detector
def maskrcnn_sr_resnet14t_fpn(num_classes: int = 91, pretrained_backbone: bool = False, **kwargs) -> MaskRCNN:
    return _create_mask_rcnn("resnet14t", num_classes, pretrained_backbone, context="sr", **{**_LIGHT, **kwargs})
