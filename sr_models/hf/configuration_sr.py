"""transformers configurations of the sr-models families.

A config holds the timm registry name (`architecture`), the model arguments, and timm's pretrained cfg, and
serialises to one `config.json` that both `timm.create_model("local-dir:..." / "hf-hub:...")` and transformers'
`Auto*.from_pretrained` read: timm's keys (`architecture`, `num_classes`, `label_names`, `model_args`,
`pretrained_cfg`) beside transformers' (`model_type`, ...). Labels have one source of truth, `label_names`.
"""
from __future__ import annotations

from typing import Any

from transformers import PreTrainedConfig

from ..constants import AUX_WEIGHT, IGNORE_INDEX

# keys timm's `local-dir:` / `hf-hub:` loaders read from config.json
TIMM_KEYS = ("architecture", "num_classes", "num_features", "label_names", "model_args", "pretrained_cfg")


class _TimmArchitectureConfig(PreTrainedConfig):
    """Shared serialisation of the sr-models configs (see the module docstring)."""

    architecture: str = ""
    model_args: dict[str, Any] | None = None
    pretrained_cfg: dict[str, Any] | None = None
    num_features: int | None = None

    @classmethod
    def from_dict(cls, config_dict: dict[str, Any], **kwargs):
        config_dict = dict(config_dict)
        label_names = config_dict.pop("label_names", None)
        num_classes = config_dict.pop("num_classes", None)
        if label_names is not None and "id2label" not in kwargs and "num_labels" not in kwargs:
            kwargs["id2label"] = dict(enumerate(label_names))
            if len(set(label_names)) == len(label_names):
                kwargs["label2id"] = {name: i for i, name in enumerate(label_names)}
        elif num_classes is not None and "num_labels" not in kwargs and "id2label" not in kwargs:
            kwargs["num_labels"] = num_classes
        return super().from_dict(config_dict, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        output = super().to_dict()
        output["num_classes"] = self.num_labels
        output["label_names"] = [self.id2label[i] for i in range(self.num_labels)]
        output.pop("id2label", None)
        output.pop("label2id", None)
        return output

    def to_diff_dict(self) -> dict[str, Any]:
        output = super().to_diff_dict()
        full = self.to_dict()
        for key in TIMM_KEYS:
            if full.get(key) is None:
                output.pop(key, None)
            else:
                output[key] = full[key]
        output.pop("id2label", None)
        output.pop("label2id", None)
        return output


class SRResNetConfig(_TimmArchitectureConfig):
    r"""Configuration of an SR-ResNet classifier (`sr_resnet50`, ...) built from timm's registry.

    architecture (`str`): the timm registry name, e.g. `"sr_resnet50"`.
    model_args (`dict`, *optional*): keyword arguments of the timm entrypoint (never `num_classes`).
    pretrained_cfg (`dict`, *optional*): timm's pretrained cfg (input size, mean, std, crop_pct, ...).
    """

    model_type = "sr_resnet"
    architecture: str = "sr_resnet50"


class SRNetConfig(_TimmArchitectureConfig):
    r"""Configuration of an SRNet semantic segmenter (`srnet_resnet50_d8`, `srnet_dfnet2`, ...).

    architecture (`str`): the timm registry name, e.g. `"srnet_resnet50_d8"`.
    model_args (`dict`, *optional*): keyword arguments of the timm entrypoint (e.g. `context`, `squeeze`).
    pretrained_cfg (`dict`, *optional*): timm's pretrained cfg.
    semantic_loss_ignore_index (`int`): label of unlabelled pixels (255).
    aux_loss_weight (`float`): weight of the auxiliary head's loss (0.4, PSPNet's deep supervision).
    """

    model_type = "srnet"
    architecture: str = "srnet_resnet50_d8"
    semantic_loss_ignore_index: int = IGNORE_INDEX
    aux_loss_weight: float = AUX_WEIGHT
