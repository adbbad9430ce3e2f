"""Table IX(a) detectors: torchvision's Mask R-CNN / Cascade parts on timm backbones, SR and NL placement, costs."""
import pytest
import timm
import torch
from torchvision.models.detection import MaskRCNN
from timm.layers import NonLocalAttn

import sr_models
from sr_models.layers import SqueezeReasoning
from sr_models.models.detection import CascadeMaskRCNN, TimmFPN, timm_fpn_backbone
from sr_models.profile import count_detector_macs

# CPU-sized tests: torchvision's transform resizes to 128-160 px, few proposals and detections
SMALL = dict(min_size=128, max_size=160, rpn_pre_nms_top_n_test=64, rpn_post_nms_top_n_test=32,
             rpn_pre_nms_top_n_train=64, rpn_post_nms_top_n_train=32, box_detections_per_img=4)
NAMES = sr_models.list_detectors("*maskrcnn*")  # Table IX(a); Panoptic FPN: tests/test_panoptic.py


def _target(size: int = 128):
    masks = torch.zeros(2, size, size, dtype=torch.uint8)
    masks[0, 10:60, 20:90] = 1
    masks[1, 70:110, 30:70] = 1
    return dict(boxes=torch.tensor([[20.0, 10, 90, 60], [30, 70, 70, 110]]), labels=torch.tensor([1, 2]), masks=masks)


def test_the_table9_names_are_registered_outside_timm():
    assert len(NAMES) == 12 and "cascade_maskrcnn_sr_resnext101_32x4d_fpn" in NAMES  # 10 of Table IX + 2 CPU-sized
    assert not any(timm.is_model(name) for name in NAMES)
    assert sr_models.list_detectors("maskrcnn_nl_*") == ["maskrcnn_nl_resnet50_fpn", "maskrcnn_nl_resnet101_fpn"]
    with pytest.raises(ValueError, match="unknown detector 'maskrcnn_r50'"):
        sr_models.create_detector("maskrcnn_r50")


def _check_detections(out, sizes, num_classes):
    assert len(out) == len(sizes)
    for image, detections in zip(sizes, out):
        n = len(detections["boxes"])
        assert n > 0 and detections["boxes"].shape == (n, 4)
        assert detections["labels"].shape == detections["scores"].shape == (n,)
        assert detections["masks"].shape == (n, 1, *image)
        assert detections["labels"].min() >= 1 and detections["labels"].max() < num_classes


@pytest.mark.parametrize("name", NAMES)
def test_every_detector_builds_torchvision_parts_on_a_timm_body(name):
    with torch.device("meta"):
        model = sr_models.create_detector(name, num_classes=3)
    assert isinstance(model, CascadeMaskRCNN if name.startswith("cascade") else MaskRCNN)
    assert isinstance(model.backbone, TimmFPN) and model.backbone.out_channels == (64 if "14t" in name else 256)
    assert model.backbone.body.feature_info.channels() == [256, 512, 1024, 2048]
    heads = getattr(model.roi_heads, "stages", [model.roi_heads])
    assert len(heads) == (3 if name.startswith("cascade") else 1)
    assert all(h.box_predictor.cls_score.out_features == h.mask_predictor.mask_fcn_logits.out_channels == 3
               for h in heads)


@pytest.mark.parametrize("name", ["maskrcnn_resnet50_fpn", "maskrcnn_sr_resnet50_fpn", "maskrcnn_nl_resnet50_fpn"])
def test_r50_detectors_return_torchvision_detections(name):
    torch.manual_seed(0)
    model = sr_models.create_detector(name, num_classes=3, box_score_thresh=0.0, **SMALL).eval()
    with torch.no_grad():
        out = model([torch.rand(3, 120, 150), torch.rand(3, 100, 90)])
    _check_detections(out, [(120, 150), (100, 90)], 3)


def test_sr_training_step_returns_finite_losses_with_gradients_into_sr():
    torch.manual_seed(0)
    # timm's zero_init_last would zero the residual branch the SR module reads at step 0
    model = sr_models.create_detector("maskrcnn_sr_resnet14t_fpn", num_classes=3,
                                      backbone_args=dict(zero_init_last=False), **SMALL).train()
    losses = model([torch.rand(3, 128, 128)], [_target()])
    assert set(losses) == {"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg", "loss_mask"}
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert model.backbone.body.layer4[0].se.reconstruction.norm.weight.grad.abs().sum() > 0


