"""What the semantic segmenters of the zoo (SRNet, DFSeg) share: the task marker, the input check, the FCN head,
timm's model API and the per-data-set pretrained cfgs.

A segmenter is a timm backbone (`features_only`, every level), a decoder, and heads ending in 1x1 classifiers; logits
are upsampled to the input size. timm's model API, read densely:

    forward_features(x)                    the decoder's map, (N, num_features, h, w)
    forward_head(f, pre_logits=True)       the map the classifier sees, (N, head_hidden_size, h, w)
    forward_head(f)                        logits at the decoder's resolution (forward() upsamples them to H x W)
    forward_intermediates(x)               the backbone's multi-scale features (what `features_only=True` returns)
    get_classifier() / reset_classifier(n) every classifier, the auxiliary one included
"""
import contextlib
import functools
from typing import Any, Dict, List, Optional, Tuple, Union

import timm
import torch
from timm.layers import ConvNormAct, get_device_dtype, register_notrace_function
from timm.models._features import feature_take_indices
from torch import nn

from ..data.metadata import DATASETS
from ..layers.squeeze_reasoning import check_feature_map
from ._hub import PAPER_ID

__all__ = ["SEMANTIC_SEGMENTATION", "IMAGE_CLASSIFICATION", "model_task", "is_segmenter", "check_image",
           "FCNHead", "Segmenter", "dataset_cfgs"]

SEMANTIC_SEGMENTATION = "semantic-segmentation"
IMAGE_CLASSIFICATION = "image-classification"


def model_task(model: Union[nn.Module, str]) -> str:
    """The task of a model, or of the model a timm registry name builds: its `task` (classifiers have none)."""
    if isinstance(model, str):
        return _registry_task(model)
    return getattr(model, "task", IMAGE_CLASSIFICATION)


@functools.lru_cache(maxsize=None)
def _registry_task(architecture: str) -> str:
    return model_task(timm.create_model(architecture, pretrained=False, device="meta"))


def is_segmenter(model: Union[nn.Module, str]) -> bool:
    """Whether `model` (a model, or a timm registry name) is a semantic segmenter: the one place that decides."""
    return model_task(model) == SEMANTIC_SEGMENTATION


@register_notrace_function  # FX keeps it as one call; it is TorchScript-compatible and export-safe
def check_image(x: torch.Tensor, in_chans: int, min_size: int, who: str) -> None:
    """Raise a one-line error unless `x` is a float (N, in_chans, H, W) batch with H, W >= min_size."""
    check_feature_map(x, in_chans, who)
    if x.shape[-2] < min_size or x.shape[-1] < min_size:
        raise ValueError(
            f"{who} needs images of at least {min_size}x{min_size} pixels, got {x.shape[-2]}x{x.shape[-1]}")


torch.fx.wrap("check_image")  # also a leaf where this module's methods (forward_features) call it


def _classifier(in_channels: int, num_classes: int, **dd) -> nn.Module:
    """A 1x1 classifier; `num_classes=0` leaves the head's features (timm's "no classifier")."""
    return nn.Conv2d(in_channels, num_classes, 1, **dd) if num_classes else nn.Identity()


