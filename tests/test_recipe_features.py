"""Recipe features on tiny data: timm's optimizer / EMA / mixup / transforms for classification, mmseg's
augmentations, losses and metrics for segmentation, the speed switches, and resume with all of them on."""
import json
import shutil

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from safetensors.torch import load_file

import sr_models  # noqa: F401
from sr_models.data import EmbeddedSegmentation, SegmentationTransform
from sr_models.data.metadata import CITYSCAPES
from sr_models.data.transforms import PhotometricDistortion
from sr_models.losses import SegmentationLoss, enet_class_weights
from sr_models.training import build_optimizer, build_schedule, load_config
from sr_models.training.config import RecipeError, recipe_from_dict
from sr_models.training.classification import build_classification_task
from sr_models.training.engine import train
from sr_models.training.metrics import confusion_matrix, segmentation_metrics
from sr_models.training.segmentation import build_segmentation_task, class_weights

SEG = {
    "task": "semantic-segmentation",
    "model": {"name": "srnet_resnet18_d8", "args": {"backbone": "resnet10t", "channels": 32}},
    "data": {"name": "embedded", "crop_size": [32, 32], "scale_range": [0.75, 1.25],
             "embedded": {"image_size": 32, "num_images": 16}},
    "optim": {"name": "sgd", "lr": 0.02},
    "batch_size": 4, "max_steps": 4, "checkpoint_every": 4, "log_every": 1,
    "eval": {"mode": "whole", "max_images": 4}, "overlays": 1,
}


def _config(tmp_path, base, name="recipe.yaml", **changes):
    path = tmp_path / name
    path.write_text(yaml.safe_dump({**base, **changes}))
    return load_config(path)


def test_recipe_keys_of_the_features_are_typed():
    base = {"task": "semantic-segmentation", "model": {"name": "srnet_resnet18_d8"}, "data": {"name": "embedded"}}
    recipe = recipe_from_dict({**base, "data": {"name": "embedded", "photometric": {"hue_delta": 9}},
                               "loss": {"name": "lovasz", "class_weight": "computed"}, "ema": {"decay": 0.999},
                               "channels_last": True, "mixed_precision": "bf16"})
    assert recipe.data.photometric.hue_delta == 9 and recipe.loss.class_weight == "computed"
    assert recipe_from_dict({**base, "loss": {"class_weight": [1, 2.5]}}).loss.class_weight == [1.0, 2.5]
    for bad, message in [({"loss": {"name": "dice2"}}, "loss.name='dice2' must be one of"),
                         ({"loss": {"class_weight": "median"}}, "loss.class_weight='median' must be"),
                         ({"optim": {"name": "sgdx"}}, "optim.name='sgdx' is not a timm optimizer"),
                         ({"mixed_precision": "fp8"}, "mixed_precision='fp8' must be"),
                         ({"ema": {"decay": 1.5}}, r"ema.decay=1.5 must be"),
                         ({"mixup": {"alpha": 0.2}}, "unknown key 'mixup.alpha'")]:
        with pytest.raises(RecipeError, match=message):
            recipe_from_dict({**base, **bad})


# --- segmentation: metrics, augmentation, losses, class weights ------------------------------------------------

