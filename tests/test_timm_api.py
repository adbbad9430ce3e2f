"""timm's model API on every model sr-models registers, segmenters included: the heads, features_only,
forward_intermediates, grad checkpointing, FX / TorchScript / torch.export at two input sizes, loading a saved folder
with a new class count, and the argument and input checks."""
import pytest
import timm
import torch
from timm.layers import get_notrace_functions, get_notrace_modules
from timm.models import FeatureInfo
from torch.export import Dim
from torchvision.models.feature_extraction import NodePathTracer

import sr_models
from sr_models.models import list_sr_models
from sr_models.models.segmentation import is_segmenter
from sr_models.models.srnet import SRNet

NAMES = list_sr_models()
SEGMENTERS = [name for name in NAMES if is_segmenter(name)]
SIZES = (64, 96)  # two input sizes, both multiples of every model's stride


def _fx(model: torch.nn.Module) -> torch.fx.GraphModule:
    """Symbolic trace with timm's FX helpers (its leaf modules and autowrapped functions), as timm's suite does."""
    tracer = NodePathTracer(leaf_modules=get_notrace_modules(), autowrap_functions=get_notrace_functions())
    return torch.fx.GraphModule(model, tracer.trace(model))


def _classifier_outputs(module: torch.nn.Module) -> int:
    return module.out_channels if isinstance(module, torch.nn.Conv2d) else module.out_features


