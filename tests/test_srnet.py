"""SRNet segmenters (Section III-D, Table IV): shapes, training outputs, losses, the paper's numbers, errors."""
import pytest
import timm
import torch

import sr_models  # noqa: F401  (registers the models)
from sr_models.layers import SqueezeReasoning
from sr_models.losses import SegmentationLoss
from sr_models.models.srnet import SRNet
from sr_models.profile import count_macs, count_params

LIGHT = dict(backbone="resnet10t", channels=32)  # a CPU-sized SRNet for shape and gradient checks


def _light(**kwargs):
    return timm.create_model("srnet_resnet18_d8", num_classes=5, **dict(LIGHT, **kwargs))


def test_registry_and_dataset_tags():
    assert {"srnet_resnet50_d8", "srnet_resnet101_d8", "fcn_resnet50_d8"} <= set(timm.list_models("*_d8"))
    tags = timm.list_models("srnet_resnet50_d8", pretrained=True)
    assert {f"srnet_resnet50_d8.{d}" for d in ("cityscapes", "ade20k", "pascal_context", "camvid")} <= set(tags)
    model = timm.create_model("srnet_resnet50_d8.ade20k", num_classes=150, pretrained=False)
    assert model.pretrained_cfg["input_size"] == (3, 512, 512) and len(model.pretrained_cfg["label_names"]) == 150


def test_create_model_with_a_context_and_sr_options():
    model = timm.create_model("srnet_resnet50_d8", num_classes=19, squeeze="gap", reasoning="fc", num_nodes=8)
    sr = model.head.context[1]
    assert isinstance(sr, SqueezeReasoning) and sr.squeeze.squeeze == "gap"
    assert model.num_classes == 19 and model.num_features == 512


@pytest.mark.parametrize("size", [(97, 129), (513, 1025)])
def test_eval_logits_have_the_input_size_at_odd_sizes(size):
    model = _light().eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, *size)).shape == (1, 5, *size)


def test_training_returns_main_and_aux_logits_at_input_size():
    model = _light().train()
    logits, aux = model(torch.randn(2, 3, 65, 81))
    assert logits.shape == aux.shape == (2, 5, 65, 81)
    assert _light(aux=False).train()(torch.randn(2, 3, 65, 81)).shape == (2, 5, 65, 81)


def test_loss_with_ignore_index_and_aux_reaches_the_sr_parameters():
    torch.manual_seed(0)
    model = _light().train()
    target = torch.randint(0, 5, (2, 64, 64))
    target[:, :, :20] = 255
    logits, aux = model(torch.randn(2, 3, 64, 64))
    loss = SegmentationLoss()(logits, target, aux)
    ce = torch.nn.functional.cross_entropy
    torch.testing.assert_close(loss, ce(logits, target, ignore_index=255) + 0.4 * ce(aux, target, ignore_index=255))
    loss.backward()
    sr = model.head.context[1]
    for name, p in sr.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_ohem_keeps_only_hard_pixels_but_at_least_min_kept():
    logits = torch.zeros(1, 2, 1, 4)
    logits[0, 0] = torch.tensor([4.0, 3.0, -4.0, 0.0])  # pixels 0, 1 easy (p > 0.7); 2 hard; 3 p = 0.5
    target = torch.zeros(1, 1, 4, dtype=torch.long)
    pixel = torch.nn.functional.cross_entropy(logits, target, reduction="none").flatten()
    assert SegmentationLoss(ohem_thresh=0.7, ohem_min_kept=1)(logits, target) == pytest.approx(pixel[2:].mean())
    assert SegmentationLoss(ohem_thresh=0.7, ohem_min_kept=3)(logits, target) == pytest.approx(pixel[1:].mean())


def test_table4_dilated_fcn_backbone_and_the_two_3x3_convs():
    model = timm.create_model("fcn_resnet50_d8", num_classes=19)
    # "dilated FCN" row: 23.63M params, 241.05 G at 768x768 (deep-stem ResNet-50 at output stride 8)
    assert count_params(model.backbone) == pytest.approx(23.63e6, abs=0.005e6)
    backbone_macs = count_macs(model.backbone.to("meta"), (1, 3, 768, 768))
    assert backbone_macs == pytest.approx(241.05e9, rel=0.005)
    # "+2x3x3" row: 11.80M params, 108.74 G on the 96x96x2048 feature map
    convs = model.head.context.to("meta")
    assert isinstance(convs[1], torch.nn.Identity)
    assert count_params(convs) == pytest.approx(11.80e6, abs=0.005e6)
    assert count_macs(convs, (1, 2048, 96, 96)) == pytest.approx(108.74e9, rel=0.005)


@pytest.mark.parametrize("squeeze, params", [("gap", 0.26e6), ("ghp", 0.40e6)])
def test_table4_sr_rows_inside_srnet(squeeze, params):
    model = timm.create_model("srnet_resnet50_d8", num_classes=19, squeeze=squeeze)
    fcn = timm.create_model("fcn_resnet50_d8", num_classes=19)
    assert count_params(model) - count_params(fcn) == pytest.approx(params, rel=0.03)


def test_any_timm_backbone_plugs_in_including_sr_resnet():
    model = SRNet(backbone="sr_resnet18", num_classes=3, channels=32).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 3, 64, 64)


@pytest.mark.parametrize("shape, message", [
    ((1, 4, 64, 64), "built for 3 input channels, got 4"),
    ((3, 64, 64), "4-D"),
    ((1, 3, 5, 64), "at least 8x8"),
])
def test_bad_input_fails_clearly(shape, message):
    with pytest.raises(ValueError, match=message):
        _light().eval()(torch.randn(*shape))


def test_unknown_context_fails_clearly():
    with pytest.raises(ValueError, match=r"unknown context='sw'.*none.*sr"):
        _light(context="sw")