class FCNHead(nn.Module):
    """FCN head (PSPNet's auxiliary supervision, DFSeg's classifier): 3x3 conv C -> 256, dropout 0.1, 1x1 classifier."""

    def __init__(self, in_channels: int, num_classes: int, channels: int = 256, dropout: float = 0.1):
        super().__init__()
        self.head_hidden_size = channels
        self.conv = ConvNormAct(in_channels, channels, 3)
        self.dropout = nn.Dropout2d(dropout)
        self.classifier = _classifier(channels, num_classes)

    def reset_classifier(self, num_classes: int, **dd) -> None:
        self.classifier = _classifier(self.head_hidden_size, num_classes, **dd).train(self.training)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.dropout(self.conv(x))
        return x if pre_logits else self.classifier(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(x)


def factory_device(device: Any) -> contextlib.AbstractContextManager:
    """Build under `torch.device(device)` (timm's `create_model(device=...)`) for blocks without device arguments."""
    return torch.device(device) if device is not None else contextlib.nullcontext()


class Segmenter(nn.Module):
    """timm's model API over `backbone` (every level) -> the subclass's `forward_decoder(features)` and
    `forward_head` -> the heads named in `heads`, each with a `classifier` and `reset_classifier`."""

    task = SEMANTIC_SEGMENTATION
    heads: Tuple[str, ...] = ("head",)

    def _init_backbone(self, backbone: str, in_chans: int, pretrained: bool, **kwargs) -> None:
        self.backbone = timm.create_model(backbone, features_only=True, pretrained=pretrained, in_chans=in_chans,
                                          **kwargs)
        self.in_chans = in_chans
        self.who = type(self).__name__  # for error messages (TorchScript cannot read type(self))
        self.feature_info: List[Dict[str, Any]] = [dict(info, module=f"backbone.{info['module']}")
                                                   for info in self.backbone.feature_info.get_dicts()]
        self.min_input_size = max(self.backbone.feature_info.reduction())

    @torch.jit.ignore
    def get_classifier(self, name_only: bool = False) -> Union[Tuple[str, ...], Tuple[nn.Module, ...]]:
        names = tuple(f"{head}.classifier" for head in self.heads if getattr(self, head) is not None)
        return names if name_only else tuple(self.get_submodule(name) for name in names)

    @torch.jit.ignore
    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None) -> None:
        """Replace every classifier (main and auxiliary) by a new one for `num_classes` (0 removes them)."""
        if global_pool:
            raise ValueError(f"{type(self).__name__} classifies every pixel and has no global pooling; "
                             f"got global_pool={global_pool!r}")
        if not isinstance(num_classes, int) or num_classes < 0:
            raise ValueError(f"{type(self).__name__}: num_classes={num_classes!r} must be an int >= 0")
        dd = get_device_dtype(self)
        for head in self.heads:
            if getattr(self, head) is not None:
                getattr(self, head).reset_classifier(num_classes, **dd)
        self.num_classes = num_classes

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.backbone.set_grad_checkpointing(enable)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The decoder's map (N, num_features, h, w) before the classifier head."""
        check_image(x, self.in_chans, self.min_input_size, self.who)
        return self.forward_decoder(self.backbone(x))

    def forward_intermediates(
            self,
            x: torch.Tensor,
            indices: Optional[Union[int, List[int]]] = None,
            norm: bool = False,
            stop_early: bool = False,
            output_fmt: str = "NCHW",
            intermediates_only: bool = False,
    ) -> Union[List[torch.Tensor], Tuple[torch.Tensor, List[torch.Tensor]]]:
        """The backbone's features at `indices` (timm's convention: None all, int the last n), and unless
        `intermediates_only`, the decoder's map (`forward_features`). `norm` and `stop_early` change nothing here."""
        if output_fmt != "NCHW":
            raise ValueError(f"{type(self).__name__} returns NCHW features, got output_fmt={output_fmt!r}")
        take_indices, _ = feature_take_indices(len(self.feature_info), indices)
        check_image(x, self.in_chans, self.min_input_size, self.who)
        features = self.backbone(x)
        intermediates = [features[i] for i in take_indices]
        if intermediates_only:
            return intermediates
        return self.forward_decoder(features), intermediates

    def prune_intermediate_layers(
            self,
            indices: Union[int, List[int]] = 1,
            prune_norm: bool = False,
            prune_head: bool = True,
    ) -> List[int]:
        """Keep only the backbone (timm's `features_only=True`): the decoder and heads are dropped."""
        take_indices, _ = feature_take_indices(len(self.feature_info), indices)
        if prune_head:
            for name, _ in list(self.named_children()):
                if name != "backbone":
                    setattr(self, name, None)
            self.num_classes = 0
        return take_indices


def _cfg(dataset: str, **kwargs) -> Dict[str, Any]:
    info = DATASETS[dataset]
    return {
        'num_classes': info.num_classes, 'label_names': info.label_names,
        'mean': info.mean, 'std': info.std, 'interpolation': 'bilinear', 'crop_pct': 1.0,
        'license': 'apache-2.0', 'paper_ids': PAPER_ID,
        'paper_name': 'Towards Efficient Scene Understanding via Squeeze Reasoning',
        'origin_url': 'https://github.com/lxtGH/SFSegNets',
        'input_size': (3, *info.crop_size), 'test_input_size': (3, *info.test_size),  # training crop, whole image
        **kwargs,
    }


def dataset_cfgs(arch: str, **kwargs) -> Dict[str, Dict[str, Any]]:
    """One `arch.<dataset>` pretrained cfg per data set of the paper (`first_conv`, `classifier` from the family)."""
    return {f"{arch}.{dataset}": _cfg(dataset, **kwargs) for dataset in DATASETS}
