"""transformers' image pipelines for sr-models folders: the training decoding and the fast inference default.

For a model with an sr-models image processor, the input is decoded as in training (`decode_pipeline_input`: 16-bit
images scaled, alpha dropped) instead of by `load_image`'s `convert("RGB")`. Segmenters and classifiers run as
`sr_models.inference` runs them: a channels_last input, bf16 autocast where the CPU multiplies bf16 natively
(`bf16=False` in the call forces float32), float32 outputs. Every other model is run by transformers' own code:
these classes replace the three tasks' implementations (`register_pipelines`) without changing them for it.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

import torch
from transformers.pipelines import PIPELINE_REGISTRY
from transformers.pipelines.image_classification import ImageClassificationPipeline
from transformers.pipelines.image_segmentation import ImageSegmentationPipeline
from transformers.pipelines.object_detection import ObjectDetectionPipeline

from ..inference import fast_autocast
from .image_decoding import TrainingDecoding, decode_pipeline_input
from .modeling_sr import SRPreTrainedModel

__all__ = ["SRImageClassificationPipeline", "SRImageSegmentationPipeline", "SRObjectDetectionPipeline",
           "register_pipelines"]


class _SRPipeline:
    """Mixin before a transformers image pipeline in the bases."""

    def _sanitize_parameters(self, bf16: Optional[bool] = None, **kwargs):
        preprocess, forward, postprocess = super()._sanitize_parameters(**kwargs)
        if bf16 is not None:
            if not isinstance(self.model, SRPreTrainedModel):
                raise ValueError(f"bf16={bf16!r} applies to the sr-models segmenters and classifiers, "
                                 f"not to {type(self.model).__name__} (pipeline call)")
            forward = {**forward, "bf16": bf16}
        return preprocess, forward, postprocess

    def preprocess(self, image: Any, *args, **kwargs):
        if isinstance(self.image_processor, TrainingDecoding):
            image = decode_pipeline_input(image, kwargs.get("timeout"))
        return super().preprocess(image, *args, **kwargs)

    def _forward(self, model_inputs: Dict[str, Any], bf16: Optional[bool] = None):
        if not isinstance(self.model, SRPreTrainedModel):
            return super()._forward(model_inputs)
        pixels = model_inputs["pixel_values"].contiguous(memory_format=torch.channels_last)
        model_inputs["pixel_values"] = pixels
        with fast_autocast(pixels, bf16):
            outputs = super()._forward(model_inputs)
        for key, value in list(outputs.items()):
            if isinstance(value, torch.Tensor) and value.is_floating_point():
                outputs[key] = value.float()
        return outputs


class SRImageSegmentationPipeline(_SRPipeline, ImageSegmentationPipeline):
    pass


class SRObjectDetectionPipeline(_SRPipeline, ObjectDetectionPipeline):
    pass


class SRImageClassificationPipeline(_SRPipeline, ImageClassificationPipeline):
    pass


_TASKS = {
    "image-segmentation": SRImageSegmentationPipeline,
    "object-detection": SRObjectDetectionPipeline,
    "image-classification": SRImageClassificationPipeline,
}


def register_pipelines() -> None:
    """Make `pipeline(task)` build these classes for the three image tasks (defaults and model classes kept)."""
    for task, pipeline_class in _TASKS.items():
        PIPELINE_REGISTRY.supported_tasks[task] = {**PIPELINE_REGISTRY.supported_tasks[task], "impl": pipeline_class}
