"""Panoptic FPN (Kirillov et al., "Panoptic Feature Pyramid Networks", CVPR 2019): Table IX(b).

    images -> Mask R-CNN (backbone + FPN, RPN, RoI heads)  ─> instances (things)
                          └ FPN levels P2..P5 ─> SemanticFPNHead ─> stuff classes + one "thing" class
    instances + semantic map ─> `panoptic_fusion` ─> panoptic_seg (H x W segment ids) + segments_info

The detector is a torchvision `MaskRCNN` built like Table IX(a)'s (`mask_rcnn._create_mask_rcnn`), so "+SR" and
"+NL" are the detectors' backbones; this module only adds the semantic branch and the fusion, as the paper's
baseline does. Entrypoints `panoptic_fpn_{,sr_,nl_}resnet{50,101}` are registered with `create_detector`;
`num_classes` counts the thing classes plus the background (81 for COCO), `num_stuff_classes` the stuff (53).
"""
from __future__ import annotations

from functools import partial
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from timm.layers import ConvNormAct, GroupNormAct
from torch import nn
from torchvision.models.detection import MaskRCNN

from ...constants import IGNORE_INDEX
from ._registry import register_detector
from .mask_rcnn import _LIGHT, _create_mask_rcnn

__all__ = ["SemanticFPNHead", "PanopticFPN", "panoptic_fusion"]


class SemanticFPNHead(nn.Module):
    """The semantic branch of Panoptic FPN (Fig. 3 of Kirillov et al.).

    Each pyramid level P_i (stride 2^i, i = 2..5) goes through max(i - 2, 1) stages of conv3x3-GroupNorm-ReLU, each
    but P2's followed by a 2x bilinear upsampling, so all reach 1/4 scale; the four maps are summed, and a 1x1 conv
    predicts `num_classes` (the stuff classes plus one class for all things) at 1/4 scale.
    """

    def __init__(self, in_channels: int, num_classes: int, channels: int = 128, num_levels: int = 4,
                 num_groups: int = 32):
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes={num_classes} must count the stuff classes plus the thing class (>= 2)")
        norm = dict(norm_layer=partial(GroupNormAct, num_groups=num_groups))
        self.num_levels = num_levels
        self.scale_heads = nn.ModuleList()
        for level in range(num_levels):
            stages = []
            for k in range(max(level, 1)):
                stages.append(ConvNormAct(in_channels if k == 0 else channels, channels, 3, **norm))
                if level > 0:
                    stages.append(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))
            self.scale_heads.append(nn.Sequential(*stages))
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        """`features`: P2..P5 (strides 4..32); returns logits at the stride of P2."""
        if len(features) < self.num_levels:
            raise ValueError(f"SemanticFPNHead needs {self.num_levels} pyramid levels, got {len(features)}")
        size = features[0].shape[-2:]
        out = self.scale_heads[0](features[0])
        for head, feature in zip(self.scale_heads[1:], features[1:self.num_levels]):
            # odd input sizes leave the coarse levels one pixel short after the 2x steps
            out = out + F.interpolate(head(feature), size=size, mode="bilinear", align_corners=False)
        return self.classifier(out)


@torch.no_grad()
def panoptic_fusion(
        instances: Dict[str, torch.Tensor],
        semantic: torch.Tensor,
        num_thing_classes: int,
        num_stuff_classes: int,
        overlap_threshold: float = 0.5,
        stuff_area_threshold: int = 4096,
        score_threshold: float = 0.5,
        mask_threshold: float = 0.5,
) -> Tuple[torch.Tensor, List[Dict]]:
    """The heuristic fusion of Panoptic FPN (Sec. 3 of Kirillov et al.; detectron2's and mmdetection's defaults).

    Instances are pasted by decreasing score (those under `score_threshold` dropped); an instance whose mask is
    covered by earlier ones for more than `overlap_threshold` of its area is dropped, otherwise it takes the pixels
    still free. Stuff regions of the semantic map (labels 0..S-1; label S is "thing") then fill the free pixels,
    and those smaller than `stuff_area_threshold` pixels are dropped.

    Category ids: things 1..T (the detector's labels), stuff T+1..T+S, so one `id2label` names the instance and
    the panoptic outputs. Returns the (H, W) segment-id map (0 = no segment) and one dict per segment: id,
    category_id, isthing, score, area.
    """
    panoptic = torch.zeros_like(semantic, dtype=torch.int32)
    segments: List[Dict] = []
    order = torch.argsort(instances["scores"], descending=True)
    for i in order.tolist():
        score = float(instances["scores"][i])
        if score < score_threshold:
            break
        mask = instances["masks"][i, 0] >= mask_threshold
        area = int(mask.sum())
        if area == 0:
            continue
        taken = mask & (panoptic > 0)
        if int(taken.sum()) / area > overlap_threshold:
            continue
        mask &= panoptic == 0
        segment_id = len(segments) + 1
        panoptic[mask] = segment_id
        segments.append(dict(id=segment_id, category_id=int(instances["labels"][i]), isthing=True,
                             score=score, area=int(mask.sum())))
    for label in torch.unique(semantic).tolist():
        if label >= num_stuff_classes:  # the "thing" class: things come from the instances only
            continue
        mask = (semantic == label) & (panoptic == 0)
        area = int(mask.sum())
        if area < stuff_area_threshold:
            continue
        segment_id = len(segments) + 1
        panoptic[mask] = segment_id
        segments.append(dict(id=segment_id, category_id=num_thing_classes + 1 + label, isthing=False,
                             score=1.0, area=area))
    return panoptic, segments