def test_segmentation_metrics_match_torchmetrics_and_mmseg_definitions():
    tm = pytest.importorskip("torchmetrics.functional.classification")
    rng = torch.Generator().manual_seed(0)
    target = torch.randint(0, 5, (4000,), generator=rng)
    pred = torch.where(torch.rand(4000, generator=rng) < 0.6, target, torch.randint(0, 5, (4000,), generator=rng))
    target[:300] = 255
    got = segmentation_metrics(confusion_matrix(pred, target, 5), list("abcde"))
    args = dict(num_classes=5, ignore_index=255, average=None)
    iou, acc, dice = (tm.multiclass_jaccard_index(pred, target, **args), tm.multiclass_recall(pred, target, **args),
                      tm.multiclass_f1_score(pred, target, **args))  # per-class accuracy = recall, Dice = F1
    assert got["mIoU"] == pytest.approx(100 * iou.mean().item(), abs=0.01)
    assert got["mAcc"] == pytest.approx(100 * acc.mean().item(), abs=0.01)
    assert got["mDice"] == pytest.approx(100 * dice.mean().item(), abs=0.01)
    assert got["aAcc"] == pytest.approx(100 * (pred == target)[target != 255].float().mean().item(), abs=0.01)
    assert list(got["per_class_dice"].values()) == pytest.approx((100 * dice).tolist(), abs=0.01)
    # a class absent from the ground truth but predicted: counts in mIoU / mDice (IoU 0), not in mAcc (mmseg)
    absent = segmentation_metrics(torch.tensor([[5, 2], [0, 0]]), ["a", "b"])
    assert absent["mIoU"] == pytest.approx(100 * 5 / 7 / 2, abs=0.01)
    assert absent["mAcc"] == pytest.approx(100 * 5 / 7, abs=0.01)
    assert "b" not in absent["per_class_acc"] and absent["per_class_iou"]["b"] == 0


def test_photometric_distortion_changes_colours_and_never_labels():
    image = Image.fromarray(np.random.default_rng(0).integers(40, 200, (40, 60, 3), dtype=np.uint8))
    mask = np.random.default_rng(1).integers(0, 4, (40, 60), dtype=np.uint8)
    plain = SegmentationTransform(True, crop_size=(32, 32), scale_range=(1.0, 1.0))
    distorted = SegmentationTransform(True, crop_size=(32, 32), scale_range=(1.0, 1.0),
                                      photometric=PhotometricDistortion())
    changed = 0
    for seed in range(8):
        a, b = plain(image, mask, torch.Generator().manual_seed(seed)), distorted(
            image, mask, torch.Generator().manual_seed(seed))
        assert torch.equal(a[1], b[1])  # same crop and flip, labels untouched
        changed += int((a[0] - b[0]).abs().max() > 0.05)
    assert changed >= 6  # 15 of 16 coin combinations change the colours
    # each step by itself: mmseg's additive brightness and multiplicative "contrast", torchvision's hue
    grey = torch.full((3, 2, 2), 0.5)
    only_brightness = PhotometricDistortion(contrast_range=(1, 1), saturation_range=(1, 1), hue_delta=0)
    shifts = {round((only_brightness(grey, torch.Generator().manual_seed(s)) - grey).mean().item() * 255)
              for s in range(30)}
    assert shifts - {0} and max(map(abs, shifts)) <= 32


def test_category_ratio_crop_avoids_crops_of_one_class():
    # the image is 90 % class 1 (left) and 10 % class 2 (right): most 16x16 crops see class 1 only
    mask = np.ones((32, 100), np.uint8)
    mask[:, 90:] = 2
    image = Image.new("RGB", (100, 32))

    def mixed_share(ratio):
        transform = SegmentationTransform(True, crop_size=(16, 16), scale_range=(1.0, 1.0), flip=False,
                                          cat_max_ratio=ratio)
        crops = [transform(image, mask, torch.Generator().manual_seed(s))[1] for s in range(40)]
        return np.mean([len(c.unique()) > 1 for c in crops])

    assert mixed_share(0.75) > 2 * mixed_share(1.0)
    with pytest.raises(ValueError, match="cat_max_ratio=0 must be in"):
        SegmentationTransform(True, cat_max_ratio=0)


@pytest.mark.parametrize("name, weight", [("ce", None), ("ce", [1.0, 2.0, 0.5]), ("dice", [1.0, 2.0, 0.5]),
                                          ("focal", None), ("lovasz", None)])
def test_every_loss_falls_when_fitting_logits(name, weight):
    target = torch.randint(0, 3, (2, 8, 8), generator=torch.Generator().manual_seed(0))
    target[:, 0] = 255
    logits = torch.zeros(2, 3, 8, 8, requires_grad=True)
    criterion = SegmentationLoss(name=name, class_weight=weight, aux_weight=0.4)
    optimizer = torch.optim.Adam([logits], lr=0.2)
    first = criterion(logits, target, logits).item()
    for _ in range(30):
        optimizer.zero_grad()
        loss = criterion(logits, target, logits)
        loss.backward()
        optimizer.step()
    assert np.isfinite(first) and loss.item() < 0.5 * first
    assert (logits.argmax(1) == target)[target != 255].all()


