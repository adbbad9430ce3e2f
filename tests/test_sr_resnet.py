"""SR-ResNet classifiers (Section IV-E, Table X) in timm's registry."""
from functools import partial

import pytest
import timm
import torch
from timm.layers import GroupNorm
from timm.models.resnet import BasicBlock, Bottleneck, ResNet

import sr_models  # noqa: F401  (registers the models)
from sr_models.layers import SqueezeReasoningGate
from sr_models.profile import count_macs, count_params

FAMILY = ["sr_resnet18", "sr_resnet34", "sr_resnet50", "sr_resnet101", "sr_resnet152", "sr_resnet50d",
          "sr_resnext50_32x4d"]


def test_registry_lists_the_family():
    assert set(FAMILY) <= set(timm.list_models("sr_*"))
    assert "sr_resnet50.in1k" in timm.list_models("sr_*", pretrained=True)


def test_sr_resnet50_matches_table10_params_and_flops():
    model = timm.create_model("sr_resnet50")
    assert count_params(model) == pytest.approx(25.64e6, abs=0.01e6)
    macs, base = count_macs(model, (1, 3, 224, 224)), count_macs(timm.create_model("resnet50"), (1, 3, 224, 224))
    assert base < macs <= base * 1.005  # Table X: 4.122 G -> 4.127 G


def test_sr_resnet101_matches_table10_params():
    assert 44.70e6 <= count_params(timm.create_model("sr_resnet101")) < 44.715e6


def test_every_block_has_the_gate():
    model = timm.create_model("sr_resnet50")
    gates = [m for m in model.modules() if isinstance(m, SqueezeReasoningGate)]
    assert len(gates) == 16
    assert "layer4.2.se.reasoning.adjacency.weight" in model.state_dict()


@pytest.mark.parametrize("name, block, layers, norm_layer", [
    ("sr_resnet18", BasicBlock, (2, 2, 2, 2), torch.nn.BatchNorm2d),
    ("sr_resnet50", Bottleneck, (3, 4, 6, 3), torch.nn.BatchNorm2d),
    ("sr_resnet50", Bottleneck, (3, 4, 6, 3), partial(GroupNorm, num_groups=8)),
])
def test_blocks_compute_timms_blocks_with_the_gate_as_attention(name, block, layers, norm_layer):
    """The rescale inside the residual sum is timm's block with `attn_layer=SqueezeReasoningGate`: eval without
    autograd (the fused in-place path), with autograd, in training with stochastic depth, and in bf16 channels_last;
    in eval, bottlenecks of stages 1-2 with BatchNorm pool the gate's input before conv3, the others after bn3."""
    torch.manual_seed(0)
    args = dict(num_classes=10, drop_path_rate=0.2, norm_layer=norm_layer, zero_init_last=False)  # a live branch
    model = timm.create_model(name, **args)
    with torch.no_grad():  # running statistics that are not the identity
        model(torch.randn(4, 3, 64, 64))
    timm_blocks = ResNet(block=block, layers=layers, block_args=dict(attn_layer=partial(SqueezeReasoningGate,
                                                                                         inplace=True)), **args)
    timm_blocks.load_state_dict(model.state_dict())
    pooled_before_conv3 = [getattr(b, "pool_before_conv3", False) for b in model.modules() if hasattr(b, "se")]
    bottleneck_bn = block is Bottleneck and norm_layer is torch.nn.BatchNorm2d
    assert pooled_before_conv3 == [bottleneck_bn] * sum(layers[:2]) + [False] * sum(layers[2:])
    x = torch.randn(2, 3, 64, 64)
    for train, grad in ((False, False), (False, True), (True, True)):
        outputs = []
        for network in (model, timm_blocks):
            network.train(train)
            torch.manual_seed(1)  # the same stochastic-depth draws
            with torch.set_grad_enabled(grad):
                outputs.append(network(x))
        torch.testing.assert_close(outputs[0], outputs[1], rtol=1e-5, atol=1e-5)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        fused, composed = (m.eval().to(memory_format=torch.channels_last)(x.contiguous(
            memory_format=torch.channels_last)) for m in (model, timm_blocks))
    torch.testing.assert_close(fused, composed, rtol=0.02, atol=0.05)


