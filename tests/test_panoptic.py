"""Panoptic FPN: the semantic branch, the fusion heuristics, PQ against a hand-computed case, train/eval contract."""
import pytest
import torch
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone

from sr_models.models.detection.panoptic_fpn import PanopticFPN, SemanticFPNHead, panoptic_fusion
from sr_models.training.panoptic_quality import evaluate_panoptic, to_category_instance
from test_det_training import TINY as INSTANCE_TINY, train_in_two_processes

CAR, ROAD = 0, 1  # one thing and one stuff category


def _pairs(rows):
    """(H, W, 2) category/instance map from rows of 'c<id>' / 'r' / '.' (void) cells."""
    cells = [row.split() for row in rows]
    out = torch.full((len(cells), len(cells[0]), 2), -1, dtype=torch.long)
    for i, row in enumerate(cells):
        for j, cell in enumerate(row):
            if cell.startswith("c"):
                out[i, j] = torch.tensor([CAR, int(cell[1:])])
            elif cell == "r":
                out[i, j] = torch.tensor([ROAD, 9])
    return out


def test_pq_matches_a_hand_computed_case():
    target = _pairs([
        "c1 c1 c1 c1 c2 c2 c2 c2",
        "c1 c1 c1 c1 c2 c2 c2 c2",
        "c1 c1 c1 c1 c2 c2 c2 c2",
        "c1 c1 c1 c1 c2 c2 c2 c2",
        *["r r r r r r r r"] * 4,
    ])
    prediction = _pairs([
        "c1 c1 c1 c1 c2 c2 c2 c2",  # car 1: 12 of car A's 16 pixels, nothing else: IoU 0.75 -> TP
        "c1 c1 c1 c1 c2 c2 c2 c2",  # car 2: 8 of car B's 16 pixels: IoU 0.5, not > 0.5 -> FP, and B is a FN
        "c1 c1 c1 c1 . . . .",
        "r r r r r r r r",  # road: 40 pixels over the true 32: IoU 0.8 -> TP
        *["r r r r r r r r"] * 4,
    ])
    metrics = evaluate_panoptic([prediction], [target], thing_ids=[CAR], stuff_ids=[ROAD])
    # car: SQ 0.75, RQ 1 / (1 + 0.5 + 0.5) = 0.5, PQ 0.375; road: SQ 0.8, RQ 1, PQ 0.8
    assert metrics["PQ_th"] == pytest.approx(37.5)
    assert metrics["SQ_th"] == pytest.approx(75.0)
    assert metrics["RQ_th"] == pytest.approx(50.0)
    assert metrics["PQ_st"] == pytest.approx(80.0)
    assert metrics["PQ"] == pytest.approx((37.5 + 80.0) / 2)
    assert metrics["SQ"] == pytest.approx((75.0 + 80.0) / 2)
    assert metrics["RQ"] == pytest.approx(75.0)


def test_pq_is_100_for_a_perfect_prediction_and_skips_absent_classes():
    target = _pairs(["c1 c1 r r", "c1 c1 r r"])
    metrics = evaluate_panoptic([target.clone()], [target], thing_ids=[CAR, 5], stuff_ids=[ROAD, 7])
    assert metrics["PQ"] == metrics["PQ_th"] == metrics["PQ_st"] == pytest.approx(100.0)
    assert set(metrics["per_class_PQ"]) == {CAR, ROAD}  # categories 5 and 7 occur nowhere: not averaged


def test_to_category_instance_maps_segments_and_void():
    seg = torch.tensor([[1, 1, 0], [2, 2, 0]], dtype=torch.int32)
    pairs = to_category_instance(seg, [dict(id=1, category_id=3), dict(id=2, category_id=4)])
    assert pairs[..., 0].tolist() == [[3, 3, -1], [4, 4, -1]]
    assert pairs[..., 1].tolist() == seg.tolist()


def _mask(rows, cols, size=8):
    m = torch.zeros(1, size, size)
    m[0, rows[0]:rows[1], cols[0]:cols[1]] = 1.0
    return m