def test_loss_options_that_do_not_combine_fail_clearly():
    with pytest.raises(ValueError, match="ohem_thresh=0.7 works with loss.name='ce' only"):
        SegmentationLoss(name="dice", ohem_thresh=0.7)
    with pytest.raises(ValueError, match="not supported by the Lovász loss"):
        SegmentationLoss(name="lovasz", class_weight=[1.0, 2.0])
    with pytest.raises(ValueError, match="loss.name='bce' must be one of"):
        SegmentationLoss(name="bce")


def test_class_weights_published_computed_or_listed():
    dataset = EmbeddedSegmentation(num_images=6, image_size=32)
    with pytest.raises(ValueError, match="data set 'embedded' has no published class weights"):
        class_weights("dataset", dataset)
    computed = class_weights("computed", dataset)
    counts = sum(np.bincount(dataset.load(i)[1].ravel(), minlength=6) for i in range(6))
    assert computed == pytest.approx(enet_class_weights(torch.tensor(counts)).tolist())
    assert computed[int(np.argmin(counts))] > computed[int(np.argmax(counts))]  # rare classes weigh more
    cityscapes = type("D", (), {"info": CITYSCAPES})()
    assert class_weights("dataset", cityscapes)[0] == 0.8373 and len(class_weights("dataset", cityscapes)) == 19
    with pytest.raises(ValueError, match="a list of 6 numbers"):
        class_weights([1.0, 2.0], dataset)


def test_segmentation_run_reports_mmseg_metrics_and_draws_its_pictures(tmp_path):
    data = {**SEG["data"], "photometric": True, "cat_max_ratio": 0.75}
    cfg = _config(tmp_path, SEG, data=data, eval_every=2, loss={"name": "focal", "class_weight": "computed"})
    metrics = train(cfg, tmp_path / "run", build_segmentation_task)
    run = tmp_path / "run"
    saved = json.loads((run / "metrics.json").read_text())
    assert {"aAcc", "mIoU", "mAcc", "mDice", "per_class_iou", "per_class_acc", "per_class_dice"} <= set(saved)
    assert saved["mIoU"] == metrics["mIoU"] and "confusion_matrix" not in saved
    confusion = np.load(run / "confusion_matrix.npy")
    val = EmbeddedSegmentation("val", num_images=4, image_size=32)
    assert confusion.shape == (6, 6) and confusion.sum() == sum((val.load(i)[1] != 255).sum() for i in range(4))
    assert saved["aAcc"] == pytest.approx(100 * np.trace(confusion) / confusion.sum(), abs=0.01)
    curves = json.loads((run / "curves.json").read_text())
    assert [p["step"] for p in curves["train"]] == [1, 2, 3, 4] and [p["step"] for p in curves["eval"]] == [2, 4]
    assert curves["eval"][-1]["mIoU"] == metrics["mIoU"]
    for picture in ("curves.png", "confusion_matrix.png"):
        assert Image.open(run / picture).size[0] > 300


# --- classification: timm's optimizer, transforms, mixup, EMA; resume --------------------------------------------

