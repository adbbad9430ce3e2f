"""transformers front door: one folder that timm and transformers both load, Auto classes, pipelines, errors."""
import json
import shutil

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModel,
    AutoModelForImageClassification,
    AutoModelForSemanticSegmentation,
    pipeline,
)

import sr_models
from sr_models.hf import (
    SRNetConfig,
    SRNetForSemanticSegmentation,
    SRNetImageProcessor,
    SRResNetConfig,
    SRResNetForImageClassification,
)

SEG_ARGS = dict(num_classes=19, backbone="resnet10t", channels=32)


def _segmenter():
    torch.manual_seed(0)
    return timm.create_model("srnet_resnet18_d8", **SEG_ARGS).eval()


def _classifier():
    torch.manual_seed(0)
    return timm.create_model("sr_resnet18", num_classes=7).eval()


@pytest.fixture(scope="module")
def seg_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("seg")
    sr_models.save_pretrained(_segmenter(), path)
    return path


@pytest.fixture(scope="module")
def cls_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("cls")
    sr_models.save_pretrained(_classifier(), path)
    return path


def _image(height=71, width=93):
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def test_saved_folder_holds_safetensors_config_and_processor(seg_dir):
    assert sorted(p.name for p in seg_dir.iterdir()) == ["config.json", "model.safetensors",
                                                         "preprocessor_config.json"]
    config = json.loads((seg_dir / "config.json").read_text())
    assert config["architecture"] == "srnet_resnet18_d8" and config["model_type"] == "srnet"
    assert config["num_classes"] == 19 and config["label_names"][13] == "car"
    assert "num_classes" not in config["model_args"]  # timm's export trap, see saving.py
    assert config["model_args"]["backbone"] == "resnet10t"


@pytest.mark.parametrize("family", ["segmenter", "classifier"])
def test_timm_model_reloads_in_timm_and_transformers_with_equal_logits(family, seg_dir, cls_dir):
    model, path, auto = ((_segmenter(), seg_dir, AutoModelForSemanticSegmentation) if family == "segmenter"
                         else (_classifier(), cls_dir, AutoModelForImageClassification))
    x = torch.randn(2, 3, 97, 129)
    with torch.no_grad():
        expected = model(x)
        from_timm = timm.create_model(f"local-dir:{path}", pretrained=True).eval()(x)
        from_hf = auto.from_pretrained(path).eval()(pixel_values=x).logits
    torch.testing.assert_close(from_timm, expected, rtol=0, atol=0)
    torch.testing.assert_close(from_hf, expected, rtol=0, atol=0)


def test_auto_classes_resolve_to_sr_models(seg_dir, cls_dir):
    assert isinstance(AutoConfig.from_pretrained(seg_dir), SRNetConfig)
    assert isinstance(AutoConfig.from_pretrained(cls_dir), SRResNetConfig)
    assert isinstance(AutoModelForSemanticSegmentation.from_pretrained(seg_dir), SRNetForSemanticSegmentation)
    assert isinstance(AutoModelForImageClassification.from_pretrained(cls_dir), SRResNetForImageClassification)
    assert isinstance(AutoImageProcessor.from_pretrained(seg_dir), SRNetImageProcessor)
    backbone = AutoModel.from_pretrained(cls_dir).eval()
    with torch.no_grad():
        out = backbone(pixel_values=torch.randn(1, 3, 64, 64))
    assert out.pooler_output.shape == (1, 512) and out.last_hidden_state.shape == (1, 512, 2, 2)


@pytest.mark.parametrize("auto", [AutoModelForSemanticSegmentation, AutoModelForImageClassification])
def test_hf_native_save_round_trip_is_bitwise_and_timm_reads_it(auto, seg_dir, cls_dir, tmp_path):
    source = seg_dir if auto is AutoModelForSemanticSegmentation else cls_dir
    model = auto.from_pretrained(source)
    model.save_pretrained(tmp_path)
    reloaded = auto.from_pretrained(tmp_path)
    expected, got = model.state_dict(), reloaded.state_dict()
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), key
    timm_model = timm.create_model(f"local-dir:{tmp_path}", pretrained=True)
    for key, value in timm_model.state_dict().items():
        assert torch.equal(value, expected["timm_model." + key]), key


