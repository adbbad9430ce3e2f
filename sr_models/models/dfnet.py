"""DFNet backbones (Li et al., "Partial Order Pruning", CVPR 2019) and the real-time segmenters of Table V.

    DFSeg (the baseline):  DFNet -> PPM on the last stage -> fuse with stage -2 -> fuse with stage -3 -> classifier
    SRNet(DFNet):          the same with the SR module in place of the PPM (Section IV-B)

Stage layouts follow the authors' released DFNet code (residual basic blocks; v2 ends each stage with a block
that widens it). Logits are upsampled bilinearly to the input size.
"""
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from timm.layers import ConvNormAct, create_classifier, get_device_dtype
from timm.models import build_model_with_cfg, checkpoint_seq, register_model
from timm.models._features import feature_take_indices
from timm.models.resnet import BasicBlock, downsample_conv
from torch import nn

from ..layers.context import context_out_channels, create_context_block
from ._args import check_model_args
from ._hub import PAPER_ID, generate_hub_cfgs
from .segmentation import FCNHead, Segmenter, check_image, dataset_cfgs, factory_device

__all__ = ["DFNet", "DFSeg", "FusionNode"]

# per stage, the (planes, blocks, stride) groups of basic blocks
DFNET_V1 = (((64, 3, 2),), ((128, 3, 2),), ((256, 3, 2),), ((512, 1, 1),))
DFNET_V2 = (((64, 2, 2), (128, 1, 1)), ((128, 10, 2), (256, 1, 1)), ((256, 4, 2), (512, 2, 1)))


def _make_stage(in_planes: int, groups: Sequence[Tuple[int, int, int]], **dd) -> Tuple[nn.Sequential, int]:
    blocks = []
    for planes, count, stride in groups:
        for i in range(count):
            downsample = None
            if i == 0 and (stride != 1 or in_planes != planes):
                downsample = downsample_conv(in_planes, planes, 1, stride, **dd)
            blocks.append(BasicBlock(in_planes, planes, stride if i == 0 else 1, downsample, **dd))
            in_planes = planes
    return nn.Sequential(*blocks), in_planes