class PanopticFPN(nn.Module):
    """Mask R-CNN + a semantic FPN branch + `panoptic_fusion`.

    Same contract as torchvision's detectors: a list of CHW float images in; in training, targets with the Mask
    R-CNN keys plus `sem_seg` (H x W: stuff labels 0..S-1, S for thing pixels, `ignore_index` unlabelled) and a
    dict of losses out (`loss_sem_seg` weighted by `semantic_loss_weight`, 0.5 as in the COCO setting of Panoptic
    FPN); in eval, one dict per image with the instance outputs plus `sem_seg` (logits, C x H x W), `panoptic_seg`
    (H x W segment ids) and `segments_info`.
    """

    def __init__(
            self,
            detector: MaskRCNN,
            num_stuff_classes: int,
            semantic_channels: int = 128,
            semantic_loss_weight: float = 0.5,
            overlap_threshold: float = 0.5,
            stuff_area_threshold: int = 4096,
            score_threshold: float = 0.5,
            ignore_index: int = IGNORE_INDEX,
    ):
        super().__init__()
        if num_stuff_classes < 1:
            raise ValueError(f"num_stuff_classes={num_stuff_classes} must be at least 1")
        for name, value in (("overlap_threshold", overlap_threshold), ("score_threshold", score_threshold)):
            if not 0 <= value <= 1:
                raise ValueError(f"{name}={value} must be in [0, 1]")
        if stuff_area_threshold < 0 or semantic_loss_weight < 0:
            raise ValueError(f"stuff_area_threshold={stuff_area_threshold} and semantic_loss_weight="
                             f"{semantic_loss_weight} must be >= 0")
        self.detector = detector
        self.num_thing_classes = detector.roi_heads.box_predictor.cls_score.out_features - 1
        self.num_stuff_classes = num_stuff_classes
        self.semantic_head = SemanticFPNHead(detector.backbone.out_channels, num_stuff_classes + 1, semantic_channels)
        self.semantic_loss_weight = semantic_loss_weight
        self.fusion = dict(overlap_threshold=overlap_threshold, stuff_area_threshold=stuff_area_threshold,
                           score_threshold=score_threshold)
        self.ignore_index = ignore_index

    @property
    def backbone(self) -> nn.Module:
        """Body + FPN, as torchvision's detectors expose it."""
        return self.detector.backbone

    @property
    def transform(self) -> nn.Module:
        """The detector's resizing and normalisation (`GeneralizedRCNNTransform`), which the semantic branch shares."""
        return self.detector.transform

    def _semantic_targets(self, targets: List[Dict[str, torch.Tensor]], image_sizes: List[Tuple[int, int]],
                          padded: torch.Size) -> torch.Tensor:
        """Each `sem_seg` resized (nearest) like its image by the detector's transform, padded with ignore."""
        out = torch.full((len(targets), *padded), self.ignore_index, dtype=torch.long,
                         device=targets[0]["sem_seg"].device)
        for i, (target, (h, w)) in enumerate(zip(targets, image_sizes)):
            sem = target["sem_seg"][None, None].float()
            out[i, :h, :w] = F.interpolate(sem, size=(h, w), mode="nearest")[0, 0].long()
        return out

    def forward(self, images: List[torch.Tensor], targets: Optional[List[Dict[str, torch.Tensor]]] = None):
        det = self.detector
        if self.training and targets is None:
            raise ValueError("PanopticFPN in training mode needs targets (boxes, labels, masks, sem_seg)")
        original_sizes = [tuple(image.shape[-2:]) for image in images]
        image_list, targets = det.transform(images, targets)
        features = det.backbone(image_list.tensors)
        proposals, proposal_losses = det.rpn(image_list, features, targets)
        detections, detector_losses = det.roi_heads(features, proposals, image_list.image_sizes, targets)
        levels = list(features.values())
        semantic = self.semantic_head(levels)
        semantic = F.interpolate(semantic, size=image_list.tensors.shape[-2:], mode="bilinear", align_corners=False)
        if self.training:
            sem_targets = self._semantic_targets(targets, image_list.image_sizes, image_list.tensors.shape[-2:])
            loss = F.cross_entropy(semantic, sem_targets, ignore_index=self.ignore_index)
            return {**proposal_losses, **detector_losses, "loss_sem_seg": self.semantic_loss_weight * loss}
        detections = det.transform.postprocess(detections, image_list.image_sizes, original_sizes)
        for i, (result, (h, w), size) in enumerate(zip(detections, image_list.image_sizes, original_sizes)):
            logits = F.interpolate(semantic[i:i + 1, :, :h, :w], size=size, mode="bilinear", align_corners=False)[0]
            result["sem_seg"] = logits
            result["panoptic_seg"], result["segments_info"] = panoptic_fusion(
                result, logits.argmax(0), self.num_thing_classes, self.num_stuff_classes, **self.fusion)
        return detections