def test_optimizer_from_timm_skips_decay_on_norms_and_biases_and_decays_by_layer():
    model = __import__("timm").create_model("sr_resnet18", num_classes=3)
    raw = {"task": "image-classification", "model": {"name": "sr_resnet18"}, "data": {"name": "imagefolder"},
           "optim": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4, "filter_bias_and_bn": True},
           "schedule": {"name": "cosine", "warmup_steps": 0}, "max_steps": 10}
    optimizer = build_optimizer(recipe_from_dict(raw), model)
    decay = {id(p) for g in optimizer.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    assert decay and all((id(p) in decay) == (p.ndim > 1) for p in model.parameters())
    assert all(g["momentum"] == 0.9 and not g["nesterov"] for g in optimizer.param_groups)  # the paper's SGD
    cfg = recipe_from_dict({**raw, "optim": {**raw["optim"], "layer_decay": 0.5}})
    optimizer = build_optimizer(cfg, model)
    build_schedule(cfg, optimizer)
    lr_of = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    assert lr_of[id(model.fc.weight)] == pytest.approx(0.1) and lr_of[id(model.conv1.weight)] < 0.1 * 0.5 ** 3


def test_classification_transform_takes_timm_augmentations_and_the_papers_centre_crop():
    from sr_models.data import classification_transform

    train = classification_transform({"transform": {"auto_augment": "rand-m9-mstd0.5-inc1", "re_prob": 0.25}}, True)
    names = [type(t).__name__ for t in train.transforms]
    assert "RandAugment" in names and "RandomErasing" in names
    evaluation = classification_transform({"transform": {"input_size": [3, 224, 224], "crop_pct": 0.875}}, False)
    assert [type(t).__name__ for t in evaluation.transforms][:2] == ["Resize", "CenterCrop"]
    assert evaluation.transforms[0].size == 256 and evaluation(Image.new("RGB", (500, 375))).shape == (3, 224, 224)
    with pytest.raises(ValueError, match=r"data.transform: unknown keys \['autoaugment'\]"):
        classification_transform({"transform": {"autoaugment": "rand"}}, True)


def _image_folder(root):
    rng = torch.Generator().manual_seed(0)
    for split, count in (("train", 4), ("val", 2)):
        for label, colour in (("red", 0), ("green", 1)):
            for i in range(count):
                pixels = torch.rand(36, 36, 3, generator=rng) * 60
                pixels[..., colour] += 180
                (root / split / label).mkdir(parents=True, exist_ok=True)
                Image.fromarray(pixels.byte().numpy()).save(root / split / label / f"{i}.png")


CLS = {
    "task": "image-classification",
    "model": {"name": "sr_resnet18", "args": {}},
    "data": {"name": "imagefolder", "transform": {"input_size": [3, 32, 32], "crop_pct": 0.875,
                                                  "auto_augment": "rand-m9-mstd0.5-inc1", "re_prob": 0.25}},
    "optim": {"name": "sgd", "lr": 0.05, "weight_decay": 1e-4, "filter_bias_and_bn": True, "layer_decay": 0.8,
              "clip_grad": 1.0},
    "schedule": {"name": "cosine", "warmup_steps": 1},
    "loss": {"label_smoothing": 0.1},
    "mixup": {"mixup_alpha": 0.2, "cutmix_alpha": 1.0},
    "ema": {"decay": 0.9},
    "batch_size": 2, "max_steps": 4, "checkpoint_every": 2, "keep_checkpoints": 5, "log_every": 1,
}


def test_classification_recipe_with_every_feature_resumes_to_the_same_weights_and_ema(tmp_path):
    _image_folder(tmp_path / "data")
    cfg = _config(tmp_path, CLS, data={**CLS["data"], "root": str(tmp_path / "data")})
    metrics = train(cfg, tmp_path / "straight", build_classification_task)
    assert {"top1", "top5", "ema_top1", "ema_top5"} <= set(json.loads((tmp_path / "straight" / "metrics.json")
                                                                      .read_text()))
    assert 0 <= metrics["ema_top1"] <= 100
    # resume from the straight run's step-2 checkpoint (mid-epoch: 8 images, batch 2): same weights, same EMA
    shutil.copytree(tmp_path / "straight" / "checkpoints" / "step_2", tmp_path / "resumed" / "checkpoints" / "step_2")
    train(cfg, tmp_path / "resumed", build_classification_task, resume=True)
    for folder in ("", "ema"):
        straight = load_file(tmp_path / "straight" / folder / "model.safetensors")
        resumed = load_file(tmp_path / "resumed" / folder / "model.safetensors")
        for key, value in straight.items():
            torch.testing.assert_close(resumed[key], value, rtol=0, atol=1e-6, msg=f"{folder}/{key}")
    ema, model = (load_file(tmp_path / "straight" / f / "model.safetensors") for f in ("ema", ""))
    assert not torch.equal(ema["fc.weight"], model["fc.weight"])  # the EMA is its own set of weights


def test_mixup_batches_carry_mixed_images_and_smoothed_soft_labels(tmp_path):
    _image_folder(tmp_path / "data")
    cfg = _config(tmp_path, CLS, data={**CLS["data"], "root": str(tmp_path / "data")})
    task = build_classification_task(cfg)
    batch = torch.utils.data.default_collate([task.val_set[i] for i in (0, 2, 1, 3)])
    mixed = task.prepare_batch({key: value.clone() for key, value in batch.items()})
    assert mixed["labels"].shape == (4, 2) and torch.allclose(mixed["labels"].sum(1), torch.ones(4))
    assert mixed["labels"].min() >= 0.05 - 1e-6  # label smoothing 0.1 over 2 classes: never below 0.05
    assert not torch.equal(mixed["pixel_values"], batch["pixel_values"])
    loss = task.loss(task.model(mixed["pixel_values"]), mixed)  # soft-target cross-entropy
    assert loss.ndim == 0 and torch.isfinite(loss)


def test_gradient_clipping_bounds_every_update(tmp_path):
    _image_folder(tmp_path / "data")
    base = {key: CLS[key] for key in ("task", "model", "schedule")}
    data = {"name": "imagefolder", "root": str(tmp_path / "data"), "transform": {"input_size": [3, 32, 32]}}
    cfg = _config(tmp_path, base, data=data, batch_size=2, max_steps=2, checkpoint_every=2,
                  schedule={"name": "poly", "power": 1.0, "warmup_steps": 0},
                  optim={"name": "sgd", "lr": 1.0, "momentum": 0.0, "weight_decay": 0.0, "clip_grad": 1e-3})
    task = build_classification_task(cfg)
    before = {name: p.detach().clone() for name, p in task.model.named_parameters()}
    train(cfg, tmp_path / "run", lambda _: task)
    moved = torch.cat([(p.detach() - before[name]).flatten() for name, p in task.model.named_parameters()])
    # plain SGD, lr 1.0 then 0.5: the weights move by at most (1.0 + 0.5) x the clipped gradient norm
    assert 0 < moved.norm() <= 1.5e-3 * (1 + 1e-4)


# --- speed switches -------------------------------------------------------------------------------------------------

def _trains_with(tmp_path, **switches):
    cfg = _config(tmp_path, SEG, max_steps=8, checkpoint_every=8, batch_size=8, **switches)
    task = build_segmentation_task(cfg)
    batch = torch.utils.data.default_collate([task.val_set[i] for i in range(8)])

    def loss_of(model):
        model.train()
        torch.manual_seed(0)
        with torch.no_grad():
            return task.loss(model(batch["pixel_values"]), batch).item()

    before = loss_of(task.model)
    metrics = train(cfg, tmp_path / "run", lambda _: task)
    after = loss_of(task.model)
    assert np.isfinite(after) and after < 0.9 * before and metrics["steps"] == 8
    return task


@pytest.fixture
def fresh_accelerate_state():
    """Accelerate keeps one state per process; mixed precision and compile are set when it is first made."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


@pytest.mark.parametrize("switch", [{"channels_last": True}, {"mixed_precision": "bf16"}])
def test_speed_switch_trains_on_cpu(tmp_path, switch, fresh_accelerate_state):
    task = _trains_with(tmp_path, **switch)
    if "channels_last" in switch:  # the saved weights are contiguous again, and reload
        assert all(p.is_contiguous() for p in task.model.parameters())
        assert load_file(tmp_path / "run" / "model.safetensors")


@pytest.mark.slow
def test_compile_switch_trains_on_cpu(tmp_path, fresh_accelerate_state):
    _trains_with(tmp_path, compile=True)
