"""ONNX export (sr_models.export): export-safe pooling, parity with PyTorch in onnxruntime at a second input size,
the command line, and the SR gate's FX / TorchScript forms."""
from __future__ import annotations

import subprocess
import sys

import pytest
import timm
import torch
import torch.nn.functional as F

import sr_models  # noqa: F401
from sr_models.export import export_onnx, main, onnx_parity
from sr_models.layers import SqueezeReasoningGate, context_names, create_context_block
from sr_models.layers.pyramid_pooling import bin_avg_pool2d
from sr_models.models import list_sr_models

pytest.importorskip("onnxscript")
pytest.importorskip("onnxruntime")

EXPORT_SIZE, CHECK_SIZE = (64, 64), (96, 128)  # the check size differs in both dimensions
TOLERANCE = 1e-4
SMALL_MODELS = ("sr_resnet18", "dfseg_dfnet1", "srnet_dfnet1", "srnet_resnet18_d8")


def _assert_parity(model: torch.nn.Module, tmp_path, export_size=EXPORT_SIZE, check_size=CHECK_SIZE) -> None:
    path = export_onnx(model.eval(), tmp_path / "model.onnx", example_size=export_size)
    diff = onnx_parity(model, path, (2, 3, *check_size))
    assert diff <= TOLERANCE, f"onnxruntime deviates by {diff:.2e} at {check_size} (exported at {export_size})"


@pytest.mark.parametrize("size", [(12, 12), (8, 16), (7, 5), (13, 29), (4, 3), (64, 96)])
@pytest.mark.parametrize("bins", [1, 2, 3, 6, 8])
def test_bin_avg_pool2d_matches_adaptive_avg_pool2d(size, bins):
    """Same bins (also overlapping ones, and bins > size) as F.adaptive_avg_pool2d, equal to float rounding."""
    x = torch.randn(2, 5, *size, dtype=torch.float64)
    expected = F.adaptive_avg_pool2d(x, bins)
    assert torch.allclose(bin_avg_pool2d(x, bins), expected, rtol=1e-12, atol=1e-12)
    x32 = x.float()  # float32: the sums run in another order, so only rounding (~1e-7) may differ
    assert torch.allclose(bin_avg_pool2d(x32, bins), F.adaptive_avg_pool2d(x32, bins), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("context", context_names())
def test_context_block_exports_and_matches_at_another_size(context, tmp_path):
    """Every context block alone (the part whose pooling / attention is shape dependent), small widths."""
    block = create_context_block(context, in_channels=32, channels=32).eval()
    with torch.no_grad():
        for m in block.modules():  # non-trivial BN statistics, so the check is not about zeros
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 1.5), m.weight.uniform_(0.5, 1.5)
    path = export_onnx(block, tmp_path / "block.onnx", example_size=(8, 8), in_chans=32)
    diff = onnx_parity(block, path, (2, 32, 12, 16))
    assert diff <= TOLERANCE


@pytest.mark.parametrize("name", SMALL_MODELS)
def test_small_model_exports_and_matches_at_another_size(name, tmp_path):
    _assert_parity(timm.create_model(name), tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in list_sr_models() if n not in SMALL_MODELS])