def test_config_built_from_scratch_keeps_timm_init_and_saves_a_timm_readable_folder(tmp_path):
    model = SRResNetForImageClassification(SRResNetConfig(architecture="sr_resnet18", num_labels=4))
    # timm zero-initialises the last BN of every residual block; transformers' default init would reset it to 1
    assert torch.count_nonzero(model.timm_model.layer1[0].bn2.weight) == 0
    model.save_pretrained(tmp_path)
    assert timm.create_model(f"local-dir:{tmp_path}", pretrained=True).num_classes == 4


def test_segmentation_loss_is_ce_with_ignore_index_plus_0_4_aux(seg_dir):
    model = AutoModelForSemanticSegmentation.from_pretrained(seg_dir).train()
    x = torch.randn(2, 3, 64, 64)
    labels = torch.randint(0, 19, (2, 64, 64))
    labels[:, :32] = 255
    torch.manual_seed(0)  # same dropout masks in both passes
    loss = model(pixel_values=x, labels=labels).loss
    torch.manual_seed(0)
    logits, aux = model.timm_model(x)
    ce = torch.nn.functional.cross_entropy
    expected = ce(logits, labels, ignore_index=255) + 0.4 * ce(aux, labels, ignore_index=255)
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert model.timm_model.aux_head.classifier.weight.grad.abs().sum() > 0


def test_classification_loss_is_cross_entropy(cls_dir):
    model = AutoModelForImageClassification.from_pretrained(cls_dir).eval()
    x, labels = torch.randn(3, 3, 64, 64), torch.tensor([0, 3, 6])
    out = model(pixel_values=x, labels=labels)
    torch.testing.assert_close(out.loss, torch.nn.functional.cross_entropy(out.logits, labels))


def test_segmentation_pipeline_on_odd_size_image_returns_id2label_labels(seg_dir):
    segmenter = pipeline("image-segmentation", model=str(seg_dir))
    results = segmenter(_image())
    names = set(AutoConfig.from_pretrained(seg_dir).id2label.values())
    assert results and all(r["label"] in names for r in results)
    assert all(r["mask"].size == (93, 71) for r in results)
    # the masks partition the image
    assert sum(np.asarray(r["mask"]) > 0 for r in results).max() == 1


def test_classification_pipeline_returns_id2label_labels(cls_dir):
    classifier = pipeline("image-classification", model=str(cls_dir))
    results = classifier(_image(), top_k=7)
    assert {r["label"] for r in results} == set(AutoConfig.from_pretrained(cls_dir).id2label.values())
    assert sum(r["score"] for r in results) == pytest.approx(1, abs=1e-4)


def test_post_process_resizes_label_maps_to_target_sizes():
    logits = torch.zeros(2, 3, 8, 8)
    logits[0, 2] = 1
    logits[1, 1, :, 4:] = 1
    processor = SRNetImageProcessor()
    maps = processor.post_process_semantic_segmentation(
        type("Out", (), {"logits": logits}), target_sizes=[(5, 7), (16, 16)])
    assert maps[0].shape == (5, 7) and bool((maps[0] == 2).all())
    assert maps[1].shape == (16, 16) and bool((maps[1][:, :6] == 0).all()) and bool((maps[1][:, 9:] == 1).all())
    with pytest.raises(ValueError, match="target sizes"):
        processor.post_process_semantic_segmentation(type("Out", (), {"logits": logits}), target_sizes=[(5, 7)])


def test_classifier_processor_follows_pretrained_cfg(cls_dir):
    processor = AutoImageProcessor.from_pretrained(cls_dir)
    cfg = timm.create_model("sr_resnet18").pretrained_cfg
    assert processor.crop_size["height"] == cfg["input_size"][1]
    assert processor.size["shortest_edge"] == int(cfg["input_size"][1] / cfg["crop_pct"])
    pixels = processor(_image(), return_tensors="pt")["pixel_values"]
    assert pixels.shape == (1, 3, *cfg["input_size"][1:])


