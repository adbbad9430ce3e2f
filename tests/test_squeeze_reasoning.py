"""The SR module (Section III-B): every Table III variant, the Table IV budget, and its error messages."""
import copy
import itertools

import pytest
import torch

from sr_models.layers import SqueezeReasoning, SqueezeReasoningGate
from sr_models.profile import count_macs, count_params

VARIANTS = list(itertools.product(("gap", "ghp"), ("none", "fc", "gcn", "sa")))


@pytest.mark.parametrize("squeeze,reasoning", VARIANTS)
def test_every_variant_keeps_shape_and_trains(squeeze, reasoning):
    torch.manual_seed(0)
    module = SqueezeReasoning(64, num_nodes=8, squeeze=squeeze, reasoning=reasoning)
    x = torch.randn(2, 64, 11, 7, requires_grad=True)
    y = module(x)
    assert y.shape == x.shape
    y.square().mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for name, p in module.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient reaches {name}"


@pytest.mark.parametrize("squeeze,params,macs", [("gap", 0.26e6, 2.43e9), ("ghp", 0.40e6, 3.64e9)])
def test_sr_head_matches_table4_budget(squeeze, params, macs):
    module = SqueezeReasoning(512, reduction=2, num_nodes=16, squeeze=squeeze, reasoning="gcn")
    assert round(count_params(module) / 1e6, 2) == pytest.approx(params / 1e6)
    assert count_macs(module, (1, 512, 96, 96)) == pytest.approx(macs, rel=0.03)


def test_dense_reconstruction_costs_the_released_code_difference():
    grouped = SqueezeReasoning(512, squeeze="ghp", reconstruction="grouped")
    dense = SqueezeReasoning(512, squeeze="ghp", reconstruction="dense")
    assert round(count_params(dense) / 1e6, 2) == 0.53
    assert count_params(dense) - count_params(grouped) == 256 * 512 - 512  # dense vs grouped W_R weights


def test_ghp_mean_is_invariant_to_tiling_the_input():
    torch.manual_seed(0)
    module = SqueezeReasoning(32, num_nodes=4).eval()
    x = torch.randn(1, 32, 6, 5)
    tiled = x.repeat(1, 1, 3, 2)
    with torch.no_grad():
        g, g_tiled = module.squeeze(x), module.squeeze(tiled)
        y, y_tiled = module(x), module(tiled)
    torch.testing.assert_close(g, g_tiled)
    torch.testing.assert_close(y_tiled, y.repeat(1, 1, 3, 2))


def test_ghp_sum_scales_with_the_image_like_the_released_code():
    torch.manual_seed(0)
    module = SqueezeReasoning(32, num_nodes=4, pool="sum").eval()
    x = torch.randn(1, 32, 6, 5)
    with torch.no_grad():
        torch.testing.assert_close(module.squeeze(x.repeat(1, 1, 2, 2)), 4 * module.squeeze(x))