def test_fusion_pastes_by_score_drops_covered_and_small_stuff():
    instances = dict(
        scores=torch.tensor([0.6, 0.9, 0.8, 0.3]),
        labels=torch.tensor([2, 1, 1, 1]),  # detector labels: 1..T (0 is background)
        masks=torch.stack([
            _mask((0, 4), (0, 4)),  # 0.6: 16 px, 12 of them under the 0.9 instance (75 % > 50 %): dropped
            _mask((0, 4), (1, 5)),  # 0.9: pasted first
            _mask((4, 6), (3, 8)),  # 0.8: 10 px, 2 under the 0.9 instance? no: disjoint, pasted whole
            _mask((6, 8), (0, 8)),  # 0.3: under the score threshold
        ]),
    )
    semantic = torch.zeros(8, 8, dtype=torch.long)  # stuff 0 everywhere ...
    semantic[6:, :] = 1  # ... stuff 1 on the two bottom rows (16 px) ...
    semantic[7, 0] = 2  # ... and one pixel of the "thing" class (S = 2)
    panoptic, segments = panoptic_fusion(instances, semantic, num_thing_classes=2, num_stuff_classes=2,
                                         stuff_area_threshold=16)
    assert [(s["category_id"], s["isthing"]) for s in segments] == [(1, True), (1, True), (3, False)]
    assert segments[0]["score"] == pytest.approx(0.9) and segments[0]["area"] == 16
    assert segments[1]["area"] == 10
    # stuff 0 keeps 64 - 16 - 10 - 16 = 22 free pixels (kept); stuff 1 has 15 free pixels (< 16: dropped)
    assert segments[2]["area"] == 22
    assert (panoptic[6:] == 0).sum() == 16  # stuff 1 dropped, the thing-class pixel left void
    assert panoptic[0, 0] == 3 and panoptic[0, 1] == 1