@pytest.mark.parametrize("name", NAMES)
def test_model_api_shapes_on_meta(name):
    model = timm.create_model(name, device="meta").eval()
    x = torch.empty(2, 3, 64, 96, device="meta")
    features = model.forward_features(x)
    assert features.shape[:2] == (2, model.num_features)
    assert model.forward_head(features, pre_logits=True).shape[:2] == (2, model.head_hidden_size)
    info = FeatureInfo(model.feature_info, len(model.feature_info))
    intermediates = model.forward_intermediates(x, intermediates_only=True)
    assert [f.shape[1] for f in intermediates] == info.channels()
    assert [(f.shape[2], f.shape[3]) for f in intermediates] == [(64 // r, 96 // r) for r in info.reduction()]
    final, _ = model.forward_intermediates(x)
    assert final.shape == features.shape
    # the pretrained cfg names every classifier, so num_classes= at load time re-initialises them all
    in_cfg, names = model.pretrained_cfg["classifier"], model.get_classifier(name_only=True)
    assert (tuple(in_cfg) if isinstance(in_cfg, (tuple, list)) else (in_cfg,)) == (
        names if isinstance(names, tuple) else (names,))
    model.reset_classifier(7)
    classifiers = model.get_classifier()
    classifiers = classifiers if isinstance(classifiers, tuple) else (classifiers,)
    assert [_classifier_outputs(c) for c in classifiers] == [7] * len(classifiers)
    if is_segmenter(model):
        assert len(classifiers) == (2 if isinstance(model, SRNet) else 1)
        assert model(x).shape == (2, 7, 64, 96)
        outputs = model.train()(x)
        assert [o.shape for o in (outputs if isinstance(outputs, tuple) else (outputs,))] == [(2, 7, 64, 96)] * len(
            classifiers)
    else:
        assert model(x).shape == (2, 7)


@pytest.mark.parametrize("name", SEGMENTERS)
def test_segmenter_features_only_gives_the_backbone_levels(name):
    model = timm.create_model(name, features_only=True, device="meta")
    x = torch.empty(1, 3, 64, 96, device="meta")
    features = model(x)
    assert [f.shape[1] for f in features] == model.feature_info.channels()
    assert [(f.shape[2], f.shape[3]) for f in features] == [(64 // r, 96 // r) for r in model.feature_info.reduction()]
    assert [child for child, _ in model.model.named_children()] == ["backbone"]  # decoder and heads pruned
    last_two = timm.create_model(name, features_only=True, out_indices=(-2, -1), device="meta")
    assert [f.shape for f in last_two(x)] == [f.shape for f in features[-2:]]


def test_forward_intermediates_match_forward_features_and_the_backbone():
    model = timm.create_model("srnet_resnet18_d8", backbone="resnet10t", channels=32, num_classes=3).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        final, intermediates = model.forward_intermediates(x, indices=(1, 3))
        torch.testing.assert_close(final, model.forward_features(x))
        backbone = model.backbone(x)
        for feature, expected in zip(intermediates, (backbone[1], backbone[3])):
            torch.testing.assert_close(feature, expected)


@pytest.mark.parametrize("name, kwargs", [
    ("srnet_resnet18_d8", dict(backbone="resnet10t", channels=32, dropout=0.0)),
    ("srnet_dfnet1", dict(dropout=0.0)),
    ("dfnet1", dict(drop_rate=0.0)),
])
def test_grad_checkpointing_keeps_outputs_and_gradients(name, kwargs):
    results = []
    for enable in (False, True):
        torch.manual_seed(0)
        model = timm.create_model(name, num_classes=3, **kwargs).train()
        model.set_grad_checkpointing(enable)
        torch.manual_seed(1)
        out = model(torch.randn(2, 3, 32, 32))
        loss = sum(o.square().mean() for o in (out if isinstance(out, tuple) else (out,)))
        loss.backward()
        results.append((loss.detach(), [p.grad for p in model.parameters()]))
    torch.testing.assert_close(results[1][0], results[0][0])
    for with_checkpoints, without in zip(results[1][1], results[0][1]):
        torch.testing.assert_close(with_checkpoints, without, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", SEGMENTERS)
def test_backward_reaches_every_parameter(name):
    """timm's test_model_backward without its classifier-width assertion, eager and through the FX training graph."""
    torch.manual_seed(0)
    model = timm.create_model(name, num_classes=5).train()
    x = torch.randn(2, 3, 64, 64)
    for runnable in (model, _fx(model)):
        outputs = runnable(x)
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        assert all(o.shape == (2, 5, 64, 64) and not o.isnan().any() for o in outputs)
        sum(o.mean() for o in outputs).backward()
        missing = [n for n, p in runnable.named_parameters() if p.grad is None]
        assert not missing, f"no gradient for {missing[:5]}"
        model.zero_grad(set_to_none=True)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_fx_torchscript_and_export_at_two_sizes(name):
    """One trace / script / export (dynamic batch, height, width), run at two sizes and batch sizes, equals eager."""
    torch.manual_seed(0)
    with timm.set_scriptable(True):
        model = timm.create_model(name, num_classes=5).eval()
    inputs = [torch.randn(batch, 3, size, size) for batch, size in zip((2, 3), SIZES)]
    with torch.no_grad():
        expected = [model(x) for x in inputs]
        fx = _fx(model)
        scripted = torch.jit.script(model)
        dynamic = {0: Dim.AUTO, 2: Dim.AUTO, 3: Dim.AUTO}
        exported = torch.export.export(model, (inputs[0],), dynamic_shapes=(dynamic,)).module()
        for x, reference in zip(inputs, expected):
            for runnable in (fx, scripted, exported):
                torch.testing.assert_close(runnable(x), reference, rtol=1e-4, atol=1e-4)


def test_local_dir_num_classes_reinitialises_every_classifier(tmp_path):
    """timm's fine-tuning door on a saved segmenter: every classifier (aux included) is re-initialised."""
    model = timm.create_model("srnet_resnet18_d8", num_classes=4)
    sr_models.save_pretrained(model, tmp_path / "run")
    source = f"local-dir:{tmp_path / 'run'}"
    tuned = timm.create_model(source, pretrained=True, num_classes=7).train()
    assert [c.out_channels for c in tuned.get_classifier()] == [7, 7]
    saved = model.state_dict()
    for key, value in tuned.state_dict().items():
        if not key.endswith(("head.classifier.weight", "head.classifier.bias")):
            assert torch.equal(value, saved[key]), key
    logits, aux = tuned(torch.randn(2, 3, 64, 64))
    assert logits.shape == aux.shape == (2, 7, 64, 64)
    # timm's test_model_load_pretrained on the saved folder: a 1-channel input and a new head at once
    gray = timm.create_model(source, pretrained=True, in_chans=1, num_classes=5).eval()
    with torch.no_grad():
        assert gray(torch.randn(1, 1, 64, 64)).shape == (1, 5, 64, 64)
        same = timm.create_model(source, pretrained=True).eval()
        torch.testing.assert_close(same(torch.ones(1, 3, 64, 64)), model.eval()(torch.ones(1, 3, 64, 64)))
        features = timm.create_model(source, pretrained=True, features_only=True).eval()
        torch.testing.assert_close(features(torch.ones(1, 3, 64, 64))[-1], model.backbone(torch.ones(1, 3, 64, 64))[-1])


def test_is_segmenter_reads_the_model_not_its_name():
    assert is_segmenter("dfseg_dfnet2") and is_segmenter("fcn_resnet18_d8") and not is_segmenter("dfnet2")
    assert is_segmenter(SRNet(backbone="resnet10t", channels=32, num_classes=2))
    assert not is_segmenter(timm.create_model("resnet10t", device="meta"))


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(channels=0), ValueError, "SRNet: channels=0 must be a positive int"),
    (dict(num_classes=-1), ValueError, r"SRNet: num_classes=-1 must be an int >= 0"),
    (dict(output_stride=5), ValueError, "SRNet: output_stride=5 must be one of 8, 16, 32"),
    (dict(in_chans=0), ValueError, "SRNet: in_chans=0 must be a positive int"),
    (dict(context="nl", squeeze="gap"), TypeError, "context='nl' does not take squeeze; its options are rd_channels"),
    (dict(context="none", num_nodes=8), TypeError, "context='none' does not take num_nodes; it takes no options"),
    (dict(context="sw"), ValueError, r"unknown context='sw'; choose one of"),
])
def test_bad_model_arguments_fail_at_construction_in_one_line(kwargs, error, message):
    with pytest.raises(error, match=message) as raised:
        timm.create_model("srnet_resnet18_d8", backbone="resnet10t", **kwargs)
    assert "\n" not in str(raised.value)


def test_bad_arguments_of_the_other_families():
    with pytest.raises(ValueError, match="DFSeg: channels=-2 must be a positive int"):
        timm.create_model("srnet_dfnet1", channels=-2)
    with pytest.raises(TypeError, match="context='psp' does not take num_nodes"):
        timm.create_model("dfseg_dfnet1", num_nodes=8)
    with pytest.raises(ValueError, match="DFNet: num_classes=-3 must be an int >= 0"):
        timm.create_model("dfnet1", num_classes=-3)
    model = timm.create_model("srnet_resnet18_d8", backbone="resnet10t", channels=32, device="meta")
    with pytest.raises(ValueError, match="SRNet classifies every pixel and has no global pooling"):
        model.reset_classifier(3, "avg")


@pytest.mark.parametrize("name", ["srnet_resnet18_d8", "fcn_resnet18_d8", "srnet_dfnet1", "dfseg_dfnet1", "dfnet1",
                                  "sr_resnet18"])
def test_forward_refuses_bad_input_in_one_line_and_answers_empty_batches(name):
    model = timm.create_model(name, num_classes=3).eval()
    who = {"dfnet1": "DFNet", "srnet_dfnet1": "DFSeg", "dfseg_dfnet1": "DFSeg", "sr_resnet18": "SRResNet"}.get(name, "SRNet")
    for x, error, message in [
        (torch.randint(0, 255, (1, 3, 64, 64), dtype=torch.uint8), TypeError, f"{who} expects a floating-point"),
        (torch.randn(3, 64, 64), ValueError, f"{who} expects a 4-D"),
        (torch.randn(1, 4, 64, 64), ValueError, f"{who} was built for 3 input channels, got 4"),
    ] + [(torch.randn(1, 3, 64, 4), ValueError, f"{who} needs images of at least")] * is_segmenter(model):
        with pytest.raises(error, match=message) as raised:
            model(x)
        assert "\n" not in str(raised.value)
    with torch.no_grad():
        empty = model(torch.randn(0, 3, 64, 64))
    assert empty.shape == ((0, 3, 64, 64) if is_segmenter(model) else (0, 3))