def _create_panoptic_fpn(
        backbone: str,
        num_classes: int,
        pretrained_backbone: bool,
        num_stuff_classes: int = 53,
        semantic_channels: int = 128,
        semantic_loss_weight: float = 0.5,
        overlap_threshold: float = 0.5,
        stuff_area_threshold: int = 4096,
        score_threshold: float = 0.5,
        **kwargs,
) -> PanopticFPN:
    """Mask R-CNN (`_create_mask_rcnn`: `context`, sizes, head widths) + the semantic branch; COCO's 53 stuff."""
    detector = _create_mask_rcnn(backbone, num_classes, pretrained_backbone, **kwargs)
    return PanopticFPN(detector, num_stuff_classes, semantic_channels, semantic_loss_weight, overlap_threshold,
                       stuff_area_threshold, score_threshold)


@register_detector
def panoptic_fpn_resnet50(num_classes: int = 81, pretrained_backbone: bool = False, **kwargs) -> PanopticFPN:
    return _create_panoptic_fpn("resnet50", num_classes, pretrained_backbone, **kwargs)


@register_detector
def panoptic_fpn_sr_resnet50(num_classes: int = 81, pretrained_backbone: bool = False, **kwargs) -> PanopticFPN:
    return _create_panoptic_fpn("resnet50", num_classes, pretrained_backbone, context="sr", **kwargs)


@register_detector
def panoptic_fpn_nl_resnet50(num_classes: int = 81, pretrained_backbone: bool = False, **kwargs) -> PanopticFPN:
    return _create_panoptic_fpn("resnet50", num_classes, pretrained_backbone, context="nl", **kwargs)


@register_detector
def panoptic_fpn_resnet101(num_classes: int = 81, pretrained_backbone: bool = False, **kwargs) -> PanopticFPN:
    return _create_panoptic_fpn("resnet101", num_classes, pretrained_backbone, **kwargs)


@register_detector
def panoptic_fpn_sr_resnet101(num_classes: int = 81, pretrained_backbone: bool = False, **kwargs) -> PanopticFPN:
    return _create_panoptic_fpn("resnet101", num_classes, pretrained_backbone, context="sr", **kwargs)


@register_detector
def panoptic_fpn_nl_resnet101(num_classes: int = 81, pretrained_backbone: bool = False, **kwargs) -> PanopticFPN:
    return _create_panoptic_fpn("resnet101", num_classes, pretrained_backbone, context="nl", **kwargs)


# Not in the paper: the CPU-sized variants of the embedded set, the demo and tests (see mask_rcnn._LIGHT)
@register_detector
def panoptic_fpn_resnet14t(num_classes: int = 81, pretrained_backbone: bool = False, **kwargs) -> PanopticFPN:
    return _create_panoptic_fpn("resnet14t", num_classes, pretrained_backbone, semantic_channels=64,
                                **{**_LIGHT, **kwargs})


@register_detector
def panoptic_fpn_sr_resnet14t(num_classes: int = 81, pretrained_backbone: bool = False, **kwargs) -> PanopticFPN:
    return _create_panoptic_fpn("resnet14t", num_classes, pretrained_backbone, semantic_channels=64, context="sr",
                                **{**_LIGHT, **kwargs})