@pytest.mark.parametrize("size", [(64, 64), (72, 90)])
def test_semantic_head_predicts_at_quarter_scale(size):
    head = SemanticFPNHead(in_channels=32, num_classes=5, channels=32, num_groups=8)
    h, w = size
    levels = [torch.randn(2, 32, -(-h // s), -(-w // s)) for s in (4, 8, 16, 32)]
    assert head(levels).shape == (2, 5, -(-h // 4), -(-w // 4))


def _tiny_panoptic(num_things=2, num_stuff=2):
    backbone = resnet_fpn_backbone(backbone_name="resnet18", weights=None, trainable_layers=5)
    detector = MaskRCNN(backbone, num_classes=num_things + 1, min_size=64, max_size=96)
    return PanopticFPN(detector, num_stuff_classes=num_stuff, semantic_channels=32, stuff_area_threshold=4)


def test_panoptic_fpn_trains_and_predicts_torchvision_style():
    torch.manual_seed(0)
    model = _tiny_panoptic()
    images = [torch.rand(3, 60, 80), torch.rand(3, 50, 70)]
    targets = []
    for image in images:
        h, w = image.shape[-2:]
        masks = torch.zeros(1, h, w, dtype=torch.uint8)
        masks[0, 10:40, 20:60] = 1
        sem = torch.zeros(h, w, dtype=torch.long)
        sem[10:40, 20:60] = 2  # the thing class
        sem[45:] = 1
        targets.append(dict(boxes=torch.tensor([[20.0, 10, 60, 40]]), labels=torch.tensor([1]), masks=masks,
                            sem_seg=sem))
    model.train()
    losses = model(images, targets)
    assert {"loss_sem_seg", "loss_mask", "loss_classifier", "loss_objectness"} <= set(losses)
    sum(losses.values()).backward()
    assert model.semantic_head.classifier.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        outputs = model(images)
    for image, out in zip(images, outputs):
        assert out["panoptic_seg"].shape == image.shape[-2:]
        assert out["sem_seg"].shape == (3, *image.shape[-2:])
        ids = {s["id"] for s in out["segments_info"]}
        assert set(out["panoptic_seg"].unique().tolist()) - {0} <= ids
    assert model.backbone is model.detector.backbone


def test_panoptic_fpn_refuses_bad_fusion_arguments():
    import sr_models

    for bad, match in ((dict(stuff_area_threshold=-3), "stuff_area_threshold=-3"),
                       (dict(score_threshold=1.5), r"score_threshold=1.5 must be in \[0, 1\]")):
        with pytest.raises(ValueError, match=match), torch.device("meta"):
            sr_models.create_detector("panoptic_fpn_resnet14t", num_classes=3, num_stuff_classes=2, **bad)


def test_panoptic_fpn_needs_targets_in_training():
    model = _tiny_panoptic().train()
    with pytest.raises(ValueError, match="needs targets"):
        model([torch.rand(3, 32, 32)])


@pytest.fixture(scope="module")
def embedded_panoptic(tmp_path_factory):
    from sr_models.data.embedded_panoptic import write_embedded_panoptic

    root = tmp_path_factory.mktemp("panoptic")
    annotation_file = write_embedded_panoptic(root, "val", num_images=6)
    return root, annotation_file


def _dataset(root, annotation_file, **kwargs):
    from sr_models.data.coco_panoptic import COCOPanoptic

    return COCOPanoptic(root / "val", annotation_file, root / "annotations" / "panoptic_val", **kwargs)


def test_embedded_panoptic_round_trips_the_scenes(embedded_panoptic):
    from sr_models.data.embedded import EMBEDDED, EmbeddedSegmentation

    root, annotation_file = embedded_panoptic
    dataset = _dataset(root, annotation_file)
    assert dataset.categories.names == ["car", "truck", "bus", "train", "background", "sign"]
    scenes = EmbeddedSegmentation("val", num_images=6)
    for index in range(len(dataset)):
        image, target = dataset[index]
        _, mask = scenes.load(index)
        mask = torch.from_numpy(mask).long()
        assert image.shape == (3, *mask.shape) and 0 <= image.min() and image.max() <= 1
        # one instance per vehicle and per car, each mask inside its class's pixels, together covering them all
        names = [EMBEDDED.label_names.index(dataset.categories.names[label - 1]) for label in target["labels"]]
        for instance, train_id in zip(target["masks"].bool(), names):
            assert (mask[instance] == train_id).all()
        things = torch.isin(mask, torch.tensor([1, 3, 4, 5]))
        assert torch.equal(target["masks"].bool().any(0), things)
        assert sum(1 for n in names if n in (3, 4, 5)) == 1
        # semantic target: stuff 0 (background), 1 (sign), 2 for every thing pixel
        assert torch.equal(target["sem_seg"] == 2, things)
        assert torch.equal(target["sem_seg"] == 1, mask == EMBEDDED.label_names.index("sign"))
        # boxes enclose their masks with pixel-exclusive corners
        for box, instance in zip(target["boxes"], target["masks"].bool()):
            ys, xs = torch.nonzero(instance, as_tuple=True)
            assert box.tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        # PQ target: every pixel labelled here; things keep their detector labels, stuff follows (background: 5)
        assert (target["panoptic"][..., 0] >= 1).all()
        assert set(target["panoptic"][..., 0][mask == 0].unique().tolist()) == {5}
        assert torch.equal(target["panoptic"][..., 0][things].unique(), target["labels"].unique())


def test_panoptic_targets_follow_a_joint_flip(embedded_panoptic):
    from torchvision.transforms import v2

    root, annotation_file = embedded_panoptic
    plain = _dataset(root, annotation_file)[0]
    flipped = _dataset(root, annotation_file, transform=v2.Compose([
        v2.RandomHorizontalFlip(p=1.0), v2.ToDtype(torch.float32, scale=True)]))[0]
    assert torch.equal(flipped[0], plain[0].flip(-1))
    for key in ("masks", "sem_seg"):
        assert torch.equal(flipped[1][key], plain[1][key].flip(-1))
    assert torch.equal(flipped[1]["panoptic"], plain[1]["panoptic"])  # evaluation target: never transformed
    width = plain[0].shape[-1]
    assert torch.equal(flipped[1]["boxes"][:, [0, 2]], width - plain[1]["boxes"][:, [2, 0]])


def test_bad_panoptic_annotations_name_the_file_and_record(tmp_path, embedded_panoptic):
    import json

    root, annotation_file = embedded_panoptic
    data = json.loads(annotation_file.read_text())
    data["annotations"][2]["segments_info"][0]["category_id"] = 99
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"bad.json: annotation #2 .*unknown category_id 99"):
        _dataset(root, bad)
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json is not valid JSON"):
        _dataset(root, bad)
    with pytest.raises(FileNotFoundError, match="missing.json"):
        _dataset(root, tmp_path / "missing.json")


# the tiny instance recipe with Panoptic FPN (same sizes and schedule), without box_score_thresh
TINY = {**INSTANCE_TINY, "task": "panoptic-segmentation",
        "model": {"name": "panoptic_fpn_sr_resnet14t",
                  "args": {**{k: v for k, v in INSTANCE_TINY["model"]["args"].items() if k != "box_score_thresh"},
                           "stuff_area_threshold": 16}}}


@pytest.mark.slow
def test_panoptic_training_reports_pq_writes_overlays_and_resumes_exactly(tmp_path):
    import json

    from safetensors.torch import load_file

    from sr_models.training import recipe_from_dict
    from sr_models.training.engine import train
    from sr_models.training.panoptic import build_panoptic_task

    data = {**TINY["data"], "root": str(tmp_path / "data")}
    cfg = recipe_from_dict({**TINY, "data": data})
    metrics = train(cfg, tmp_path / "straight", build_panoptic_task)
    for key in ("PQ", "SQ", "RQ", "PQ_th", "PQ_st"):
        assert 0 <= metrics[key] <= 100
    assert metrics["task"] == "panoptic-segmentation" and metrics["eval_images"] == 2 and metrics["steps"] == 3
    run = tmp_path / "straight"
    assert json.loads((run / "metrics.json").read_text())["PQ"] == metrics["PQ"]
    assert (run / "overlays" / "0000.png").is_file()
    config = json.loads((run / "config.json").read_text())  # the transformers folder of the run
    assert config["detector"] == "panoptic_fpn_sr_resnet14t" and config["detector_args"]["num_stuff_classes"] == 2
    assert sorted(config["id2label"].values()) == ["background", "bus", "car", "sign", "train", "truck"]

    first = recipe_from_dict({**TINY, "max_steps": 2, "data": data})
    train(first, tmp_path / "resumed", build_panoptic_task)
    train(cfg, tmp_path / "resumed", build_panoptic_task, resume=True)
    straight = load_file(run / "checkpoints" / "step_3" / "model.safetensors")
    resumed = load_file(tmp_path / "resumed" / "checkpoints" / "step_3" / "model.safetensors")
    assert straight.keys() == resumed.keys()
    assert all(torch.allclose(straight[k], resumed[k], atol=1e-6) for k in straight)


@pytest.mark.slow
def test_two_cpu_processes_train_panoptic_fpn_and_score_every_image_once(tmp_path):
    """2 gloo processes: equal replicas, and PQ over the gathered (prediction, truth) pairs equals one process
    scoring the saved model."""
    from sr_models.training.panoptic import build_panoptic_task

    recipe = {**TINY, "max_steps": 2, "eval": {"max_images": 3}, "data": {**TINY["data"], "root": str(tmp_path / "d")}}
    metrics, alone = train_in_two_processes(recipe, tmp_path, build_panoptic_task)
    assert metrics["eval_images"] == alone["eval_images"] == 3  # images scored after the gather
    for key in ("PQ", "SQ", "RQ", "PQ_th", "PQ_st"):
        assert metrics[key] == pytest.approx(alone[key], abs=1e-6), key


@pytest.fixture(scope="module")
def panoptic_folder(tmp_path_factory):
    import sr_models
    from sr_models.hf.detection import save_detector

    torch.manual_seed(0)
    model = sr_models.create_detector("panoptic_fpn_sr_resnet14t", num_classes=3, num_stuff_classes=2, min_size=64,
                                      max_size=80, box_score_thresh=0.0, box_detections_per_img=4,
                                      score_threshold=0.0, stuff_area_threshold=1).eval()
    labels = {1: "car", 2: "bus", 3: "road", 4: "sign"}  # things 1..T (the detector's labels), then stuff
    return model, save_detector(model, tmp_path_factory.mktemp("panoptic_model"), labels), labels


def test_a_saved_panoptic_fpn_reloads_and_serves_the_panoptic_pipeline(panoptic_folder):
    import numpy as np
    from PIL import Image
    from transformers import AutoModelForImageSegmentation, pipeline

    from sr_models.hf.detection import load_detector

    model, path, labels = panoptic_folder
    x = torch.rand(3, 64, 72)
    with torch.no_grad():
        expected = model([x])[0]
        got = AutoModelForImageSegmentation.from_pretrained(path).eval()(pixel_values=x[None]).detections[0]
    assert torch.equal(got["panoptic_seg"], expected["panoptic_seg"])
    assert got["segments_info"] == expected["segments_info"]
    assert load_detector(path).detector_cfg["num_stuff_classes"] == 2

    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (60, 70, 3), dtype=np.uint8))
    segments = pipeline("image-segmentation", model=str(path), subtask="panoptic")(image, threshold=0.0)
    assert segments and all(s["label"] in labels.values() and s["mask"].size == (70, 60) for s in segments)
    assert any(s["label"] in ("road", "sign") for s in segments)  # stuff comes from the semantic branch
    masks = [np.asarray(s["mask"]) > 0 for s in segments]
    assert not np.any(np.sum(masks, axis=0) > 1)  # panoptic segments do not overlap
    # the same folder answers the object-detection and instance requests with its things
    boxes = pipeline("object-detection", model=str(path))(image, threshold=0.0)
    instances = pipeline("image-segmentation", model=str(path), subtask="instance")(image, threshold=0.0)
    assert boxes and all(b["label"] in ("car", "bus") for b in boxes)
    assert instances and all(i["label"] in ("car", "bus") for i in instances)


def test_a_panoptic_fpn_saved_without_label_names_gets_one_per_thing_and_stuff_class(tmp_path):
    import sr_models
    from sr_models.hf.detection import load_detector, save_detector

    model = sr_models.create_detector("panoptic_fpn_resnet14t", num_classes=3, num_stuff_classes=2, min_size=64,
                                      max_size=80)
    assert load_detector(save_detector(model, tmp_path)).id2label == {i: f"LABEL_{i}" for i in range(1, 5)}


def test_a_mask_rcnn_answers_panoptic_requests_with_its_instances(tmp_path):
    import numpy as np
    from PIL import Image
    from transformers import pipeline

    import sr_models
    from sr_models.hf.detection import save_detector

    torch.manual_seed(0)
    model = sr_models.create_detector("maskrcnn_resnet14t_fpn", num_classes=3, min_size=64, max_size=80,
                                      box_score_thresh=0.0, box_detections_per_img=4).eval()
    path = save_detector(model, tmp_path / "maskrcnn", {1: "car", 2: "bus"})
    image = Image.fromarray(np.random.default_rng(1).integers(0, 255, (60, 70, 3), dtype=np.uint8))
    segments = pipeline("image-segmentation", model=str(path))(image, threshold=0.0)  # subtask resolved: panoptic
    instances = pipeline("image-segmentation", model=str(path), subtask="instance")(image, threshold=0.0)
    assert [(s["label"], s["score"]) for s in segments] == [(s["label"], s["score"]) for s in instances]


def test_staging_a_panoptic_folder_writes_pq_into_the_model_index(panoptic_folder, tmp_path):
    import json

    from huggingface_hub import ModelCard

    from sr_models.publishing import stage

    _, path, _ = panoptic_folder
    metrics = {"task": "panoptic-segmentation", "dataset": "embedded", "PQ": 40.25, "SQ": 70.0, "RQ": 50.0,
               "PQ_th": 45.5, "SQ_th": 71.0, "RQ_th": 55.0, "PQ_st": 30.0, "SQ_st": 69.0, "RQ_st": 44.0,
               "eval_images": 96, "steps": 300}
    (path / "metrics.json").write_text(json.dumps(metrics))
    try:
        stage(path, tmp_path / "staging", "org/panoptic-fpn-sr-embedded")
    finally:
        (path / "metrics.json").unlink()
    card = ModelCard.load(tmp_path / "staging" / "README.md")
    results = {(r.metric_name, r.metric_value) for r in card.data.eval_results}
    assert results == {("PQ", 40.25), ("PQ things", 45.5), ("PQ stuff", 30.0)}
    assert card.data.pipeline_tag == "image-segmentation"
    assert "| things | 45.5 | 71.0 | 55.0 |" in card.text and 'subtask="panoptic"' in card.text


def test_every_panoptic_name_builds_outside_timm_with_the_table9b_backbones():
    import timm

    import sr_models
    from sr_models.layers import SqueezeReasoning

    names = sr_models.list_detectors("panoptic_fpn_*")
    assert {f"panoptic_fpn_{v}resnet{d}" for v in ("", "sr_", "nl_") for d in (50, 101)} <= set(names)
    assert not any(timm.is_model(name) for name in names)
    for name in names:
        with torch.device("meta"):
            model = sr_models.create_detector(name, num_classes=81, num_stuff_classes=53)
        assert isinstance(model, PanopticFPN) and model.semantic_head.classifier.out_channels == 54
        has_sr = any(isinstance(m, SqueezeReasoning) for m in model.modules())
        assert has_sr == ("_sr_" in name)
