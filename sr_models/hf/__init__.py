"""transformers front door: configs, `PreTrainedModel` adapters, image processors, registered with the Auto classes.

Imported (and so registered) when transformers is imported after `import sr_models` (`sr_models._post_import`), or
directly; `import sr_models` alone does not import transformers.
"""
from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModel,
    AutoModelForImageClassification,
    AutoModelForSemanticSegmentation,
)

from transformers.models.auto.modeling_auto import MODEL_FOR_SEMANTIC_SEGMENTATION_MAPPING_NAMES

from .configuration_sr import SRNetConfig, SRResNetConfig
from .image_processing_sr import SRNetImageProcessor, SRResNetImageProcessor, image_processor_from_pretrained_cfg
from .modeling_sr import (
    SRNetForSemanticSegmentation,
    SRPreTrainedModel,
    SRResNetForImageClassification,
    SRResNetModel,
)
from .saving import config_from_timm_model, is_segmenter, save_pretrained

AutoConfig.register(SRResNetConfig.model_type, SRResNetConfig, exist_ok=True)
AutoConfig.register(SRNetConfig.model_type, SRNetConfig, exist_ok=True)
AutoModel.register(SRResNetConfig, SRResNetModel, exist_ok=True)
AutoModelForImageClassification.register(SRResNetConfig, SRResNetForImageClassification, exist_ok=True)
AutoModelForSemanticSegmentation.register(SRNetConfig, SRNetForSemanticSegmentation, exist_ok=True)
AutoImageProcessor.register(SRResNetConfig, image_processor_classes={"torchvision": SRResNetImageProcessor},
                            exist_ok=True)
AutoImageProcessor.register(SRNetConfig, image_processor_classes={"torchvision": SRNetImageProcessor}, exist_ok=True)
# pipeline("image-segmentation") checks the model class against this name table, not the registered extras
MODEL_FOR_SEMANTIC_SEGMENTATION_MAPPING_NAMES.setdefault(SRNetConfig.model_type, SRNetForSemanticSegmentation.__name__)

__all__ = [
    "SRNetConfig", "SRResNetConfig",
    "SRNetImageProcessor", "SRResNetImageProcessor", "image_processor_from_pretrained_cfg",
    "SRPreTrainedModel", "SRResNetModel", "SRResNetForImageClassification", "SRNetForSemanticSegmentation",
    "save_pretrained", "config_from_timm_model", "is_segmenter",
]
from . import detection  # noqa: E402,F401  (registers the detectors with the Auto classes and pipelines)
from .pipelines import register_pipelines  # noqa: E402

register_pipelines()  # the image pipelines decode and run sr-models folders as training and inference do
