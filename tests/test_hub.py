"""Publishing to the Hub, end to end, against the loopback Hub of tests/hub_server.py.

The client side (hub/publish.py, timm, transformers) runs in subprocesses: huggingface_hub reads HF_ENDPOINT,
HF_HUB_DISABLE_XET, HF_HOME and the token when it is imported, and this pytest process imported it long ago.
"""
import base64
import hashlib
import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import timm
import torch
import yaml
from huggingface_hub import ModelCard
from transformers import AutoConfig

import sr_models
from hub_server import LoopbackHub
from sr_models.publishing import PublishError, publish

REPO = Path(__file__).resolve().parents[1]
TOKEN = "hf_loopback_secret_token_123"
ORG = "loopback-org"
REPO_ID = f"{ORG}/srnet_resnet18_d8.cityscapes"  # the registry's hf_hub_id of that tag, with SR_MODELS_HUB_ORG=ORG


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    server = LoopbackHub(TOKEN, tmp_path_factory.mktemp("loopback-hub")).start()
    yield server
    server.stop()


def _env(endpoint, tmp_path, token=TOKEN):
    env = {**os.environ, "HF_ENDPOINT": endpoint, "HF_HUB_DISABLE_XET": "1", "HF_HOME": str(tmp_path / "hf"),
           "SR_MODELS_HUB_ORG": ORG, "HF_HUB_DISABLE_TELEMETRY": "1", "OMP_NUM_THREADS": "1"}
    env.pop("HF_TOKEN", None)
    if token:
        env["HF_TOKEN"] = token
    return env


def _publish(endpoint, tmp_path, source, *args, token=TOKEN, login=False, env=None):
    """Run hub/publish.py with the token in HF_TOKEN (or, `login`, in the file `hf auth login` writes).

    The token must not show in its output nor in any other file it leaves in HF_HOME."""
    token_file = tmp_path / "hf" / "token"
    if login:
        token_file.parent.mkdir(parents=True, exist_ok=True)
        token_file.write_text(token)
    result = subprocess.run([sys.executable, str(REPO / "hub" / "publish.py"), str(source), *args], cwd=REPO,
                            env={**_env(endpoint, tmp_path, None if login else token), **(env or {})},
                            capture_output=True, text=True, timeout=600)
    token_file.unlink(missing_ok=True)
    assert TOKEN not in result.stdout + result.stderr
    leftovers = [p for p in (tmp_path / "hf").rglob("*") if p.is_file() and TOKEN.encode() in p.read_bytes()]
    assert not leftovers
    return result


def _head(hub, repo_id):
    return hub.repos[repo_id].refs["main"]


def _make_run(path: Path, seed: int, miou: float, **model_args) -> Path:
    """A training run folder as train/seg.py writes it (model + metrics.json + config.yaml)."""
    torch.manual_seed(seed)
    model = timm.create_model("srnet_resnet18_d8", num_classes=19, **model_args)
    sr_models.save_pretrained(model, path)
    per_class = {name: miou for name in model.pretrained_cfg["label_names"]}
    metrics = {"task": "semantic-segmentation", "dataset": "cityscapes", "mIoU": miou, "aAcc": 90.0,
               "per_class_iou": per_class, "large_object_mIoU": miou, "large_object_classes": ["truck", "bus", "train"],
               "steps": 10, "eval_mode": "whole", "eval_images": 3}
    (path / "metrics.json").write_text(json.dumps(metrics))
    (path / "config.yaml").write_text(yaml.safe_dump({
        "task": "semantic-segmentation", "model": {"name": "srnet_resnet18_d8", "args": model_args},
        "data": {"name": "cityscapes", "crop_size": [769, 769]}, "optim": {"name": "sgd", "lr": 0.01},
        "schedule": {"name": "poly", "power": 0.9}, "batch_size": 8, "max_steps": 10}))
    return path


TINY = dict(backbone="resnet10t", channels=32)  # a smaller model where the registry's default one is not needed


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    return _make_run(tmp_path_factory.mktemp("run1"), seed=1, miou=61.5)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return _make_run(tmp_path_factory.mktemp("tiny1"), seed=1, miou=61.5, **TINY)