def test_cascade_refines_through_three_stages_and_averages_their_scores():
    """The cascade machinery on a ResNet-18 FPN (the registered cascades are X-101: too big for a unit test)."""
    torch.manual_seed(0)
    model = CascadeMaskRCNN(timm_fpn_backbone("resnet18"), num_classes=3, box_score_thresh=0.0, **SMALL)
    heads = model.roi_heads.stages
    assert [h.proposal_matcher.high_threshold for h in heads] == [0.5, 0.6, 0.7]
    assert [h.box_coder.weights for h in heads] == [(10, 10, 5, 5), (20, 20, 10, 10), (30, 30, 15, 15)]
    assert all(h.box_predictor.bbox_pred.out_features == 4 for h in heads)  # class-agnostic regression
    losses = model.train()([torch.rand(3, 128, 128)], [_target()])
    assert set(losses) == {"loss_objectness", "loss_rpn_box_reg"} | {
        f"loss_{k}_s{t}" for k in ("classifier", "box_reg", "mask") for t in range(3)}
    sum(losses.values()).backward()
    assert all(h.mask_head[0][0].weight.grad is not None for h in heads)
    with torch.no_grad():
        out = model.eval()([torch.rand(3, 120, 150)])
    _check_detections(out, [(120, 150)], 3)


def test_sr_sits_on_every_layer4_bottleneck_and_starts_as_the_identity():
    body = sr_models.create_detector("maskrcnn_sr_resnet50_fpn").backbone.body
    srs = [block.se for block in body.layer4]
    assert all(isinstance(sr, SqueezeReasoning) for sr in srs) and len(srs) == 3
    assert not any(isinstance(m, SqueezeReasoning) for m in body.layer3.modules())
    x = torch.randn(1, 2048, 5, 7)
    srs[0].eval()
    assert torch.equal(srs[0](x), x)


def test_nl_is_one_block_right_before_the_last_res4_block():
    body = sr_models.create_detector("maskrcnn_nl_resnet101_fpn").backbone.body
    names = [name for name, _ in body.layer3.named_children()]
    assert names[-2:] == ["nl", "22"] and len(names) == 24 and isinstance(body.layer3.nl, NonLocalAttn)
    assert sum(isinstance(m, NonLocalAttn) for m in body.modules()) == 1
    assert body.layer3.nl.t.out_channels == 512  # Wang et al.: C/2 embedding


def test_pretrained_style_backbone_freezes_bn_and_the_stem_like_torchvision():
    fpn = sr_models.create_detector("maskrcnn_sr_resnet50_fpn", trainable_layers=3).backbone
    frozen = {name.split(".")[0] for name, p in fpn.body.named_parameters() if not p.requires_grad}
    assert frozen == {"conv1", "bn1", "layer1"}
    assert all(p.requires_grad for p in fpn.body.layer4[0].se.parameters())


@pytest.mark.parametrize("depth", ["resnet50", "resnet101"])
def test_table9_sr_costs_under_1pct_and_a_tenth_of_nl(depth):
    with torch.device("meta"):
        base, sr, nl = (count_detector_macs(sr_models.create_detector(f"maskrcnn{v}_{depth}_fpn"))["total"]
                        for v in ("", "_sr", "_nl"))
    assert 0 < sr - base < 0.01 * base and sr - base < 0.1 * (nl - base)
    paper = {"resnet50": 275.58e9, "resnet101": 351.65e9}[depth]
    assert abs(base / paper - 1) < 0.12  # elementwise ops (BN, ReLU, adds) are not multiply-adds in our count


@pytest.mark.slow
@pytest.mark.parametrize("name", ["maskrcnn_resnet50_fpn", "maskrcnn_sr_resnet50_fpn", "maskrcnn_nl_resnet50_fpn"])
def test_r50_detectors_run_at_800x1216(name):
    torch.manual_seed(0)
    model = sr_models.create_detector(name, num_classes=81).eval()
    with torch.no_grad():
        out = model([torch.rand(3, 800, 1200)])[0]
    assert out["masks"].shape[1:] == (1, 800, 1200) and len(out["boxes"]) == len(out["scores"])
