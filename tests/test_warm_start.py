"""Warm start: an SR-ResNet built from a timm ResNet checkpoint computes that ResNet's logits at step 0."""
import pytest
import timm
import torch
from safetensors.torch import save_file

import sr_models  # noqa: F401  (registers sr_resnet*)
from sr_models.models.warm_start import warm_start_from_resnet


def _resnet(name, num_classes=10):
    torch.manual_seed(0)
    model = timm.create_model(name, num_classes=num_classes)
    for m in model.modules():  # running statistics and affine terms away from their defaults
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.1), m.running_var.uniform_(0.5, 2), m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_(0, 0.1)
    return model.eval()


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_sr_resnet_from_a_resnet_file_gives_the_resnets_logits(arch, tmp_path):
    resnet = _resnet(arch)
    save_file(resnet.state_dict(), tmp_path / "resnet.safetensors")
    model = timm.create_model(f"sr_{arch}", num_classes=10)
    report = warm_start_from_resnet(model, tmp_path / "resnet.safetensors")
    assert report["unused"] == [] and all(".se." in k for k in report["kept"])
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(model.eval()(x), resnet(x), rtol=0, atol=1e-6)
    # in training mode too (batch statistics), and the gates learn from the first step
    model.train(), resnet.train()
    out = model(x)
    assert torch.allclose(out, resnet(x), atol=1e-5)
    out.square().mean().backward()
    gate = model.layer1[0].se.reasoning
    assert gate.state.weight.grad.abs().sum() > 0


def test_warm_start_from_a_saved_folder_with_other_classes_keeps_the_new_classifier(tmp_path):
    resnet = _resnet("resnet18", num_classes=1000)
    timm.models.save_for_hf(resnet, tmp_path / "resnet18")
    model = timm.create_model("sr_resnet18", num_classes=7)
    fc = model.fc.weight.clone()
    report = warm_start_from_resnet(model, tmp_path / "resnet18")
    assert "fc.weight" in report["kept"] and torch.equal(model.fc.weight, fc)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model.eval().forward_features(x), resnet.forward_features(x), atol=1e-6)


def test_srnet_on_an_sr_resnet_backbone_starts_as_the_dilated_resnet(tmp_path):
    resnet = _resnet("resnet18")
    model = timm.create_model("srnet_resnet18_d8", backbone="sr_resnet18", num_classes=5, channels=32)
    report = warm_start_from_resnet(model, resnet.state_dict())
    assert set(report["unused"]) == {"fc.weight", "fc.bias"}
    dilated = timm.create_model("resnet18", features_only=True, output_stride=8, out_indices=(-2, -1))
    dilated.load_state_dict({k: v for k, v in resnet.state_dict().items() if not k.startswith("fc.")})
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for ours, theirs in zip(model.eval().backbone(x)[-2:], dilated.eval()(x)):  # stages 3 and 4
            assert torch.allclose(ours, theirs, atol=1e-6)


def test_warm_start_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="the checkpoint is not this model's ResNet"):
        warm_start_from_resnet(timm.create_model("sr_resnet18"), _resnet("resnet34").state_dict())
    with pytest.raises(ValueError, match="has no SR-ResNet blocks"):
        warm_start_from_resnet(timm.create_model("resnet18"), _resnet("resnet18").state_dict())
    with pytest.raises(ValueError, match="init_from='no_such_model'"):
        warm_start_from_resnet(timm.create_model("sr_resnet18"), "no_such_model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds none of model.safetensors"):
        warm_start_from_resnet(timm.create_model("sr_resnet18"), tmp_path / "empty")


def test_recipe_init_from_starts_the_training_from_the_resnet(tmp_path):
    """`model.init_from` in a recipe: the run starts from the ResNet's weights, with the gates set as documented."""
    from safetensors.torch import load_file

    from sr_models.training import recipe_from_dict
    from sr_models.training.engine import train
    from sr_models.training.segmentation import build_segmentation_task

    resnet = _resnet("resnet18")
    save_file(resnet.state_dict(), tmp_path / "resnet18.safetensors")
    cfg = recipe_from_dict({
        "task": "semantic-segmentation",
        "model": {"name": "srnet_resnet18_d8", "args": {"backbone": "sr_resnet18", "channels": 32},
                  "init_from": str(tmp_path / "resnet18.safetensors")},
        "data": {"name": "embedded", "crop_size": [32, 32], "embedded": {"image_size": 32, "num_images": 4}},
        "optim": {"name": "sgd", "lr": 1e-12, "weight_decay": 0.0},  # a negligible update: what is saved is the start
        "batch_size": 2, "max_steps": 1, "checkpoint_every": 1, "eval": {"max_images": 1}, "overlays": 0,
    })
    train(cfg, tmp_path / "run", build_segmentation_task)
    saved, theirs = load_file(tmp_path / "run" / "model.safetensors"), resnet.state_dict()
    assert torch.allclose(saved["backbone.layer3.1.conv2.weight"], theirs["layer3.1.conv2.weight"], atol=1e-8)
    assert torch.allclose(saved["backbone.layer2.0.bn2.weight"], 2 * theirs["layer2.0.bn2.weight"], atol=1e-8)
    assert saved["backbone.layer2.0.se.reasoning.state.weight"].abs().max() < 1e-8