@pytest.fixture(scope="module")
def classifier_run(tmp_path_factory):
    """A classification run folder as train/cls.py writes it."""
    path = tmp_path_factory.mktemp("cls")
    torch.manual_seed(0)
    sr_models.save_pretrained(timm.create_model("sr_resnet18", num_classes=7), path)
    (path / "metrics.json").write_text(json.dumps({"task": "image-classification", "top1": 42.25, "top5": 91.5,
                                                   "steps": 20, "eval_images": 64}))
    (path / "config.yaml").write_text(yaml.safe_dump({
        "task": "image-classification", "model": {"name": "sr_resnet18", "args": {"num_classes": 7}},
        "data": {"name": "imagefolder", "crop_size": 224}, "optim": {"name": "sgd", "lr": 0.1}, "max_steps": 20}))
    return path


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A real (tiny) training run of train/seg.py's code on the embedded data set."""
    from sr_models.training import load_config, train
    from sr_models.training.segmentation import build_segmentation_task

    folder = tmp_path_factory.mktemp("trained")
    (folder / "tiny.yaml").write_text(yaml.safe_dump({
        "task": "semantic-segmentation",
        "model": {"name": "srnet_resnet18_d8", "args": {"backbone": "resnet10t", "channels": 32}},
        "data": {"name": "embedded", "crop_size": [32, 32], "embedded": {"image_size": 32, "num_images": 8}},
        "batch_size": 4, "max_steps": 4, "checkpoint_every": 4, "eval": {"mode": "whole", "max_images": 4},
        "overlays": 1}))
    train(load_config(folder / "tiny.yaml"), folder / "run", build_segmentation_task)
    return folder / "run"


LOAD_EVERY_DOOR = r"""
import json, sys, torch, timm, sr_models
from transformers import AutoModelForImageClassification, AutoModelForSemanticSegmentation, pipeline
from PIL import Image
repo_id, revision, local, tag = sys.argv[1:5]
segmenter = json.load(open(local + "/config.json"))["model_type"] == "srnet"
auto = AutoModelForSemanticSegmentation if segmenter else AutoModelForImageClassification
x = torch.randn(1, 3, 64, 96, generator=torch.Generator().manual_seed(0))
with torch.no_grad():
    expected = timm.create_model("local-dir:" + local, pretrained=True).eval()(x)
    loaded = {"hf-hub": timm.create_model(f"hf-hub:{repo_id}@{revision}", pretrained=True),
              "transformers": auto.from_pretrained(repo_id, revision=revision)}
    if tag != "-":
        loaded["registry tag"] = timm.create_model(tag, pretrained=True)
    report = {}
    for door, model in loaded.items():
        out = model.eval()(x) if door != "transformers" else model.eval()(pixel_values=x).logits
        report[door] = (out - expected).abs().max().item()
task = "image-segmentation" if segmenter else "image-classification"
outputs = pipeline(task, model=repo_id, revision=revision)(Image.new("RGB", (61, 45)))
report["labels"] = [o["label"] for o in outputs]
print(json.dumps(report))
"""


def _load_every_door(hub, tmp_path, repo_id, local, revision="main", tag="-"):
    """Max |logit difference| to the local folder through hf-hub:, transformers (and a registry tag); pipeline labels.

    timm's doors run the same code as the local model (difference 0); transformers' adapter reaches the same weights
    through its own forward, a few float32 ulps away."""
    loaded = subprocess.run([sys.executable, "-c", LOAD_EVERY_DOOR, repo_id, revision, str(local), tag],
                            env=_env(hub.endpoint, tmp_path), capture_output=True, text=True, timeout=600)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    return json.loads(loaded.stdout.strip().splitlines()[-1])