@pytest.mark.parametrize("damage", ["truncate", "corrupt"])
def test_damaged_weights_fail_clearly(damage, seg_dir, tmp_path):
    shutil.copytree(seg_dir, tmp_path, dirs_exist_ok=True)
    weights = tmp_path / "model.safetensors"
    data = bytearray(weights.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data[8:40] = b"x" * 32
    weights.write_bytes(bytes(data))
    with pytest.raises(OSError, match="truncated or corrupted"):
        AutoModelForSemanticSegmentation.from_pretrained(tmp_path)


def test_missing_weights_fail_clearly_and_nothing_is_unpickled(seg_dir, tmp_path):
    shutil.copytree(seg_dir, tmp_path, dirs_exist_ok=True)
    (tmp_path / "model.safetensors").unlink()
    torch.save({}, tmp_path / "pytorch_model.bin")  # a pickle must not be a fallback
    with pytest.raises(OSError, match="model.safetensors"):
        AutoModelForSemanticSegmentation.from_pretrained(tmp_path)


def test_unknown_architecture_fails_clearly(seg_dir, tmp_path):
    shutil.copytree(seg_dir, tmp_path, dirs_exist_ok=True)
    config = json.loads((tmp_path / "config.json").read_text())
    config["architecture"] = "srnet_resnet9000_d8"
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="srnet_resnet9000_d8.*not in timm's registry.*srnet_resnet50_d8"):
        AutoModelForSemanticSegmentation.from_pretrained(tmp_path)


def test_other_num_labels_is_refused_unless_the_head_is_reinitialised(seg_dir):
    with pytest.raises(RuntimeError, match="ignore_mismatched_sizes"):
        AutoModelForSemanticSegmentation.from_pretrained(seg_dir, num_labels=3)
    model = AutoModelForSemanticSegmentation.from_pretrained(seg_dir, num_labels=3, ignore_mismatched_sizes=True)
    assert model.config.num_labels == 3 and model.timm_model.head.classifier.out_channels == 3
    reference = AutoModelForSemanticSegmentation.from_pretrained(seg_dir)
    assert torch.equal(model.timm_model.backbone.conv1[0].weight, reference.timm_model.backbone.conv1[0].weight)


def test_save_pretrained_refuses_models_outside_the_registry(tmp_path):
    with pytest.raises(ValueError, match="sr-models registry"):
        sr_models.save_pretrained(timm.create_model("resnet18"), tmp_path)


def test_processor_turns_segmentation_maps_into_labels_resized_and_reduced_like_their_images():
    processor = SRNetImageProcessor()
    images = [_image(5, 7), _image(5, 7)]
    maps = [np.array([[0, 1, 2, 255, 3, 3, 3]] * 5, dtype=np.uint8), Image.fromarray(np.ones((5, 7), np.uint8))]
    out = processor(images, segmentation_maps=maps, return_tensors="pt")
    assert out["pixel_values"].shape == (2, 3, 5, 7) and out["labels"].dtype == torch.int64
    assert out["labels"][0, 0].tolist() == [0, 1, 2, 255, 3, 3, 3] and bool((out["labels"][1] == 1).all())
    reduced = processor(images, segmentation_maps=maps, do_reduce_labels=True, return_tensors="pt")["labels"]
    assert reduced[0, 0].tolist() == [255, 0, 1, 255, 2, 2, 2]  # 0 (unlabelled) becomes the ignored 255
    resized = processor(images, segmentation_maps=maps, do_resize=True, size={"height": 10, "width": 14},
                        return_tensors="pt")
    assert resized["pixel_values"].shape == (2, 3, 10, 14)
    assert resized["labels"][0, 0].tolist() == [0, 0, 1, 1, 2, 2, 255, 255, 3, 3, 3, 3, 3, 3]  # nearest: no new labels
    assert list(processor(images[0], return_tensors="pt")) == ["pixel_values"]
    with pytest.raises(ValueError, match=r"segmentation map 1 is \(4, 7\) \(H, W\) but its image is \(5, 7\)"):
        processor(images, segmentation_maps=[maps[0], np.zeros((4, 7), np.uint8)])


@pytest.mark.parametrize("family", ["segmenter", "classifier"])
def test_gradient_checkpointing_recomputes_the_stages_in_the_backward_pass(family, seg_dir, cls_dir):
    auto, path = ((AutoModelForSemanticSegmentation, seg_dir) if family == "segmenter"
                  else (AutoModelForImageClassification, cls_dir))
    model = auto.from_pretrained(path).train()
    assert model.supports_gradient_checkpointing
    stage = model.timm_model.get_submodule("layer2" if family == "classifier" else "backbone.layer2")
    calls = []
    next(m for m in stage.modules() if isinstance(m, torch.nn.Conv2d)).register_forward_hook(
        lambda *_: calls.append(1))

    def forwards_per_step() -> int:
        calls.clear()
        model(pixel_values=torch.randn(2, 3, 64, 64)).logits.sum().backward()
        return len(calls)

    assert forwards_per_step() == 1 and not model.is_activation_checkpointing
    model.activation_checkpointing_enable()
    assert model.is_activation_checkpointing and forwards_per_step() == 2  # run again in the backward pass
    model.activation_checkpointing_disable()
    assert forwards_per_step() == 1