class DFNet(nn.Module):
    """DFNet classifier: a two-conv stride-4 stem, stages of basic blocks, global pooling, linear classifier."""

    def __init__(self, stages=DFNET_V2, num_classes: int = 1000, in_chans: int = 3, global_pool: str = "avg",
                 drop_rate: float = 0.0, device=None, dtype=None):
        super().__init__()
        check_model_args("DFNet", num_classes=num_classes, in_chans=in_chans, dropout=drop_rate)
        dd = dict(device=device, dtype=dtype)
        self.num_classes, self.in_chans, self.drop_rate = num_classes, in_chans, drop_rate
        self.grad_checkpointing = False
        self.stem = nn.Sequential(ConvNormAct(in_chans, 32, 3, stride=2, **dd), ConvNormAct(32, 64, 3, stride=2, **dd))
        self.feature_info: List[Dict[str, Any]] = [dict(num_chs=64, reduction=4, module="stem.1")]
        channels, reduction, built = 64, 4, []
        for i, groups in enumerate(stages):
            stage, channels = _make_stage(channels, groups, **dd)
            reduction *= max(stride for _, _, stride in groups)
            built.append(stage)
            self.feature_info.append(dict(num_chs=channels, reduction=reduction, module=f"stages.{i}"))
        self.stages = nn.Sequential(*built)
        self.num_features = self.head_hidden_size = channels
        self.global_pool, self.fc = create_classifier(channels, num_classes, pool_type=global_pool, **dd)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> Dict[str, str]:
        return dict(stem=r"^stem", blocks=r"^stages\.(\d+)" if coarse else r"^stages\.(\d+)\.(\d+)")

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    @torch.jit.ignore
    def get_classifier(self, name_only: bool = False) -> Union[str, nn.Module]:
        return "fc" if name_only else self.fc

    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None) -> None:
        check_model_args("DFNet", num_classes=num_classes)
        self.num_classes = num_classes
        if global_pool is None:
            global_pool = self.global_pool.pool_type
        self.global_pool, self.fc = create_classifier(self.num_features, num_classes, pool_type=global_pool,
                                                      **get_device_dtype(self))
        self.global_pool.train(self.training)
        self.fc.train(self.training)

    def forward_intermediates(
            self,
            x: torch.Tensor,
            indices: Optional[Union[int, List[int]]] = None,
            norm: bool = False,
            stop_early: bool = False,
            output_fmt: str = "NCHW",
            intermediates_only: bool = False,
    ) -> Union[List[torch.Tensor], Tuple[torch.Tensor, List[torch.Tensor]]]:
        """The stem's and every stage's output at `indices` (timm's convention), and unless `intermediates_only`,
        the last stage's output (`forward_features`)."""
        if output_fmt != "NCHW":
            raise ValueError(f"DFNet returns NCHW features, got output_fmt={output_fmt!r}")
        take_indices, max_index = feature_take_indices(len(self.feature_info), indices)
        check_image(x, self.in_chans, 1, "DFNet")
        x = self.stem(x)
        intermediates = [x] if 0 in take_indices else []
        stages = self.stages[:max_index] if stop_early else self.stages
        for i, stage in enumerate(stages):
            x = checkpoint_seq(stage, x) if self.grad_checkpointing and not torch.jit.is_scripting() else stage(x)
            if i + 1 in take_indices:
                intermediates.append(x)
        return intermediates if intermediates_only else (x, intermediates)

    def prune_intermediate_layers(
            self,
            indices: Union[int, List[int]] = 1,
            prune_norm: bool = False,
            prune_head: bool = True,
    ) -> List[int]:
        take_indices, max_index = feature_take_indices(len(self.feature_info), indices)
        self.stages = self.stages[:max_index]
        if max_index < len(self.feature_info) - 1:
            self.num_features = self.head_hidden_size = self.feature_info[max_index]["num_chs"]
        if prune_head or max_index < len(self.feature_info) - 1:
            self.reset_classifier(0, "")
        return take_indices

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        check_image(x, self.in_chans, 1, "DFNet")
        x = self.stem(x)
        if self.grad_checkpointing and not torch.jit.is_scripting():
            return checkpoint_seq(self.stages, x)
        return self.stages(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = F.dropout(self.global_pool(x), p=self.drop_rate, training=self.training)
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class FusionNode(nn.Module):
    """DFSeg's fusion: upsample the coarse map, concat with the fine one, 3x3 conv (2C -> C)."""

    def __init__(self, channels: int):
        super().__init__()
        self.fusion = nn.Conv2d(2 * channels, channels, 3, padding=1, bias=False)

    def forward(self, coarse: torch.Tensor, fine: torch.Tensor) -> torch.Tensor:
        coarse = F.interpolate(coarse, size=fine.shape[-2:], mode="bilinear", align_corners=False)
        return self.fusion(torch.cat([coarse, fine], dim=1))


class DFSeg(Segmenter):
    """Real-time segmenter on a DFNet: context on the last stage, two fusions, an FCN classifier head.

    Args:
        backbone: a timm model with `features_only` (default the DFNet v2 registered here).
        context: any name of `sr_models.layers.context` on the last stage: a context module alone ("sr": SRNet,
            Section IV-B; "nl", ...) or a whole block ("psp" with `kernel_size=1, drop_rate=0.1`: DFSeg's PPM);
            its options (`squeeze`, `num_nodes`, `bins`, ...) pass through.
        channels: width of the decoder (128 in DFSeg).
    """

    heads = ("classifier",)

    def __init__(self, backbone: str = "dfnet2", num_classes: int = 19, context: str = "sr", channels: int = 128,
                 in_chans: int = 3, dropout: float = 0.1, pretrained_backbone: bool = False, device=None, dtype=None,
                 **context_kwargs):
        super().__init__()
        check_model_args("DFSeg", num_classes=num_classes, in_chans=in_chans, channels=channels, dropout=dropout)
        with factory_device(device):
            self._init_backbone(backbone, in_chans, pretrained_backbone, device=device, dtype=dtype)
            fine_chs, mid_chs, last_chs = (info["num_chs"] for info in self.feature_info[-3:])
            self.context = create_context_block(context, last_chs, channels, convs=False, **context_kwargs)
            self.reduce_last = nn.Conv2d(context_out_channels(context, last_chs, channels, convs=False), channels, 1)
            self.reduce_mid = nn.Conv2d(mid_chs, channels, 1)
            self.reduce_fine = nn.Conv2d(fine_chs, channels, 1)
            self.fuse_mid = FusionNode(channels)
            self.fuse_fine = FusionNode(channels)
            self.classifier = FCNHead(channels, num_classes, dropout=dropout)
        self.num_classes, self.num_features = num_classes, channels
        self.head_hidden_size = self.classifier.head_hidden_size
        if dtype is not None:
            self.to(dtype=dtype)

    def forward_decoder(self, features: List[torch.Tensor]) -> torch.Tensor:
        """The decoder's map before the classifier head, from the backbone's last three levels."""
        fine, mid, last = features[-3], features[-2], features[-1]
        out = self.fuse_mid(self.reduce_last(self.context(last)), self.reduce_mid(mid))
        return self.fuse_fine(out, self.reduce_fine(fine))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.classifier.forward_head(x, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.forward_head(self.forward_features(x))
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)


def _create_dfnet(variant: str, stages, pretrained: bool = False, **kwargs) -> DFNet:
    out_indices = kwargs.pop("out_indices", tuple(range(len(stages) + 1)))  # the stem and every stage
    return build_model_with_cfg(DFNet, variant, pretrained, stages=stages,
                                feature_cfg=dict(flatten_sequential=True, out_indices=out_indices), **kwargs)


def _create_dfseg(variant: str, pretrained: bool = False, **kwargs) -> DFSeg:
    # features_only=True: the backbone's levels through forward_intermediates (timm's FeatureGetterNet)
    return build_model_with_cfg(DFSeg, variant, pretrained, feature_cfg=dict(feature_cls="getter", out_indices=None),
                                **kwargs)


def _classifier_cfg() -> Dict[str, Any]:
    return {'num_classes': 1000, 'input_size': (3, 224, 224), 'pool_size': (7, 7), 'crop_pct': 0.875,
            'interpolation': 'bilinear', 'mean': (0.485, 0.456, 0.406), 'std': (0.229, 0.224, 0.225),
            'first_conv': 'stem.0.conv', 'classifier': 'fc', 'license': 'apache-2.0', 'paper_ids': 'arXiv:1903.03777',
            'paper_name': 'Partial Order Pruning: for Best Speed/Accuracy Trade-off in Neural Architecture Search'}


_REALTIME = dict(first_conv='backbone.stem_0.conv', classifier=('classifier.classifier',), paper_ids=PAPER_ID)


def _dfseg_args(backbone: str, kwargs: Dict[str, Any]) -> Dict[str, Any]:
    """DFSeg's PPM (PSPNet's pyramid pooling, then 1x1 conv and dropout 0.1: the released PSPModule), unless
    another context is asked for."""
    ppm = dict(kernel_size=1, drop_rate=0.1) if kwargs.get('context', 'psp') == 'psp' else {}
    return dict(dict(backbone=backbone, context='psp', **ppm), **kwargs)


default_cfgs = generate_hub_cfgs({
    'dfnet1.in1k': _classifier_cfg(),
    'dfnet2.in1k': _classifier_cfg(),
    **dataset_cfgs('srnet_dfnet1', **_REALTIME),
    **dataset_cfgs('srnet_dfnet2', **_REALTIME),
    **dataset_cfgs('dfseg_dfnet1', **_REALTIME),
    **dataset_cfgs('dfseg_dfnet2', **_REALTIME),
})


@register_model
def dfnet1(pretrained: bool = False, **kwargs) -> DFNet:
    """DFNet v1 (Table V's DFv1 backbone)."""
    return _create_dfnet('dfnet1', DFNET_V1, pretrained, **kwargs)


@register_model
def dfnet2(pretrained: bool = False, **kwargs) -> DFNet:
    """DFNet v2 (Table V's DFv2 backbone)."""
    return _create_dfnet('dfnet2', DFNET_V2, pretrained, **kwargs)


@register_model
def dfseg_dfnet1(pretrained: bool = False, **kwargs) -> DFSeg:
    return _create_dfseg('dfseg_dfnet1', pretrained, **_dfseg_args('dfnet1', kwargs))


@register_model
def dfseg_dfnet2(pretrained: bool = False, **kwargs) -> DFSeg:
    """DFSeg-v2, the real-time baseline of Table V (DFv2 + PPM)."""
    return _create_dfseg('dfseg_dfnet2', pretrained, **_dfseg_args('dfnet2', kwargs))


@register_model
def srnet_dfnet1(pretrained: bool = False, **kwargs) -> DFSeg:
    model_args = dict(backbone='dfnet1', context='sr')
    return _create_dfseg('srnet_dfnet1', pretrained, **dict(model_args, **kwargs))


@register_model
def srnet_dfnet2(pretrained: bool = False, **kwargs) -> DFSeg:
    """SRNet(DFv2) of Table V: DFSeg-v2 with the SR module in place of the PPM."""
    model_args = dict(backbone='dfnet2', context='sr')
    return _create_dfseg('srnet_dfnet2', pretrained, **dict(model_args, **kwargs))