def _request(hub, method, path, body=b"", token=TOKEN, content_type="application/json"):
    """(status, headers, body) of one raw request to the loopback Hub."""
    headers = {"Content-Type": content_type, **({"Authorization": f"Bearer {token}"} if token else {})}
    request = urllib.request.Request(hub.endpoint + path, data=body or None, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


# --- the loopback Hub itself: the protocol facts of docs/hub_protocol.md ------------------------------------------

def test_loopback_hub_needs_the_token_for_writes_and_answers_409_with_url_for_an_existing_repo(hub):
    create = json.dumps({"name": "protocol", "organization": ORG}).encode()
    assert _request(hub, "POST", "/api/repos/create", create, token=None)[0] == 401
    assert _request(hub, "POST", "/api/repos/create", create, token="hf_wrong")[0] == 401
    assert _request(hub, "POST", "/api/repos/create", create)[0] == 200
    status, _, body = _request(hub, "POST", "/api/repos/create", create)
    assert status == 409 and json.loads(body)["url"] == f"{hub.endpoint}/{ORG}/protocol"
    commit = json.dumps({"key": "header", "value": {"summary": "x"}}).encode()
    assert _request(hub, "POST", f"/api/models/{ORG}/protocol/commit/main", commit, token=None)[0] == 401


def test_loopback_hub_commits_all_or_nothing_and_keeps_old_revisions(hub):
    repo_id = f"{ORG}/protocol-commits"
    _request(hub, "POST", "/api/repos/create", json.dumps({"name": "protocol-commits", "organization": ORG}).encode())
    first = _head(hub, repo_id)
    data = b"weights" * 100
    oid = hashlib.sha256(data).hexdigest()
    lines = [{"key": "header", "value": {"summary": "add"}},
             {"key": "file", "value": {"path": "a.txt", "content": base64.b64encode(b"hello").decode(),
                                       "encoding": "base64"}},
             {"key": "lfsFile", "value": {"path": "w.safetensors", "algo": "sha256", "oid": oid, "size": len(data)}}]
    ndjson = "\n".join(json.dumps(line) for line in lines).encode()
    commit = f"/api/models/{repo_id}/commit/main"
    # the LFS object was never uploaded: nothing is applied, not even a.txt
    assert _request(hub, "POST", commit, ndjson, content_type="application/x-ndjson")[0] == 400
    assert _head(hub, repo_id) == first
    assert _request(hub, "PUT", f"/lfs-upload/{oid}", b"tampered", token=None)[0] == 400  # sha256 is checked
    assert _request(hub, "PUT", f"/lfs-upload/{oid}", data, token=None)[0] == 200
    status, _, body = _request(hub, "POST", commit, ndjson, content_type="application/x-ndjson")
    second = json.loads(body)["commitOid"]
    assert status == 200 and len(second) == 40 and _head(hub, repo_id) == second != first

    status, headers, content = _request(hub, "GET", f"/{repo_id}/resolve/main/w.safetensors")
    assert status == 200 and content == data and headers["X-Repo-Commit"] == second
    assert headers["ETag"] == f'"{oid}"' and headers["Content-Length"] == str(len(data))
    assert _request(hub, "HEAD", f"/{repo_id}/resolve/{first}/a.txt")[1]["X-Error-Code"] == "EntryNotFound"
    assert _request(hub, "GET", f"/{repo_id}/resolve/nope/a.txt")[1]["X-Error-Code"] == "RevisionNotFound"
    assert _request(hub, "GET", f"/{ORG}/nope/resolve/main/a.txt")[1]["X-Error-Code"] == "RepoNotFound"
    tree = json.loads(_request(hub, "GET", f"/api/models/{repo_id}/tree/{second}?recursive=true")[2])
    assert {e["path"]: e.get("lfs", {}).get("oid") for e in tree} == {"a.txt": None, "w.safetensors": oid}
    assert json.loads(_request(hub, "GET", f"/api/models/{repo_id}/revision/{first}")[2])["siblings"] == []


# --- publishing, end to end through the real clients ------------------------------------------------------------

@pytest.mark.slow
def test_publish_a_trained_run_then_hf_hub_transformers_and_pipeline_give_its_logits(hub, tmp_path, trained_run):
    repo_id = f"{ORG}/srnet-embedded"
    result = _publish(hub.endpoint, tmp_path, trained_run, "--repo-id", repo_id)
    assert result.returncode == 0, result.stderr[-3000:]
    report = _load_every_door(hub, tmp_path, repo_id, trained_run)
    assert report["hf-hub"] == 0.0 and report["transformers"] < 1e-5
    assert set(report["labels"]) <= {"background", "car", "sign", "truck", "bus", "train"}
    tree = hub.repos[repo_id].tree(_head(hub, repo_id))
    assert set(tree) == {"README.md", "config.json", "model.safetensors", "preprocessor_config.json"}  # no checkpoints
    card = ModelCard(tree["README.md"].content.decode())
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert card.data.eval_results[0].metric_value == metrics["mIoU"] and card.data.datasets == ["embedded"]


@pytest.mark.slow
def test_publish_a_classifier_then_hf_hub_transformers_and_pipeline_give_its_logits(hub, tmp_path, classifier_run):
    repo_id = f"{ORG}/sr-resnet18-tiny"
    result = _publish(hub.endpoint, tmp_path, classifier_run, "--repo-id", repo_id)
    assert result.returncode == 0, result.stderr[-3000:]
    report = _load_every_door(hub, tmp_path, repo_id, classifier_run)
    assert report["hf-hub"] == 0.0 and report["transformers"] < 1e-5
    id2label = AutoConfig.from_pretrained(classifier_run).id2label
    assert report["labels"] and set(report["labels"]) <= set(id2label.values())
    card = ModelCard(hub.repos[repo_id].tree(_head(hub, repo_id))["README.md"].content.decode())
    assert card.data.pipeline_tag == "image-classification"
    assert [r.metric_value for r in card.data.eval_results] == [42.25, 91.5]


@pytest.mark.slow
def test_registry_tag_finds_its_weights_on_the_hub(hub, tmp_path, first_run):
    result = _publish(hub.endpoint, tmp_path, first_run, "--repo-id", REPO_ID)
    assert result.returncode == 0, result.stderr[-3000:]
    report = _load_every_door(hub, tmp_path, REPO_ID, first_run, tag="srnet_resnet18_d8.cityscapes")
    assert report["registry tag"] == report["hf-hub"] == 0.0 and report["transformers"] < 1e-5
    assert set(report["labels"]) <= set(timm.create_model("srnet_resnet18_d8").pretrained_cfg["label_names"])


@pytest.mark.slow
def test_second_publish_is_a_new_revision_and_failed_ones_change_nothing(hub, tmp_path, tmp_path_factory, tiny_run):
    repo_id = f"{ORG}/revisions"
    assert _publish(hub.endpoint, tmp_path, tiny_run, "--repo-id", repo_id).returncode == 0
    first_sha = _head(hub, repo_id)
    second_run = _make_run(tmp_path_factory.mktemp("run2"), seed=2, miou=70.0, **TINY)
    assert _publish(hub.endpoint, tmp_path, second_run, "--repo-id", repo_id).returncode == 0
    second_sha = _head(hub, repo_id)
    assert second_sha != first_sha
    report = _load_every_door(hub, tmp_path, repo_id, tiny_run, revision=first_sha)  # the old one, by revision
    assert report["hf-hub"] == 0.0 and report["transformers"] < 1e-5

    hub.fail_next["commit"] = 1  # the server fails at the commit, after the weights went up
    failed = _publish(hub.endpoint, tmp_path, tiny_run, "--repo-id", repo_id)
    assert failed.returncode == 1
    assert failed.stderr.strip().splitlines()[-1].startswith(f"error: upload to {repo_id} failed: ")
    assert _head(hub, repo_id) == second_sha  # the previous revision is intact

    third_run = _make_run(tmp_path_factory.mktemp("run3"), seed=3, miou=71.0, **TINY)
    hub.fail_next["lfs_put"] = 6  # the weights' PUT fails on every one of the client's retries
    failed = _publish(hub.endpoint, tmp_path, third_run, "--repo-id", repo_id)
    assert failed.returncode == 1 and f"error: upload to {repo_id} failed" in failed.stderr
    assert _head(hub, repo_id) == second_sha and hub.fail_next["lfs_put"] == 0

    hub.fail_next["lfs_put"] = 1  # a transient failure is retried; --revision commits to a new branch
    result = _publish(hub.endpoint, tmp_path, third_run, "--repo-id", repo_id, "--revision", "experiment")
    assert result.returncode == 0, result.stderr[-3000:]
    assert hub.fail_next["lfs_put"] == 0  # the failing PUT was tried, and retried
    refs = hub.repos[repo_id].refs
    assert refs["main"] == second_sha and refs["experiment"] not in (first_sha, second_sha)
    published = hub.repos[repo_id].tree(refs["experiment"])["model.safetensors"].content
    assert published == (third_run / "model.safetensors").read_bytes()


@pytest.mark.slow
def test_publish_to_a_stalled_hub_times_out_with_one_error_line_and_changes_nothing(hub, tmp_path, tiny_run):
    repo_id = f"{ORG}/stalled"
    assert _publish(hub.endpoint, tmp_path, tiny_run, "--repo-id", repo_id).returncode == 0
    head = _head(hub, repo_id)
    # the preupload stalls once (the client's retry then gets an answer), the commit stalls (not retried)
    hub.stall_next.update(preupload=1, commit=1)
    stalled = _publish(hub.endpoint, tmp_path, tiny_run, "--repo-id", repo_id, env={"SR_MODELS_HUB_TIMEOUT": "2"})
    assert stalled.returncode == 1
    errors = [line for line in stalled.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: upload to {repo_id} failed: ReadTimeout: timed out (no answer within 2 s; "
                      f"--timeout or SR_MODELS_HUB_TIMEOUT sets the limit)"]
    assert hub.stall_next == {"preupload": 0, "commit": 0} and _head(hub, repo_id) == head
    bad = _publish(hub.endpoint, tmp_path, tiny_run, "--repo-id", repo_id, "--timeout", "0")
    assert bad.returncode == 1 and "--timeout 0 must be a positive number of seconds" in bad.stderr


@pytest.mark.slow
def test_private_repo_with_the_login_token_needs_it_to_read_and_a_wrong_token_fails_clearly(hub, tmp_path, tiny_run):
    repo_id = f"{ORG}/private"
    wrong = _publish(hub.endpoint, tmp_path, tiny_run, "--repo-id", repo_id, "--private", token="hf_wrong_token")
    assert wrong.returncode == 1 and "401" in wrong.stderr and repo_id not in hub.repos
    assert "hf_wrong_token" not in wrong.stdout + wrong.stderr
    assert _publish(hub.endpoint, tmp_path, tiny_run, "--repo-id", repo_id, "--private", login=True).returncode == 0
    assert hub.repos[repo_id].private
    code = "import sys; from huggingface_hub import hf_hub_download; hf_hub_download(sys.argv[1], 'config.json')"
    for token, expected in ((TOKEN, 0), (None, 1)):
        fresh_cache = tmp_path / f"reader-{token is not None}"
        read = subprocess.run([sys.executable, "-c", code, repo_id], env=_env(hub.endpoint, fresh_cache, token),
                              capture_output=True, text=True, timeout=300)
        assert read.returncode == expected, read.stderr[-2000:]


@pytest.mark.slow
def test_publish_without_a_token_fails_clearly(hub, tmp_path, first_run):
    result = _publish(hub.endpoint, tmp_path, first_run, "--repo-id", f"{ORG}/no-token", token=None)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: no Hugging Face token: set HF_TOKEN or run `hf auth login`"
    assert f"{ORG}/no-token" not in hub.repos


@pytest.mark.slow
def test_publish_to_an_unreachable_hub_fails_clearly(tmp_path, first_run):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{s.getsockname()[1]}"
    result = _publish(endpoint, tmp_path, first_run, "--repo-id", f"{ORG}/offline")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: upload to {ORG}/offline failed: ConnectError")


def test_dry_run_stages_and_verifies_without_uploading(first_run):
    messages = []
    assert publish(first_run, f"{ORG}/dry", dry_run=True, log=messages.append) is None
    assert messages[-1].startswith("dry run: would upload README.md, config.json, model.safetensors")


def test_a_folder_that_is_not_a_saved_model_fails_clearly(tmp_path):
    with pytest.raises(PublishError, match="has no config.json: pass a training run or a sr_models.save_pretrained"):
        publish(tmp_path, f"{ORG}/x", dry_run=True)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(PublishError, match="model.safetensors, preprocessor_config.json missing"):
        publish(tmp_path, f"{ORG}/x", dry_run=True)


def test_card_parses_and_its_metadata_holds_the_run_numbers(first_run, tmp_path):
    from sr_models.model_card import render_model_card
    from sr_models.profile import count_macs, count_params

    model = timm.create_model(f"local-dir:{first_run}", pretrained=True)
    card_path = tmp_path / "README.md"
    render_model_card(first_run, model, REPO_ID).save(card_path)
    card = ModelCard.load(card_path)
    assert card.data.library_name == "sr-models" and {"timm", "transformers", "sr-models"} <= set(card.data.tags)
    assert card.data.pipeline_tag == "image-segmentation" and card.data.datasets == ["cityscapes"]
    assert card.data.license == model.pretrained_cfg["license"]
    assert [(r.metric_type, r.metric_value) for r in card.data.eval_results] == [("mean_iou", 61.5), ("accuracy", 90.0)]
    _, height, width = model.pretrained_cfg["input_size"]
    assert f"| parameters | {count_params(model) / 1e6:.2f}M |" in card.text
    assert f"at {height}x{width} | {count_macs(model, (1, 3, height, width)) / 1e9:.2f} |" in card.text
    assert "| truck | 61.5 |" in card.text and "| optim.lr | 0.01 |" in card.text
    assert "arXiv:2011.03308" in card.text and f"hf-hub:{REPO_ID}" in card.text


RUN_SNIPPETS = r"""
import sys
for path in sys.argv[1:]:
    exec(compile(open(path).read(), path, "exec"), {"__name__": "__main__"})
    print("ran", path)
"""


@pytest.mark.slow
def test_card_usage_snippets_run_as_printed_against_a_saved_folder(tiny_run, classifier_run, tmp_path):
    """The Usage code of each card, with the repo id standing for a local folder, runs in a fresh interpreter."""
    import re

    from sr_models.model_card import render_model_card

    snippets = []
    for folder in (tiny_run, classifier_run):
        card = render_model_card(folder, timm.create_model(f"local-dir:{folder}", pretrained=True), f"{ORG}/snippet")
        code = re.search(r"^## Usage\n+```python\n(.*?)^```", card.text, flags=re.S | re.M).group(1)
        assert code.startswith("import sr_models") and f'"{ORG}/snippet"' in code and f"hf-hub:{ORG}/snippet" in code
        code = code.replace(f"hf-hub:{ORG}/snippet", f"local-dir:{folder}").replace(f"{ORG}/snippet", str(folder))
        snippets.append(tmp_path / f"{folder.name}.py")
        snippets[-1].write_text(code)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    result = subprocess.run([sys.executable, "-c", RUN_SNIPPETS, *map(str, snippets)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("ran ") == 2


def test_card_of_a_bare_folder_says_it_has_no_evaluation(tmp_path):
    from sr_models.model_card import render_model_card

    model = timm.create_model("sr_resnet18", num_classes=3)
    sr_models.save_pretrained(model, tmp_path / "bare")
    card = render_model_card(tmp_path / "bare", model, f"{ORG}/bare")
    assert "without evaluation results" in card.text and card.data.eval_results is None
    assert card.data.pipeline_tag == "image-classification" and card.data.datasets is None


@pytest.mark.slow
def test_pretrained_tag_missing_on_the_hub_names_the_repo_it_tried(hub, tmp_path):
    code = "import sr_models, timm; timm.create_model('srnet_resnet50_d8.ade20k', pretrained=True)"
    result = subprocess.run([sys.executable, "-c", code], env=_env(hub.endpoint, tmp_path), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode != 0
    assert f"{ORG}/srnet_resnet50_d8.ade20k" in result.stderr


def test_every_registry_tag_points_at_org_model_tag_on_the_hub():
    from sr_models.models._hub import hub_org
    from timm.models import get_pretrained_cfg

    names = timm.list_models(["sr_*", "srnet_*", "fcn_*", "dfseg_*", "dfnet*"], pretrained=True)
    assert len(names) > 10
    hub_ids = {name: get_pretrained_cfg(name).hf_hub_id for name in names}
    assert hub_ids == {name: f"{hub_org()}/{name}" for name in names}


def test_hub_timeout_comes_from_the_environment_and_outlives_a_recreated_client(monkeypatch):
    import httpx2
    from huggingface_hub import close_session, get_session, set_client_factory
    from huggingface_hub.utils._http import default_client_factory

    from sr_models.hub_client import hub_timeout, set_hub_timeout

    monkeypatch.delenv("SR_MODELS_HUB_TIMEOUT", raising=False)
    assert hub_timeout() == 60
    monkeypatch.setenv("SR_MODELS_HUB_TIMEOUT", "2.5")
    assert hub_timeout() == 2.5
    monkeypatch.setenv("SR_MODELS_HUB_TIMEOUT", "soon")
    with pytest.raises(ValueError, match=r"SR_MODELS_HUB_TIMEOUT='soon' must be a positive number of seconds"):
        hub_timeout()
    try:
        set_hub_timeout(2.5)
        assert get_session().timeout == httpx2.Timeout(2.5)
        close_session()  # what huggingface_hub does after a connection error
        assert get_session().timeout == httpx2.Timeout(2.5)
    finally:
        set_client_factory(default_client_factory)
