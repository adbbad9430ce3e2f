"""transformers front door: `PreTrainedModel` adapters over the models of timm's registry (one implementation).

Weights are stored under timm's own state-dict keys, so a folder saved by either side loads in both.
"""
from __future__ import annotations

import timm
from timm.models._pretrained import filter_pretrained_cfg
import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import (
    BaseModelOutputWithPoolingAndNoAttention,
    ImageClassifierOutputWithNoAttention,
    SemanticSegmenterOutput,
)

from ..losses import SegmentationLoss
from ..models import list_sr_models
from .configuration_sr import SRNetConfig, SRResNetConfig

_PREFIX = "timm_model."


class SRPreTrainedModel(PreTrainedModel):
    """Shared plumbing: build the timm model from the config, keep timm's initialisation, timm's weight keys."""

    base_model_prefix = "timm_model"
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    model_tags = ["sr-models", "timm"]
    accepts_loss_kwargs = False
    supports_gradient_checkpointing = True

    def _build_timm_model(self, num_classes: int) -> nn.Module:
        try:
            model = timm.create_model(self.config.architecture, pretrained=False, num_classes=num_classes,
                                      **(self.config.model_args or {}))
        except RuntimeError as e:
            if "Unknown model" in str(e):
                raise ValueError(
                    f"config.json names architecture {self.config.architecture!r}, which is not in timm's registry; "
                    f"sr-models registers {', '.join(list_sr_models())}") from e
            raise
        if self.config.pretrained_cfg is None:
            # timm's `local-dir:` / `hf-hub:` loaders need the pretrained cfg in config.json
            self.config.pretrained_cfg = filter_pretrained_cfg(model.pretrained_cfg, remove_source=True,
                                                               remove_null=True)
        if next(model.parameters()).device.type != "meta":
            # timm initialised the weights; post_init() must not overwrite them (zero-init of last BNs included)
            for module in model.modules():
                module._is_hf_initialized = True
        return model

    def _set_gradient_checkpointing(self, enable: bool = True, *args, **kwargs) -> None:
        """`gradient_checkpointing_enable()` / `_disable()`: timm's own checkpointing of the model's stages."""
        if not hasattr(self.timm_model, "set_grad_checkpointing"):
            raise ValueError(f"{self.config.architecture} has no set_grad_checkpointing(): it cannot checkpoint")
        self.timm_model.set_grad_checkpointing(enable)

    @property
    def is_activation_checkpointing(self) -> bool:
        """Whether timm checkpoints any part of the model (its flag is `grad_checkpointing`)."""
        return any(getattr(module, "grad_checkpointing", False) for module in self.timm_model.modules())

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """timm's ResNet initialisation, for modules transformers must initialise (missing or resized weights)."""
        if isinstance(module, (nn.Conv1d, nn.Conv2d)):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm)):
            if module.weight is not None:
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            if getattr(module, "running_mean", None) is not None:
                nn.init.zeros_(module.running_mean)
                nn.init.ones_(module.running_var)
                nn.init.zeros_(module.num_batches_tracked)
        elif isinstance(module, nn.Linear):
            bound = 1 / module.in_features ** 0.5
            nn.init.uniform_(module.weight, -bound, bound)
            if module.bias is not None:
                nn.init.uniform_(module.bias, -bound, bound)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """transformers' `from_pretrained`, safetensors only, with a clear error for a damaged `model.safetensors`."""
        kwargs.setdefault("use_safetensors", True)  # never unpickle a checkpoint
        try:
            return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        except SafetensorError as e:
            raise OSError(
                f"the weights of {pretrained_model_name_or_path} (model.safetensors) are truncated or corrupted "
                f"({e}); download or save them again") from e

    def save_pretrained(self, save_directory, **kwargs):
        """transformers' `save_pretrained` with timm's state-dict keys (no `timm_model.` prefix)."""
        if kwargs.get("state_dict") is None:
            kwargs["state_dict"] = {k.removeprefix(_PREFIX): v for k, v in self.state_dict().items()}
        return super().save_pretrained(save_directory, **kwargs)

    def load_state_dict(self, state_dict, *args, **kwargs):
        """Accept timm's keys as well as prefixed ones (Trainer resumes, hand-made checkpoints)."""
        state_dict = {k if k.startswith(_PREFIX) else _PREFIX + k: v for k, v in state_dict.items()}
        return super().load_state_dict(state_dict, *args, **kwargs)


class SRResNetModel(SRPreTrainedModel):
    """SR-ResNet without its classifier: the final feature map and its pooled vector."""

    config_class = SRResNetConfig

    def __init__(self, config: SRResNetConfig):
        super().__init__(config)
        self.timm_model = self._build_timm_model(num_classes=0)
        self.post_init()

    def forward(self, pixel_values: torch.Tensor, **kwargs) -> BaseModelOutputWithPoolingAndNoAttention:
        features = self.timm_model.forward_features(pixel_values)
        pooled = self.timm_model.forward_head(features, pre_logits=True)
        return BaseModelOutputWithPoolingAndNoAttention(last_hidden_state=features, pooler_output=pooled)


class SRResNetForImageClassification(SRPreTrainedModel):
    """SR-ResNet classifier; cross-entropy loss when `labels` are given."""

    config_class = SRResNetConfig

    def __init__(self, config: SRResNetConfig):
        super().__init__(config)
        self.timm_model = self._build_timm_model(num_classes=config.num_labels)
        self.num_labels = config.num_labels
        self.post_init()

    def forward(
            self,
            pixel_values: torch.Tensor,
            labels: torch.LongTensor | None = None,
            **kwargs,
    ) -> ImageClassifierOutputWithNoAttention:
        logits = self.timm_model(pixel_values)
        loss = F.cross_entropy(logits, labels) if labels is not None else None
        return ImageClassifierOutputWithNoAttention(loss=loss, logits=logits)


class SRNetForSemanticSegmentation(SRPreTrainedModel):
    """SRNet segmenter; logits at the input size; with `labels`, CE (ignore 255) + `aux_loss_weight` x aux CE."""

    config_class = SRNetConfig

    def __init__(self, config: SRNetConfig):
        super().__init__(config)
        self.timm_model = self._build_timm_model(num_classes=config.num_labels)
        self.loss_fn = SegmentationLoss(config.semantic_loss_ignore_index, config.aux_loss_weight)
        self.post_init()

    def forward(
            self,
            pixel_values: torch.Tensor,
            labels: torch.LongTensor | None = None,
            **kwargs,
    ) -> SemanticSegmenterOutput:
        out = self.timm_model(pixel_values)
        logits, aux = out if isinstance(out, tuple) else (out, None)
        loss = self.loss_fn(logits, labels, aux) if labels is not None else None
        return SemanticSegmenterOutput(loss=loss, logits=logits)