def test_trainer_fine_tunes_a_saved_segmenter_on_a_datasets_dataset(seg_dir, tmp_path):
    from datasets import Dataset, Features, Image as ImageFeature
    from transformers import Trainer, TrainingArguments

    rng = np.random.default_rng(0)
    colours = np.array([[200, 40, 40], [40, 40, 200]], np.uint8)  # class 0 red, class 1 blue, in 8x8 blocks
    masks = [(rng.random((4, 4)) > 0.5).astype(np.uint8).repeat(8, 0).repeat(8, 1) for _ in range(4)]
    dataset = Dataset.from_dict({"image": [Image.fromarray(colours[m]) for m in masks],
                                 "mask": [Image.fromarray(m) for m in masks]},
                                features=Features({"image": ImageFeature(), "mask": ImageFeature()}))
    processor = AutoImageProcessor.from_pretrained(seg_dir)
    dataset = dataset.with_transform(lambda batch: processor(batch["image"], segmentation_maps=batch["mask"]))
    torch.manual_seed(0)
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=4, max_steps=6, learning_rate=0.02,
                             logging_steps=1, report_to=[], use_cpu=True, save_strategy="no", disable_tqdm=True,
                             remove_unused_columns=False, activation_checkpointing=True)
    trainer = Trainer(model=AutoModelForSemanticSegmentation.from_pretrained(seg_dir), args=args,
                      train_dataset=dataset)
    trainer.train()
    assert trainer.model.is_activation_checkpointing
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == 6 and losses[-1] < 0.6 * losses[0], losses


def test_a_classifier_folder_is_timm_wrapper_compatible(cls_dir, tmp_path):
    """Without `model_type`, transformers' own TimmWrapper loads the folder (model_args holds no num_classes)."""
    shutil.copytree(cls_dir, tmp_path, dirs_exist_ok=True)
    config = json.loads((tmp_path / "config.json").read_text())
    del config["model_type"], config["architectures"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    wrapped = AutoModelForImageClassification.from_pretrained(tmp_path).eval()
    assert type(wrapped).__name__ == "TimmWrapperForImageClassification"
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(wrapped(pixel_values=x).logits, _classifier()(x), rtol=1e-5, atol=1e-5)


IMPORT_CHECK = r"""
import sys
import sr_models
heavy = sorted(m for m in ("transformers", "accelerate", "datasets") if m in sys.modules)
assert not heavy, f"import sr_models imported {heavy}"
from transformers import AutoModelForSemanticSegmentation, pipeline
model = AutoModelForSemanticSegmentation.from_pretrained(sys.argv[1])
assert type(model).__name__ == "SRNetForSemanticSegmentation", type(model)
assert pipeline("image-segmentation", model=sys.argv[1]).model.config.model_type == "srnet"
print("ok")
"""


def test_import_sr_models_leaves_transformers_unimported_and_the_auto_classes_still_resolve(seg_dir):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", IMPORT_CHECK, str(seg_dir)], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-2000:]


def test_when_imported_runs_the_callback_once_after_the_module_body_or_at_once(tmp_path, monkeypatch):
    import sys

    from sr_models._post_import import when_imported

    (tmp_path / "probe_module_for_hook.py").write_text("VALUE = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    seen = []
    when_imported("probe_module_for_hook", lambda: seen.append(sys.modules["probe_module_for_hook"].VALUE))
    assert seen == []
    import probe_module_for_hook  # noqa: F401

    assert seen == [42]  # after the body ran, once
    when_imported("probe_module_for_hook", lambda: seen.append("now"))
    assert seen == [42, "now"]
    assert type(probe_module_for_hook.__loader__).__name__ == "SourceFileLoader"
    monkeypatch.delitem(sys.modules, "probe_module_for_hook")
