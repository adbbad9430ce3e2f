"""The "sfsegnets" preset of the SR module (the authors' released ChannelReasonModule) and the weight converter.

Expected values are computed by hand here; nothing depends on the authors' code.
"""
import math
import re
from pathlib import Path

import pytest
import timm
import torch
import torch.nn.functional as F
import yaml

import sr_models  # noqa: F401  (registers the models)
from sr_models.layers import GraphReasoning, SqueezeReasoning, convert_sfsegnets_state_dict
from sr_models.profile import count_params

A = [[1.0, 2.0], [0.0, -1.0]]  # A_g for K = 2 nodes


def _graph(adjacency, node_layout, bn_k=((1.0, 2.0), (0.0, -1.0)), w_g=((1.0, 1.0), (0.0, 1.0))):
    """K = 2 nodes of d = 2; A_g = A, W_g = w_g, BN_K with (weight, bias) = bn_k and identity statistics,
    the state BN an identity (running mean 0, var 1 - eps)."""
    gcn = GraphReasoning(2, 2, adjacency=adjacency, node_layout=node_layout).eval()
    with torch.no_grad():
        gcn.adjacency.weight.copy_(torch.tensor(A))
        gcn.state.weight.copy_(torch.tensor(w_g))
        for bn in (gcn.adjacency_norm, gcn.norm):
            if bn is not None:
                bn.running_mean.zero_()
                bn.running_var.fill_(1 - bn.eps)
        if gcn.adjacency_norm is not None:
            gcn.adjacency_norm.weight.copy_(torch.tensor(bn_k[0]))
            gcn.adjacency_norm.bias.copy_(torch.tensor(bn_k[1]))
    return gcn


def test_residual_bn_relu_adjacency_on_strided_nodes_by_hand():
    # g = [1, 2, 3, 4]; strided: channel j*K + k -> node k, state j: Z = [[1, 3], [2, 4]]
    # A Z = [[1*1 + 2*2, 1*3 + 2*4], [-2, -4]] = [[5, 11], [-2, -4]]
    # BN_K (node 0: x1 + 0, node 1: x2 - 1) = [[5, 11], [-5, -9]]; ReLU = [[5, 11], [0, 0]]
    # Z1 = Z + that = [[6, 14], [2, 4]]; W_g = [[1, 1], [0, 1]] per node: [[20, 14], [6, 4]]; ReLU, node-major out
    gcn = _graph("residual_bn_relu", "strided")
    with torch.no_grad():
        out = gcn(torch.tensor([[1.0, 2.0, 3.0, 4.0]]))
    torch.testing.assert_close(out, torch.tensor([[20.0, 14.0, 6.0, 4.0]]), atol=1e-4, rtol=1e-5)


def test_laplacian_adjacency_on_contiguous_nodes_by_hand():
    # contiguous: Z = [[1, 2], [3, 4]]; A Z = [[7, 10], [-3, -4]]; Z - A Z = [[-6, -8], [6, 8]]
    # W_g = [[1, 1], [0, 1]]: [[-14, -8], [14, 8]]; ReLU: [[0, 0], [14, 8]]
    gcn = _graph("laplacian", "contiguous")
    assert gcn.adjacency_norm is None
    with torch.no_grad():
        out = gcn(torch.tensor([[1.0, 2.0, 3.0, 4.0]]))
    torch.testing.assert_close(out, torch.tensor([[0.0, 0.0, 14.0, 8.0]]), atol=1e-4, rtol=1e-5)


def test_strided_nodes_come_back_node_major_without_permuting():
    """With A_g Z masked by ReLU(BN_K(.)) = 0 and W_g = I, the output is the input re-ordered: out[k d + j] = g[j K + k]."""
    gcn = _graph("residual_bn_relu", "strided", bn_k=((0.0, 0.0), (0.0, 0.0)), w_g=((1.0, 0.0), (0.0, 1.0)))
    with torch.no_grad():
        out = gcn(torch.tensor([[1.0, 2.0, 3.0, 4.0]]))
    torch.testing.assert_close(out, torch.tensor([[1.0, 3.0, 2.0, 4.0]]), atol=1e-4, rtol=1e-5)


