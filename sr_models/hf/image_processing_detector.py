"""Image processor of the sr-models detectors, and the post-processing transformers' pipelines call."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from transformers.image_processing_backends import TorchvisionBackend

from .image_decoding import TrainingDecoding

__all__ = ["SRDetectorImageProcessor"]


class SRDetectorImageProcessor(TrainingDecoding, TorchvisionBackend):
    """RGB decoded as in training (`sr_models.data.images`), rescaled to [0, 1], nothing else: the detector
    normalises and resizes inside (torchvision's `GeneralizedRCNNTransform`) and returns boxes and masks in the
    coordinates of the image it was given."""

    do_rescale = True
    do_normalize = False
    do_resize = False
    do_center_crop = False
    do_convert_rgb = True

    @staticmethod
    def _kept(outputs: Any, threshold: float) -> List[Dict[str, torch.Tensor]]:
        """The instances above `threshold` (a panoptic output's `sem_seg`, `panoptic_seg`, ... are not per instance)."""
        return [{k: d[k][d["scores"] > threshold] for k in ("boxes", "labels", "scores", "masks") if k in d}
                for d in outputs["detections"]]

    @staticmethod
    def _scale(size: Sequence[int], target: Optional[Sequence[int]]) -> tuple:
        return (1.0, 1.0) if target is None else (float(target[1]) / size[1], float(target[0]) / size[0])

    def post_process_object_detection(self, outputs: Any, threshold: float = 0.5,
                                      target_sizes: Optional[Sequence[Sequence[int]]] = None) -> List[Dict]:
        """Per image `scores`, `labels`, `boxes` (XYXY) above `threshold`, boxes scaled to `target_sizes`."""
        results = []
        for i, d in enumerate(self._kept(outputs, threshold)):
            boxes = d["boxes"]
            if target_sizes is not None and "masks" in d and len(d["masks"]):
                sx, sy = self._scale(d["masks"].shape[-2:], target_sizes[i])
                boxes = boxes * boxes.new_tensor([sx, sy, sx, sy])
            results.append({"scores": d["scores"], "labels": d["labels"], "boxes": boxes})
        return results

    def post_process_instance_segmentation(self, outputs: Any, threshold: float = 0.5, mask_threshold: float = 0.5,
                                           overlap_mask_area_threshold: float = 0.5,
                                           target_sizes: Optional[Sequence[Sequence[int]]] = None,
                                           **kwargs) -> List[Dict]:
        """Per image a `segmentation` map (H, W) of segment ids (-1: none; higher scores painted last win) and
        `segments_info` (`id`, `label_id`, `score`); instances whose visible part keeps less than
        `overlap_mask_area_threshold` of their mask are dropped."""
        results = []
        for i, d in enumerate(self._kept(outputs, threshold)):
            masks = d["masks"][:, 0]
            if target_sizes is not None and len(masks):
                masks = F.interpolate(masks[:, None], size=tuple(int(s) for s in target_sizes[i]), mode="bilinear",
                                      align_corners=False)[:, 0]
            size = tuple(int(s) for s in target_sizes[i]) if target_sizes is not None else tuple(masks.shape[-2:])
            segmentation = torch.full(size, -1, dtype=torch.long)
            info = []
            for j in torch.argsort(d["scores"]).tolist():  # ascending: the best instance is painted last
                binary = masks[j] > mask_threshold
                segmentation[binary] = j
            for j in torch.argsort(d["scores"], descending=True).tolist():
                area = int((masks[j] > mask_threshold).sum())
                visible = int((segmentation == j).sum())
                if area and visible / area >= overlap_mask_area_threshold:
                    info.append({"id": j, "label_id": int(d["labels"][j]), "score": float(d["scores"][j])})
                else:
                    segmentation[segmentation == j] = -1
            results.append({"segmentation": segmentation, "segments_info": info})
        return results

    def post_process_panoptic_segmentation(self, outputs: Any, threshold: float = 0.5, mask_threshold: float = 0.5,
                                           overlap_mask_area_threshold: float = 0.5,
                                           target_sizes: Optional[Sequence[Sequence[int]]] = None,
                                           **kwargs) -> List[Dict]:
        """Per image the Panoptic FPN fusion (`panoptic_seg`, 0: no segment) resized (nearest) to `target_sizes`,
        with `segments_info` (`id`, `label_id`: things 1..T then stuff, `score`, `was_fused`); thing segments under
        `threshold` are left out. A detector without a semantic branch answers with its instances alone."""
        results = []
        for i, d in enumerate(outputs["detections"]):
            if "panoptic_seg" not in d:
                one = {"detections": [d]}
                results += self.post_process_instance_segmentation(
                    one, threshold, mask_threshold, overlap_mask_area_threshold,
                    None if target_sizes is None else [target_sizes[i]])
                continue
            segmentation = d["panoptic_seg"].long()
            if target_sizes is not None:
                size = tuple(int(s) for s in target_sizes[i])
                segmentation = F.interpolate(segmentation[None, None].float(), size=size, mode="nearest")[0, 0].long()
            info = []
            for segment in d["segments_info"]:
                if segment["isthing"] and segment["score"] < threshold:
                    segmentation[segmentation == segment["id"]] = 0
                    continue
                info.append({"id": segment["id"], "label_id": segment["category_id"], "score": segment["score"],
                             "was_fused": False})
            results.append({"segmentation": segmentation, "segments_info": info})
        return results
