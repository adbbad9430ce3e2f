"""Real-time models (Section IV-B, Table V): DFNet backbones, DFSeg with PPM, SRNet(DFv2)."""
import pytest
import timm
import torch

import sr_models  # noqa: F401
from sr_models.layers import SqueezeReasoning
from sr_models.profile import count_params


@pytest.mark.parametrize("name, params", [("dfseg_dfnet2", 18.83e6), ("srnet_dfnet2", 18.87e6),
                                          ("dfseg_dfnet1", 9.37e6)])
def test_table5_params(name, params):
    assert count_params(timm.create_model(name, num_classes=19)) == pytest.approx(params, rel=0.005)


def test_srnet_dfnet2_replaces_the_ppm_with_sr():
    sr, df = timm.create_model("srnet_dfnet2"), timm.create_model("dfseg_dfnet2")
    assert isinstance(sr.context, SqueezeReasoning) and not isinstance(df.context, SqueezeReasoning)
    assert count_params(sr.backbone) == count_params(df.backbone)


@pytest.mark.parametrize("name", ["srnet_dfnet2", "dfseg_dfnet1"])
@pytest.mark.parametrize("size", [(97, 129), (65, 33)])
def test_logits_have_the_input_size(name, size):
    model = timm.create_model(name, num_classes=7).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, *size)).shape == (1, 7, *size)
    assert model.num_classes == 7 and model.num_features == 128


def test_training_reaches_the_sr_parameters_and_options_pass_through():
    model = timm.create_model("srnet_dfnet2", num_classes=5, squeeze="gap", reasoning="fc").train()
    assert model.context.squeeze.squeeze == "gap"
    logits = model(torch.randn(2, 3, 64, 64))
    torch.nn.functional.cross_entropy(logits, torch.randint(0, 5, (2, 64, 64))).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.context.parameters())


def test_backbones_are_timm_classifiers_with_features_only():
    model = timm.create_model("dfnet2", num_classes=10).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 10)
    features = timm.create_model("dfnet2", features_only=True)
    assert features.feature_info.channels() == [64, 128, 256, 512]
    assert features.feature_info.reduction() == [4, 8, 16, 32]
    assert [f.shape[1] for f in features(torch.randn(1, 3, 64, 64))] == [64, 128, 256, 512]


def test_bad_input_and_options_fail_clearly():
    model = timm.create_model("srnet_dfnet2").eval()
    with pytest.raises(ValueError, match="built for 3 input channels, got 1"):
        model(torch.randn(1, 1, 64, 64))
    with pytest.raises(ValueError, match="at least 32x32"):
        model(torch.randn(1, 3, 16, 64))
    with pytest.raises(ValueError, match=r"unknown context='ppm'; choose one of .*'psp'"):
        timm.create_model("srnet_dfnet2", context="ppm")  # DFSeg's PPM is the "psp" block, one name


def test_dfseg_takes_any_context_of_the_factory():
    model = timm.create_model("srnet_dfnet2", context="nl", num_classes=3).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 96)).shape == (1, 3, 64, 96)
    ppm = timm.create_model("dfseg_dfnet2").context  # the PSP block with DFSeg's 1x1 conv and dropout
    assert ppm[1].conv.kernel_size == (1, 1) and ppm[2].p == 0.1