def test_inference_gate_map_follows_every_weight_change():
    """Eval without autograd takes the gate from the cached conv3 + bn3 + Eq. 5 map; with autograd the blocks compose
    the modules. Both must agree after every way weights change: in place, through load_state_dict, replaced by
    a dtype change; and on a model made under torch.inference_mode (whose tensors keep no version)."""
    torch.manual_seed(0)
    model = timm.create_model("sr_resnet50", num_classes=10, zero_init_last=False)
    with torch.no_grad():
        model(torch.randn(4, 3, 64, 64))  # running statistics that are not the identity
    model.eval()
    block, x = model.layer2[1], torch.randn(2, 3, 64, 64)

    def assert_paths_agree(dtype=torch.float32):
        with torch.no_grad():
            cached = model(x.to(dtype))
        torch.testing.assert_close(cached, model(x.to(dtype)).detach())

    assert_paths_agree()
    assert block.conv3_gate_map()[0] is block.conv3_gate_map()[0]  # made once, reused
    with torch.no_grad():
        block.conv3.weight.mul_(1.5)
        block.bn3.running_var.mul_(2.0)
        block.se.reasoning.adjacency.weight.add_(0.1)
    assert_paths_agree()
    other = timm.create_model("sr_resnet50", num_classes=10, zero_init_last=False)
    with torch.no_grad():
        other(torch.randn(4, 3, 64, 64))
    model.load_state_dict(other.state_dict())
    assert_paths_agree()
    model.double()
    assert block.conv3_gate_map()[0].dtype == torch.float64
    assert_paths_agree(torch.float64)
    with torch.inference_mode():
        made_in_inference = timm.create_model("sr_resnet50", num_classes=10, zero_init_last=False).eval()
        made_in_inference.load_state_dict(other.state_dict())
        assert made_in_inference.layer2[1].conv3_gate_map() is None
        torch.testing.assert_close(made_in_inference(x), model.float()(x))


def test_an_empty_batch_gives_empty_logits_as_in_resnet50():
    """An empty batch (N = 0, e.g. the last shard of a split) runs as in timm's resnet50, in eval on the cached gate map
    and with autograd on the composed gate."""
    model, x = timm.create_model("sr_resnet50", num_classes=7).eval(), torch.randn(0, 3, 64, 64)
    with torch.no_grad():
        assert model(x).shape == (0, 7)
    assert model(x).shape == (0, 7)


@pytest.mark.parametrize("name, attn_layer, built", [("sr_resnet50", "se", "SEModule"), ("sr_resnet18", None, "NoneType")])
def test_another_attention_layer_in_sr_blocks_fails_in_one_line(name, attn_layer, built):
    with pytest.raises(TypeError, match=f"applies an SR gate in its residual sum, but its attn_layer built {built}; "
                                        "for another attention layer pass timm's block") as raised:
        timm.create_model(name, block_args=dict(attn_layer=attn_layer))
    assert "\n" not in str(raised.value)
    assert type(timm.create_model(name, block=Bottleneck if name == "sr_resnet50" else BasicBlock,
                                  block_args=dict(attn_layer=attn_layer)).layer1[0].se).__name__ == built


@pytest.mark.parametrize("name", FAMILY)
def test_create_and_classify(name):
    model = timm.create_model(name, num_classes=7).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, 7)
    assert model.num_classes == 7 and model.num_features > 0


def test_pretrained_cfg_is_complete():
    cfg = timm.create_model("sr_resnet50").pretrained_cfg
    for key in ("input_size", "mean", "std", "crop_pct", "first_conv", "classifier", "license", "paper_ids"):
        assert cfg.get(key), key
    assert cfg["hf_hub_id"].endswith("/sr_resnet50.in1k")


def test_hub_org_comes_from_the_environment(tmp_path):
    import os
    import subprocess
    import sys
    code = "import sr_models, timm; print(timm.create_model('sr_resnet18').pretrained_cfg['hf_hub_id'])"
    env = dict(os.environ, SR_MODELS_HUB_ORG="my-lab")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "my-lab/sr_resnet18.in1k"


def test_features_only_at_output_stride_8():
    model = timm.create_model("sr_resnet50", features_only=True, output_stride=8).eval()
    assert model.feature_info.reduction() == [2, 4, 8, 8, 8]
    assert model.feature_info.channels() == [64, 256, 512, 1024, 2048]
    with torch.no_grad():
        feats = model(torch.randn(1, 3, 64, 96))
    assert [tuple(f.shape[1:]) for f in feats][-1] == (2048, 8, 12)


def test_gradients_reach_the_gates():
    # timm zero-initialises the last BN of each block, which feeds the gate: start from a trained-like state
    model = timm.create_model("sr_resnet18", num_classes=3, zero_init_last=False)
    model(torch.randn(2, 3, 32, 32)).logsumexp(1).sum().backward()
    grads = [p.grad for n, p in model.named_parameters() if ".se." in n]
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)


def test_sr_resnet_exports():
    model = timm.create_model("sr_resnet18", num_classes=5).eval()
    x = torch.randn(1, 3, 64, 64)
    program = torch.export.export(model, (x,))
    with torch.no_grad():
        torch.testing.assert_close(program.module()(x), model(x))