def test_gcn_follows_eq5_with_identity_residual():
    torch.manual_seed(0)
    module = SqueezeReasoning(32, num_nodes=4, reasoning="gcn").eval()
    gcn = module.reasoning.op
    g = torch.randn(3, 16)
    nodes = g.view(3, 4, 4)  # (N, K, d)
    a_g = gcn.adjacency.weight  # (K, K)
    w_g = gcn.state.weight  # (d, d)
    laplacian = torch.eye(4) - a_g
    expected = torch.einsum("ed,nkd->nke", w_g, torch.einsum("jk,nkd->njd", laplacian, nodes))
    bn = gcn.norm
    expected = (expected - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias
    with torch.no_grad():
        torch.testing.assert_close(gcn(g), expected.relu().reshape(3, 16))


def test_nodes_are_contiguous_channel_groups():
    """Node k holds channels [k*d, (k+1)*d): with A_g = 0 and W_g = I, reasoning is ReLU(BN(g)) channel-wise."""
    module = SqueezeReasoning(32, num_nodes=4).eval()
    gcn = module.reasoning.op
    with torch.no_grad():
        gcn.adjacency.weight.zero_()
        gcn.state.weight.copy_(torch.eye(4))
        g = torch.randn(2, 16)
        torch.testing.assert_close(gcn(g), g.relu())


@pytest.mark.parametrize("kwargs,message", [
    (dict(in_channels=512, num_nodes=12), "num_nodes=12 must divide the reduced channels (256)"),
    (dict(in_channels=510, reduction=4), "reduction=4 must divide in_channels (510)"),
    (dict(in_channels=64, squeeze="max"), "squeeze='max' is not one of"),
    (dict(in_channels=64, reasoning="lstm"), "reasoning='lstm' is not one of"),
    (dict(in_channels=64, pool="max"), "pool='max' is not one of"),
    (dict(in_channels=64, reconstruction="sparse"), "reconstruction='sparse' is not one of"),
    (dict(in_channels=0), "in_channels=0 must be a positive integer"),
    (dict(in_channels=64.0), "in_channels=64.0 must be a positive integer"),
    (dict(in_channels=64, reduction=0), "reduction=0 must be a positive integer"),
    (dict(in_channels=64, num_nodes=0), "num_nodes=0 must be a positive integer"),
    (dict(in_channels=64, reasoning="fc", fc_reduction=0), "fc_reduction=0 must be a positive integer"),
    (dict(in_channels=64, adjacency="dense"), "adjacency='dense' is not one of 'laplacian', 'residual_bn_relu'"),
    (dict(in_channels=64, node_layout="random"), "node_layout='random' is not one of 'contiguous', 'strided'"),
    (dict(in_channels=64, reasoning="sa", adjacency="residual_bn_relu"),
     "adjacency='residual_bn_relu' applies to reasoning='gcn' only, got reasoning='sa'"),
    (dict(in_channels=64, reasoning="fc", node_layout="strided"),
     "node_layout='strided' applies to reasoning='gcn' or 'sa', got reasoning='fc'"),
])
def test_bad_arguments_fail_clearly(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        SqueezeReasoning(**kwargs)


def test_bad_preset_arguments_fail_clearly():
    with pytest.raises(ValueError, match=r"inter_channels=300 must divide in_channels \(512\)"):
        SqueezeReasoning.sfsegnets(512, 300)
    with pytest.raises(ValueError, match="sr_preset='released' is not one of 'sfsegnets'"):
        SqueezeReasoning.from_preset("released", 64)


@pytest.mark.parametrize("shape,message", [((1, 32, 8), "4-D"), ((1, 16, 8, 8), "32 input channels, got 16")])
def test_bad_input_fails_clearly(shape, message):
    with pytest.raises(ValueError, match=message):
        SqueezeReasoning(32, num_nodes=4)(torch.randn(*shape))


def test_integer_input_fails_clearly_and_empty_batches_pass():
    module = SqueezeReasoning(32, num_nodes=4).eval()
    with pytest.raises(TypeError, match="SqueezeReasoning expects a floating-point tensor .* got torch.uint8"):
        module(torch.zeros(1, 32, 4, 4, dtype=torch.uint8))
    for reasoning in ("gcn", "sa"):
        assert SqueezeReasoning(32, num_nodes=4, reasoning=reasoning).eval()(torch.zeros(0, 32, 4, 4)).shape == (
            0, 32, 4, 4)


def test_gate_scales_channels_and_accepts_timm_factory_kwargs():
    torch.manual_seed(0)
    gate = SqueezeReasoningGate(64, device="cpu", dtype=torch.float32)
    x = torch.rand(2, 64, 5, 5) + 0.1
    y = gate(x)
    ratio = y / x
    # one factor per (sample, channel), in (0, 1): a sigmoid gate
    torch.testing.assert_close(ratio, ratio[:, :, :1, :1].expand_as(ratio))
    assert ((ratio > 0) & (ratio < 1)).all()
    with pytest.raises(ValueError, match="num_nodes=16 must divide the channels \\(40\\)"):
        SqueezeReasoningGate(40)


def test_gate_is_eq5_on_the_global_average_in_every_dtype_path():
    # the gate runs Eq. 5 as one baddbmm + one linear: it must equal GraphReasoning's own forward on GAP(x)
    torch.manual_seed(0)
    gate = SqueezeReasoningGate(64).eval()
    torch.nn.init.normal_(gate.reasoning.adjacency.weight, std=0.3)  # a real A_g (I - A_g is not the identity)
    torch.nn.init.normal_(gate.reasoning.state.bias)
    x = torch.randn(3, 64, 5, 7)
    reference = x * gate.reasoning(x.mean((2, 3))).sigmoid()[:, :, None, None]
    torch.testing.assert_close(gate(x), reference)
    torch.testing.assert_close(gate(x.contiguous(memory_format=torch.channels_last)), reference)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = gate(x.bfloat16())
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), reference, atol=0.05, rtol=0.02)
    # no autocast: a bf16 map with the float32 gate is cast in and out; a bf16 gate runs on it as it is
    for module in (gate, copy.deepcopy(gate).bfloat16()):
        out = module(x.bfloat16())
        assert out.dtype == torch.bfloat16
        torch.testing.assert_close(out.float(), reference, atol=0.05, rtol=0.02)


def test_sr_module_exports():
    torch.manual_seed(0)
    module = SqueezeReasoning(32, num_nodes=4).eval()
    x = torch.randn(1, 32, 9, 7)
    program = torch.export.export(module, (x,))
    torch.testing.assert_close(program.module()(x), module(x))


def test_gate_linear_map_is_eq5_as_one_matrix():
    torch.manual_seed(0)
    gate = SqueezeReasoningGate(64, num_nodes=8)
    torch.nn.init.normal_(gate.reasoning.adjacency.weight, std=0.3)
    torch.nn.init.normal_(gate.reasoning.state.bias)
    pooled = torch.randn(3, 64)
    m, b = gate.linear_map()
    assert m.shape == (64, 64)
    torch.testing.assert_close(torch.sigmoid(pooled @ m.T + b), gate.weights_from_pooled(pooled, 1.0).flatten(1))


def test_inplace_gate_matches_and_only_mutates_without_autograd():
    torch.manual_seed(0)
    gate = SqueezeReasoningGate(64, inplace=True)
    x = torch.rand(2, 64, 5, 5)
    reference = x.clone()
    with torch.no_grad():
        out = gate(x)
    assert out.data_ptr() == x.data_ptr() and not torch.equal(x, reference)  # rescaled in place
    x = reference.clone().requires_grad_()
    y = gate(x)  # with autograd the input must stay intact for the backward pass
    torch.testing.assert_close(y, out)
    y.sum().backward()
    assert x.grad is not None and torch.equal(x.detach(), reference)