def test_every_registered_model_exports_and_matches_at_another_size(name, tmp_path):
    _assert_parity(timm.create_model(name), tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("context", context_names())
def test_every_srnet_head_exports_and_matches_at_another_size(context, tmp_path):
    _assert_parity(timm.create_model("srnet_resnet18_d8", context=context, channels=32), tmp_path)


def test_exported_graph_has_the_documented_interface(tmp_path):
    import onnx

    path = export_onnx(timm.create_model("dfnet1", num_classes=7), tmp_path / "m.onnx", example_size=(64, 64))
    graph = onnx.load(str(path)).graph
    (inp,), (out,) = graph.input, graph.output
    assert (inp.name, out.name) == ("pixel_values", "logits")
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert dims[1] == 3 and all(isinstance(d, str) for d in (dims[0], dims[2], dims[3])), dims


def test_cli_exports_a_saved_folder_and_checks_parity(tmp_path, capsys):
    from sr_models.hf import save_pretrained

    folder = save_pretrained(timm.create_model("dfseg_dfnet1", num_classes=5), tmp_path / "run")
    assert main([str(folder), "--output", str(tmp_path / "m.onnx"), "--size", "64x64", "--check", "96x128"]) == 0
    out = capsys.readouterr().out
    diff = float(out.rsplit("max abs diff", 1)[1])
    assert (tmp_path / "m.onnx").is_file() and diff <= TOLERANCE


@pytest.mark.parametrize("argument, message", [
    ("no_such_model", "unknown model 'no_such_model'"),
    ("./missing_folder", "no such folder ./missing_folder"),
])
def test_cli_errors_are_one_line_with_the_bad_argument(argument, message, tmp_path):
    result = subprocess.run([sys.executable, "-m", "sr_models.export", argument, "--output", str(tmp_path / "m.onnx")],
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]  # one line, no traceback
    assert result.stderr.startswith("error: ") and message in result.stderr and argument in result.stderr


def test_cli_names_the_extra_when_onnxscript_is_missing(tmp_path):
    code = ("import sys; sys.modules['onnxscript'] = None; from sr_models.export import main; "
            f"sys.exit(main(['dfnet1', '--output', {str(tmp_path / 'm.onnx')!r}]))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 1
    assert "sr-models[export]" in result.stderr and result.stderr.count("\n") == 1


def test_sr_gate_traces_scripts_and_keeps_the_inplace_fast_path():
    gate = SqueezeReasoningGate(64, inplace=True).eval()
    x = torch.randn(2, 64, 5, 7)
    expected = gate(x.clone())
    assert torch.allclose(torch.fx.symbolic_trace(gate)(x.clone()), expected)
    assert torch.allclose(torch.jit.script(gate)(x.clone()), expected)
    y = x.clone()
    with torch.no_grad():
        assert gate(y).data_ptr() == y.data_ptr()  # rescaled in place: no new feature map
    z = x.clone().requires_grad_()
    assert gate(z).data_ptr() != z.data_ptr()  # autograd needs the input: out of place


@pytest.mark.parametrize("name, kwargs", [
    ("srnet_resnet18_d8", dict(backbone="resnet10t", channels=32)),  # SR module + channels_last + bf16 GEMMs
    ("dfseg_dfnet1", {}),  # the PPM's bin matrices under autocast
])
def test_inference_speed_settings_keep_predictions_within_tolerance(name, kwargs, monkeypatch):
    """bf16 autocast + channels_last (the default where bf16 is native) vs float32, on peaked probabilities."""
    from sr_models import inference

    torch.manual_seed(0)
    model = timm.create_model(name, num_classes=4, **kwargs).eval()
    classifier = model.head.classifier if hasattr(model, "head") else model.classifier.classifier
    x = torch.randn(2, 3, 64, 80)
    with torch.no_grad():  # confident logits (std 4): bf16 rounding must not move them far
        scale = 4 / model(x).std()
        classifier.weight.mul_(scale), classifier.bias.mul_(scale)
    fp32 = inference.predict_whole(model, x, bf16=False)
    bf16 = inference.predict_whole(model, x, bf16=True)
    assert (fp32 - bf16).abs().max() <= 0.05
    assert (fp32.argmax(1) == bf16.argmax(1)).float().mean() >= 0.98
    assert fp32.amax(1).mean() > 0.5  # the check above was not made on near-uniform probabilities
    monkeypatch.setattr(inference, "bf16_is_native", lambda: False)
    assert torch.equal(inference.predict_whole(model, x), fp32)  # no native bf16: float32 by default
    monkeypatch.setattr(inference, "bf16_is_native", lambda: True)
    assert torch.equal(inference.predict_whole(model, x), bf16)