def test_bn_k_normalises_each_node_over_batch_and_states_in_training():
    gcn = GraphReasoning(2, 2, adjacency="residual_bn_relu", node_layout="strided").train()
    with torch.no_grad():
        gcn.adjacency.weight.copy_(torch.eye(2))  # A Z = Z
        gcn.state.weight.copy_(torch.eye(2))
    g = torch.tensor([[1.0, 2.0, 3.0, 4.0], [5.0, -6.0, 7.0, 8.0]])
    nodes = g.reshape(2, 2, 2).transpose(1, 2)  # strided: (N, K, d)
    # node k normalised over its 4 values (2 samples x 2 states), biased variance, eps 1e-5
    mean = nodes.mean((0, 2), keepdim=True)
    var = nodes.var((0, 2), unbiased=False, keepdim=True)
    z1 = nodes + ((nodes - mean) / torch.sqrt(var + 1e-5)).relu()
    expected = F.batch_norm(z1.transpose(1, 2), None, None, training=True).relu().transpose(1, 2).reshape(2, 4)
    torch.testing.assert_close(gcn(g), expected)
    torch.testing.assert_close(gcn.adjacency_norm.running_mean, 0.1 * mean.flatten())


def test_sfsegnets_preset_is_the_released_configuration():
    module = SqueezeReasoning.sfsegnets(512, 256)
    gcn = module.reasoning.op
    assert (gcn.num_nodes, gcn.node_dim, gcn.node_layout) == (32, 8, "strided")
    assert gcn.adjacency_norm is not None and module.squeeze.pool == "sum" and module.squeeze.proj_c is not None
    assert module.reconstruction.proj.groups == 256 and module.reconstruction.norm.num_groups == 256
    # ChannelReasonModule(512, 256): t, p, g (512 -> 256), grouped z (1 weight per output), GroupNorm(256, 512),
    # conv_adj 32 x 32 + BN(32), conv_wg 8 x 8 + BN(8)
    assert count_params(module) == 3 * 512 * 256 + 512 + 2 * 512 + 32 * 32 + 2 * 32 + 8 * 8 + 2 * 8


