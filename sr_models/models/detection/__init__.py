"""Detectors (Table IX): torchvision detection models on timm backbones, in their own registry (not timm's)."""
from . import mask_rcnn, panoptic_fpn  # noqa: F401  (register the Mask R-CNN and Panoptic FPN entrypoints)
from ._registry import create_detector, is_detector, list_detectors, register_detector
from .backbone import TimmFPN, add_non_local, add_squeeze_reasoning, timm_fpn_backbone
from .cascade import CascadeMaskRCNN, CascadeRoIHeads

__all__ = ["create_detector", "list_detectors", "is_detector", "register_detector", "TimmFPN", "timm_fpn_backbone",
           "add_squeeze_reasoning", "add_non_local", "CascadeMaskRCNN", "CascadeRoIHeads"]
