"""One folder, two front doors: save a model of timm's registry so that timm and transformers both load it.

`save_pretrained(model, path)` writes `model.safetensors` (timm's state-dict keys), `config.json` (timm's keys and
transformers' keys side by side, see `configuration_sr.py`) and `preprocessor_config.json`.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Union

import safetensors.torch
from timm.models._hub import save_config_for_hf
from torch import nn

from ..models import list_sr_models
from ..models.segmentation import is_segmenter
from .configuration_sr import SRNetConfig, SRResNetConfig
from .image_processing_sr import image_processor_from_pretrained_cfg

__all__ = ["save_pretrained", "config_from_timm_model", "is_segmenter"]


def _architecture(model: nn.Module) -> str:
    architecture = getattr(model, "pretrained_cfg", {}).get("architecture")
    if not architecture or architecture not in list_sr_models(architecture):
        raise ValueError(
            f"expected a model created with timm.create_model() from the sr-models registry "
            f"(e.g. 'sr_resnet50', 'srnet_resnet50_d8'), got {type(model).__name__} "
            f"with architecture {architecture!r}")
    return architecture


def config_from_timm_model(model: nn.Module) -> Union[SRResNetConfig, SRNetConfig]:
    """The transformers config of a model from the sr-models registry (timm's export, minus the TimmWrapper trap)."""
    _architecture(model)  # refuses a model from outside the sr-models registry
    with tempfile.TemporaryDirectory() as tmp:
        save_config_for_hf(model, Path(tmp) / "config.json")
        timm_config = json.loads((Path(tmp) / "config.json").read_text())
    # timm 1.0.31 records num_classes in model_args too; transformers' TimmWrapper then fails with
    # "got multiple values for keyword argument 'num_classes'". The top-level num_classes is the one source.
    timm_config.get("model_args", {}).pop("num_classes", None)
    # timm keeps the data set's label names in the pretrained cfg while the head still matches them
    label_names = timm_config["pretrained_cfg"].get("label_names")
    if label_names is not None and len(label_names) == timm_config["num_classes"]:
        timm_config.setdefault("label_names", list(label_names))
    if is_segmenter(model):
        config = SRNetConfig.from_dict(timm_config)
        config.architectures = ["SRNetForSemanticSegmentation"]
    else:
        config = SRResNetConfig.from_dict(timm_config)
        config.architectures = ["SRResNetForImageClassification"]
    return config


def save_pretrained(model: nn.Module, save_directory: Union[str, Path]) -> Path:
    """Write `model` (from timm's registry) as safetensors + config.json + preprocessor_config.json.

    The folder loads with `timm.create_model("local-dir:<path>", pretrained=True)`,
    `AutoModelFor....from_pretrained(<path>)` and `pipeline(task, model=<path>)` (after `import sr_models`).
    """
    config = config_from_timm_model(model)
    save_directory = Path(save_directory)
    save_directory.mkdir(parents=True, exist_ok=True)
    state_dict = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    safetensors.torch.save_file(state_dict, save_directory / "model.safetensors", metadata={"format": "pt"})
    config.save_pretrained(save_directory)
    processor = image_processor_from_pretrained_cfg(config.pretrained_cfg, isinstance(config, SRNetConfig))
    processor.save_pretrained(save_directory)
    return save_directory