def test_sfsegnets_gradients_reach_everything_in_float64():
    torch.manual_seed(0)
    module = SqueezeReasoning.sfsegnets(8, 4, num_nodes=2).double().train()
    x = torch.randn(3, 8, 3, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(module, (x,), fast_mode=True)  # no in-place write breaks autograd
    module(x).square().sum().backward()
    for name, p in module.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient reaches {name}"


def _their_module_state(inplanes=8, planes=4, nodes=2, seed=0):
    """A synthetic state dict with ChannelReasonModule's names and layouts (Conv1d weights are (out, in, 1))."""
    g = torch.Generator().manual_seed(seed)
    d = planes // nodes
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    sd = {"t.weight": r(planes, inplanes, 1, 1), "p.weight": r(planes, inplanes, 1, 1),
          "g.weight": r(planes, inplanes, 1, 1), "z.weight": r(inplanes, 1, 1, 1),
          "gn.weight": r(inplanes), "gn.bias": r(inplanes),
          "conv_adj.weight": r(nodes, nodes, 1), "conv_wg.weight": r(d, d, 1)}
    for bn, n in (("bn_adj", nodes), ("bn_wg", d)):
        sd.update({f"{bn}.weight": r(n), f"{bn}.bias": r(n), f"{bn}.running_mean": r(n),
                   f"{bn}.running_var": r(n).abs() + 0.5, f"{bn}.num_batches_tracked": torch.tensor(7)})
    return sd


def test_converter_maps_every_module_tensor_to_its_place():
    theirs = _their_module_state()
    module = SqueezeReasoning.sfsegnets(8, 4, num_nodes=2)
    module.load_state_dict(convert_sfsegnets_state_dict({"module." + k: v for k, v in theirs.items()}), strict=True)
    ours = module.state_dict()
    torch.testing.assert_close(ours["proj_x.weight"], theirs["t.weight"])
    torch.testing.assert_close(ours["squeeze.proj_b.weight"], theirs["p.weight"])
    torch.testing.assert_close(ours["squeeze.proj_c.weight"], theirs["g.weight"])
    torch.testing.assert_close(ours["reasoning.op.adjacency.weight"], theirs["conv_adj.weight"][..., 0])
    torch.testing.assert_close(ours["reasoning.op.state.weight"], theirs["conv_wg.weight"][..., 0])
    torch.testing.assert_close(ours["reasoning.op.adjacency_norm.running_var"], theirs["bn_adj.running_var"])
    torch.testing.assert_close(ours["reasoning.op.norm.bias"], theirs["bn_wg.bias"])
    torch.testing.assert_close(ours["reconstruction.proj.weight"], theirs["z.weight"])
    torch.testing.assert_close(ours["reconstruction.norm.weight"], theirs["gn.weight"])


def _bn(x, sd, name, training=False):
    """Their BatchNorm `name` by hand: batch statistics in training, running statistics in eval."""
    stats = (None, None) if training else (sd[f"{name}.running_mean"], sd[f"{name}.running_var"])
    return F.batch_norm(x, *stats, sd[f"{name}.weight"], sd[f"{name}.bias"], training=training)


def _released_channel_reason(x, sd, nodes, training=False, prefix=""):
    """ChannelReasonModule's forward written out on their tensors: sums of p*g, strided nodes, Z + ReLU(BN(A Z)),
    W_g + BN + ReLU, node-major out, grouped W_R, GroupNorm, residual."""
    sd = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
    conv = lambda name: F.conv2d(x, sd[name])  # noqa: E731
    v = (conv("p.weight") * conv("g.weight")).sum((2, 3))  # (N, C')
    z = torch.stack([v[:, k::nodes] for k in range(nodes)], dim=1)  # node k = channels k, k + K, ...: (N, K, d)
    z = z + _bn(torch.einsum("kl,nld->nkd", sd["conv_adj.weight"][..., 0], z), sd, "bn_adj", training).relu()
    z = _bn(torch.einsum("ij,njk->nik", sd["conv_wg.weight"][..., 0], z.transpose(1, 2)), sd, "bn_wg", training).relu()
    z = z.transpose(1, 2).reshape(v.shape)  # node-major
    y = F.conv2d(conv("t.weight") * z[:, :, None, None], sd["z.weight"], groups=v.shape[1])
    return F.group_norm(y, v.shape[1], sd["gn.weight"], sd["gn.bias"]) + x


def test_converted_module_computes_the_released_forward_by_hand():
    """Their forward written out with the converted tensors: sums of p*g, strided nodes, Z + ReLU(BN(A Z))."""
    sd = _their_module_state()
    module = SqueezeReasoning.sfsegnets(8, 4, num_nodes=2).eval()
    module.load_state_dict(convert_sfsegnets_state_dict(sd))
    x = torch.randn(2, 8, 3, 3, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(module(x), _released_channel_reason(x, sd, nodes=2))


def test_converter_renames_the_srnet_and_folds_the_aux_conv_bias():
    model = timm.create_model("srnet_resnet18_d8", sr_preset="sfsegnets", num_classes=3).eval()
    ours = model.state_dict()
    g = torch.Generator().manual_seed(0)
    theirs = {
        "module.layer1.0.conv1.weight": torch.randn(ours["backbone.layer1.0.conv1.weight"].shape, generator=g),
        "module.head.conva.0.weight": torch.randn(ours["head.context.0.conv.weight"].shape, generator=g),
        "module.head.convb.1.running_var": torch.rand(256, generator=g) + 0.5,
        "module.head.bottleneck.3.bias": torch.randn(3, generator=g),
        "module.aux_layer.aux.0.weight": torch.randn(ours["aux_head.conv.conv.weight"].shape, generator=g),
        "module.aux_layer.aux.0.bias": torch.randn(256, generator=g),
        "module.aux_layer.aux.1.running_mean": torch.randn(256, generator=g),
        **{f"module.head.module.{k}": v for k, v in _their_module_state(256, 128, 32).items()},
    }
    converted = convert_sfsegnets_state_dict(theirs)
    assert {k: ours[k].shape for k in converted} == {k: v.shape for k, v in converted.items()}  # names and shapes
    assert convert_sfsegnets_state_dict({"layer0.0.6.weight": torch.zeros(1), "layer0.1.bias": torch.zeros(1)}
                                        ).keys() == {"backbone.conv1.6.weight", "backbone.bn1.bias"}
    model.load_state_dict(converted, strict=False)
    x = torch.randn(1, 256, 5, 5, generator=g)
    bn = model.aux_head.conv.bn
    expected = F.batch_norm(F.conv2d(x, theirs["module.aux_layer.aux.0.weight"], theirs["module.aux_layer.aux.0.bias"],
                                     padding=1), theirs["module.aux_layer.aux.1.running_mean"], bn.running_var,
                            bn.weight, bn.bias).relu()
    with torch.no_grad():
        torch.testing.assert_close(model.aux_head.conv(x), expected, atol=1e-5, rtol=1e-5)


def test_converter_refuses_unknown_keys_and_layouts():
    with pytest.raises(ValueError, match="unexpected key 'head.fancy.weight'"):
        convert_sfsegnets_state_dict({"head.fancy.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match=r"expected a Conv1d weight \(out, in, 1\)"):
        convert_sfsegnets_state_dict({"conv_adj.weight": torch.zeros(2, 2)})


def test_srnet_takes_the_preset_and_refuses_unknown_ones():
    model = timm.create_model("srnet_resnet18_d8", sr_preset="sfsegnets", num_classes=3).eval()
    sr = model.head.context[1]
    assert isinstance(sr, SqueezeReasoning) and sr.reasoning.op.node_layout == "strided"
    assert sr.reasoning.op.num_nodes == 32 and sr.squeeze.pool == "sum"
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 3, 32, 32)
    with pytest.raises(ValueError, match="sr_preset='paper2' is not one of 'sfsegnets'"):
        timm.create_model("srnet_resnet18_d8", sr_preset="paper2")


def test_strided_layout_is_contiguous_with_permuted_squeeze_projections():
    """Channel j*K + k -> node k in, node-major out: the contiguous module with W_B, W_C rows reordered to
    k*d + j <- j*K + k computes the same function (capacity identical, weights not interchangeable)."""
    torch.manual_seed(0)
    strided = SqueezeReasoning(16, num_nodes=4, node_layout="strided").eval()
    contiguous = SqueezeReasoning(16, num_nodes=4).eval()
    contiguous.load_state_dict(strided.state_dict())
    x = torch.randn(2, 16, 5, 4)
    with torch.no_grad():
        assert not torch.allclose(contiguous(x), strided(x), atol=1e-3)  # same weights, another function
    k_nodes, d = 4, 2
    order = torch.tensor([j * k_nodes + k for k in range(k_nodes) for j in range(d)])  # new row k*d + j
    with torch.no_grad():
        for proj in (contiguous.squeeze.proj_b, contiguous.squeeze.proj_c):
            proj.weight.copy_(proj.weight[order])
        torch.testing.assert_close(contiguous(x), strided(x))


def test_srnet_preset_dilates_every_block_of_layer3_and_layer4():
    """The released resnet_d dilates every block's 3x3 conv (2 in layer3, 4 in layer4); the paper's default keeps
    timm's first_dilation (the previous stage's) in each stage's first block."""
    released = timm.create_model("srnet_resnet101_d8", sr_preset="sfsegnets", device="meta")
    default = timm.create_model("srnet_resnet101_d8", device="meta")
    for stage, dilation, first in (("layer3", 2, 1), ("layer4", 4, 2)):
        blocks = released.backbone.get_submodule(stage)
        assert [b.conv2.dilation for b in blocks] == [(dilation, dilation)] * len(blocks)
        assert [b.conv2.padding for b in blocks] == [(dilation, dilation)] * len(blocks)
        assert [b.conv2.dilation[0] for b in default.backbone.get_submodule(stage)[:2]] == [first, dilation]
    for stage in ("layer1", "layer2"):
        assert {b.conv2.dilation for b in released.backbone.get_submodule(stage)} == {(1, 1)}


def test_srnet_preset_is_the_released_head_and_explicit_arguments_win():
    model = timm.create_model("srnet_resnet18_d8", sr_preset="sfsegnets", device="meta")
    assert (model.head.dropout.p, model.aux_head.dropout.p, model.align_corners) == (0.0, 0.1, True)
    assert model.backbone.layer4[0].conv1.dilation == (4, 4)
    model = timm.create_model("srnet_resnet18_d8", sr_preset="sfsegnets", device="meta", dropout=0.2,
                              align_corners=False, dilate_first_block=False)
    assert (model.head.dropout.p, model.aux_head.dropout.p, model.align_corners) == (0.2, 0.1, False)
    assert model.backbone.layer4[0].conv1.dilation == (2, 2)  # timm's first_dilation
    with pytest.raises(ValueError, match="head_init='xavier' is not one of 'default', 'kaiming_normal'"):
        timm.create_model("srnet_resnet18_d8", backbone="resnet10t", head_init="xavier")
    with pytest.raises(ValueError, match=r"aux_dropout=1.5 must be in \[0, 1\)"):
        timm.create_model("srnet_resnet18_d8", backbone="resnet10t", aux_dropout=1.5)


def test_srnet_preset_initialises_the_heads_with_kaiming_normal():
    """mynn.initialize_weights: every Conv2d weight ~ N(0, 2 / fan_in), biases 0; torch's default has std
    1 / sqrt(3 fan_in), a factor sqrt(6) smaller."""
    torch.manual_seed(0)
    kwargs = dict(backbone="resnet10t", num_classes=3)
    for preset, factor in (("sfsegnets", 1.0), (None, 6 ** -0.5)):
        model = timm.create_model("srnet_resnet18_d8", sr_preset=preset, **kwargs)
        w = model.head.bottleneck.conv.weight  # 256 x (512 + 256) x 3 x 3
        expected = factor * (2 / w[0].numel()) ** 0.5
        assert abs(w.std().item() / expected - 1) < 0.02, (preset, w.std().item(), expected)
        biases = [model.head.classifier.bias, model.aux_head.classifier.bias]
        assert all(not b.any() for b in biases) == (preset is not None)


def _random_like(shapes, seed=0):
    """Random tensors in their naming: conv weights ~ N(0, 1 / fan_in), BatchNorms around the identity."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, shape in shapes.items():
        if name.endswith("num_batches_tracked"):
            out[name] = torch.tensor(7)
        elif name.endswith("running_var"):
            out[name] = torch.rand(shape, generator=g) + 0.5
        elif len(shape) > 1:
            out[name] = torch.randn(shape, generator=g) / math.prod(shape[1:]) ** 0.5
        else:
            out[name] = 0.1 * torch.randn(shape, generator=g) + (1.0 if name.endswith("weight") else 0.0)
    return out


def _their_bn(prefix, n):
    return {f"{prefix}.{k}": (n,) for k in ("weight", "bias", "running_mean", "running_var")} | \
        {f"{prefix}.num_batches_tracked": ()}


def _their_srnet_state(backbone, channels, nodes, num_classes):
    """Their SRNet state dict (names of network/srnet.py) around a timm ResNet's: layer0 = (conv1, bn1) and
    layer1-4, ModuleHead(C4, D, D, n, ChannelReasonModule(D, D / 2)), Aux_Module(C3, n) with its conv bias."""
    shapes = {re.sub(r"^conv1\.", "layer0.0.", re.sub(r"^bn1\.", "layer0.1.", k)): tuple(v.shape)
              for k, v in backbone.state_dict().items() if not k.startswith("fc.")}
    c3, c4 = backbone.layer3[-1].conv3.out_channels, backbone.layer4[-1].conv3.out_channels
    shapes |= {"head.conva.0.weight": (channels, c4, 3, 3), **_their_bn("head.conva.1", channels),
               "head.convb.0.weight": (channels, channels, 3, 3), **_their_bn("head.convb.1", channels),
               "head.bottleneck.0.weight": (channels, c4 + channels, 3, 3), **_their_bn("head.bottleneck.1", channels),
               "head.bottleneck.3.weight": (num_classes, channels, 1, 1), "head.bottleneck.3.bias": (num_classes,),
               "aux_layer.aux.0.weight": (256, c3, 3, 3), "aux_layer.aux.0.bias": (256,),
               **_their_bn("aux_layer.aux.1", 256),
               "aux_layer.aux.4.weight": (num_classes, 256, 1, 1), "aux_layer.aux.4.bias": (num_classes,)}
    sr = _their_module_state(channels, channels // 2, nodes, seed=1)
    sd = _random_like(shapes) | {f"head.module.{k}": v for k, v in sr.items()}
    return {k: v.double() if v.is_floating_point() else v for k, v in sd.items()}


def _released_backbone(backbone, sd):
    """Their resnet_d variant "D" on a timm ResNet built at output stride 32: every conv2 of layer3 (layer4) at
    dilation 2 (4), the strides of layer3/4 moved to 1, as network/srnet.py does it."""
    missing, _ = backbone.load_state_dict({re.sub(r"^layer0\.0\.", "conv1.", re.sub(r"^layer0\.1\.", "bn1.", k)): v
                                           for k, v in sd.items() if k.startswith("layer")}, strict=False)
    assert missing == ["fc.weight", "fc.bias"]
    for stage, dilation in (("layer3", 2), ("layer4", 4)):
        for name, m in backbone.get_submodule(stage).named_modules():
            if name.endswith("conv2"):
                m.dilation, m.padding, m.stride = (dilation, dilation), (dilation, dilation), (1, 1)
            elif name.endswith("downsample.0"):
                m.stride = (1, 1)
    return backbone


def _released_srnet(x, sd, backbone, nodes, training):
    """Their SRNet forward by hand: x3, x4 from the backbone; ModuleHead (no dropout), Aux_Module (its dropout
    left out), both upsampled with align_corners=True."""
    b = backbone
    x3 = b.layer3(b.layer2(b.layer1(b.maxpool(b.act1(b.bn1(b.conv1(x)))))))
    x4 = b.layer4(x3)
    cbr = lambda t, conv, bn, bias=None: _bn(F.conv2d(t, sd[conv], bias, padding=1), sd, bn, training).relu()  # noqa
    h = cbr(x4, "head.conva.0.weight", "head.conva.1")
    h = _released_channel_reason(h, sd, nodes, training, prefix="head.module.")
    h = cbr(h, "head.convb.0.weight", "head.convb.1")
    h = cbr(torch.cat([x4, h], 1), "head.bottleneck.0.weight", "head.bottleneck.1")
    main = F.conv2d(h, sd["head.bottleneck.3.weight"], sd["head.bottleneck.3.bias"])
    a = cbr(x3, "aux_layer.aux.0.weight", "aux_layer.aux.1", sd["aux_layer.aux.0.bias"])
    aux = F.conv2d(a, sd["aux_layer.aux.4.weight"], sd["aux_layer.aux.4.bias"])
    return [F.interpolate(t, size=x.shape[-2:], mode="bilinear", align_corners=True) for t in (main, aux)]


def test_released_srnet_converted_into_the_preset_computes_their_forward():
    """A synthetic state dict in their naming, converted and loaded strict into the preset SRNet (float64, a
    ResNet-26 trunk, D = 64, K = 8): the logits equal their network's forward written out independently, in eval
    and in train mode (batch statistics, main and auxiliary logits; the head has no dropout, the auxiliary head's
    0.1 is switched off)."""
    kwargs = dict(backbone="resnet26", channels=64, num_nodes=8, num_classes=3)
    model = timm.create_model("srnet_resnet50_d8", sr_preset="sfsegnets", **kwargs).double()
    reference = timm.create_model("resnet26").double()
    sd = _their_srnet_state(reference, 64, 8, 3)
    model.load_state_dict(convert_sfsegnets_state_dict(sd), strict=True)
    reference = _released_backbone(reference, sd)
    x = torch.randn(2, 3, 37, 35, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), _released_srnet(x, sd, reference.eval(), 8, training=False)[0])
        model.train().aux_head.dropout.eval()
        torch.testing.assert_close(model(x), tuple(_released_srnet(x, sd, reference.train(), 8, training=True)))
        model.align_corners = False  # the paper's upsampling on the same network gives other logits
        assert not torch.allclose(model(x)[0], _released_srnet(x, sd, reference, 8, training=True)[0], atol=1e-3)


def test_sfsegnets_recipe_builds_the_released_network():
    recipe = Path(__file__).parents[1] / "train" / "configs" / "srnet_r101_cityscapes_sfsegnets.yaml"
    cfg = yaml.safe_load(recipe.read_text())["model"]  # as build_segmentation_task creates it
    model = timm.create_model(cfg["name"], device="meta", **cfg["args"])
    assert (model.head.dropout.p, model.aux_head.dropout.p, model.align_corners) == (0.0, 0.1, True)
    assert model.backbone.layer3[0].conv2.dilation == (2, 2) and model.backbone.layer4[0].conv2.dilation == (4, 4)
    sr = model.head.context[1]
    assert (sr.reasoning.op.num_nodes, sr.reasoning.op.node_layout, sr.squeeze.pool) == (32, "strided", "sum")


def test_a_saved_preset_model_reloads_as_the_released_network(tmp_path):
    """The folder records `sr_preset` as given (timm's model_args); reloading expands it to the same network."""
    model = timm.create_model("srnet_resnet18_d8", channels=32, num_nodes=8, sr_preset="sfsegnets",
                              num_classes=3).eval()
    sr_models.save_pretrained(model, tmp_path / "run")
    reloaded = timm.create_model(f"local-dir:{tmp_path / 'run'}", pretrained=True).eval()
    assert (reloaded.align_corners, reloaded.head.dropout.p, reloaded.backbone.layer4[0].conv1.dilation) == \
        (True, 0.0, (4, 4))
    x = torch.randn(1, 3, 40, 36)
    with torch.no_grad():
        torch.testing.assert_close(reloaded(x), model(x))
