"""Publish a saved model or a training run to the Hugging Face Hub: stage, verify locally, upload, verify remotely.

    sr-models-publish RUN_OR_MODEL_DIR --repo-id ORG/NAME [--revision R] [--private] [--dry-run] [--timeout S]

(also `python hub/publish.py ...` in a checkout). The token comes from the standard places (`HF_TOKEN`,
`hf auth login`) and is never printed. Every request waits at most `--timeout` seconds (`SR_MODELS_HUB_TIMEOUT`,
default 60) for the Hub; a failure exits 1 with one `error:` line and leaves the remote repo as it was.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence

import httpx2
import timm
import torch
from huggingface_hub import HfApi, get_token, snapshot_download
from transformers import AutoModelForImageClassification, AutoModelForSemanticSegmentation

from .cli_errors import add_debug_flag, reported_errors
from .hub_client import hub_timeout, set_hub_timeout
from .model_card import render_detector_card, render_model_card
from .models.segmentation import is_segmenter

__all__ = ["PublishError", "stage", "verify_local", "publish", "main", "REPO_FILES"]

# what a published repo holds: the folder `sr_models.save_pretrained` writes, and the card
REPO_FILES = ("model.safetensors", "config.json", "preprocessor_config.json")


class PublishError(RuntimeError):
    """A publishing step failed; the message says which and what to do."""


def _first_line(message: str) -> str:
    return (message.strip().splitlines() or [""])[0]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def verify_local(folder: Path) -> torch.nn.Module:
    """Load `folder` through timm and transformers and check both give the same logits; return the timm model."""
    timm_model = timm.create_model(f"local-dir:{folder}", pretrained=True).eval()
    auto = AutoModelForSemanticSegmentation if is_segmenter(timm_model) else AutoModelForImageClassification
    hf_model = auto.from_pretrained(folder).eval()
    _, height, width = timm_model.pretrained_cfg["input_size"]
    x = torch.randn(1, 3, min(height, 128), min(width, 128), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        difference = (timm_model(x) - hf_model(pixel_values=x).logits).abs().max().item()
    if difference > 1e-5:
        raise PublishError(f"{folder}: timm and transformers disagree on the logits (max difference {difference})")
    return timm_model


def verify_local_detector(folder: Path) -> torch.nn.Module:
    """Load a detector folder through transformers and as the torchvision model; check both detect alike."""
    from transformers import AutoModelForObjectDetection

    from .hf.detection import load_detector

    detector = load_detector(folder)
    hf_model = AutoModelForObjectDetection.from_pretrained(folder).eval()
    x = torch.rand(1, 3, 96, 128, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = detector(list(x))[0], hf_model(pixel_values=x).detections[0]
    if a["boxes"].shape != b["boxes"].shape or not torch.allclose(a["boxes"], b["boxes"], atol=1e-4):
        raise PublishError(f"{folder}: the torchvision and transformers loads of the detector disagree")
    return detector


def stage(source: Path, staging: Path, repo_id: str) -> Dict[str, str]:
    """Copy the model files of `source` to `staging`, render README.md; return {file: sha256}."""
    missing = [name for name in REPO_FILES if not (source / name).is_file()]
    if missing:
        raise PublishError(f"{source} is not a saved sr-models folder: {', '.join(missing)} missing "
                           f"(write one with sr_models.save_pretrained or a training run)")
    staging.mkdir(parents=True, exist_ok=True)
    for name in REPO_FILES:
        shutil.copy2(source / name, staging / name)
    detector = json.loads((staging / "config.json").read_text()).get("model_type") == "sr_detector"
    try:
        model = verify_local_detector(staging) if detector else verify_local(staging)
    except PublishError:
        raise
    except Exception as e:  # a corrupt file, an architecture sr_models does not register, ...
        raise PublishError(f"{source} does not load back through timm and transformers: "
                           f"{type(e).__name__}: {_first_line(str(e))}") from e
    card = (render_detector_card if detector else render_model_card)(source, model, repo_id)
    card.save(staging / "README.md")
    return {path.name: _sha256(path) for path in sorted(staging.iterdir())}


def publish(source: Path, repo_id: str, revision: Optional[str] = None, private: bool = False,
            dry_run: bool = False, log: Callable[[str], None] = print,
            timeout: Optional[float] = None) -> Optional[str]:
    """Stage and verify `source`, upload it to `repo_id` (branch `revision`), verify the upload; return the commit.

    Requests to the Hub time out after `timeout` seconds (default `hub_timeout()`), see `sr_models.hub_client`."""
    source = Path(source)
    try:
        timeout = timeout or hub_timeout()
    except ValueError as e:
        raise PublishError(str(e)) from None
    if not (source / "config.json").is_file():
        raise PublishError(f"{source} has no config.json: pass a training run or a sr_models.save_pretrained folder")
    token = get_token()
    if token is None and not dry_run:
        raise PublishError("no Hugging Face token: set HF_TOKEN or run `hf auth login`")
    with tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp) / "repo"
        log(f"staging {source} -> {repo_id} and checking that timm and transformers load it alike")
        hashes = stage(source, staging, repo_id)
        if dry_run:
            log(f"dry run: would upload {', '.join(hashes)} to {repo_id}")
            return None
        set_hub_timeout(timeout)
        api = HfApi(token=token)
        try:
            api.create_repo(repo_id, private=private, exist_ok=True)
            if revision and revision != "main":
                api.create_branch(repo_id, branch=revision, exist_ok=True)
            log(f"uploading to {api.endpoint}/{repo_id}" + (f" (branch {revision})" if revision else ""))
            commit = api.upload_folder(folder_path=staging, repo_id=repo_id, revision=revision,
                                       commit_message=f"Publish {source.name} with sr-models")
            log(f"verifying commit {commit.oid} by downloading it")
            downloaded = Path(snapshot_download(repo_id, revision=commit.oid, token=token,
                                                cache_dir=Path(tmp) / "cache"))
        except Exception as e:  # network, HTTP and server errors from huggingface_hub / httpx
            message = _first_line(str(e).replace(token, "***"))  # never echo the token
            if isinstance(e, httpx2.TimeoutException):
                message += f" (no answer within {timeout:g} s; --timeout or SR_MODELS_HUB_TIMEOUT sets the limit)"
            raise PublishError(f"upload to {repo_id} failed: {type(e).__name__}: {message}") from None
        remote = {name: _sha256(downloaded / name) for name in hashes if (downloaded / name).is_file()}
        if remote != hashes:
            raise PublishError(f"the files downloaded from {repo_id}@{commit.oid} differ from the uploaded ones")
        log(f"published {repo_id} at {commit.oid}")
        return commit.oid


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The `sr-models-publish` / `hub/publish.py` command line; 0 on success, exit 1 with one `error:` line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="a training run's output folder or a saved model folder")
    parser.add_argument("--repo-id", required=True, help="ORG/NAME on the Hub")
    parser.add_argument("--revision", help="branch to commit to (created from main if missing)")
    parser.add_argument("--private", action="store_true", help="create the repo private")
    parser.add_argument("--dry-run", action="store_true", help="stage and verify locally, upload nothing")
    parser.add_argument("--timeout", type=float, help="seconds to wait for an answer from the Hub before failing "
                                                      "(default: $SR_MODELS_HUB_TIMEOUT or 60)")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    if args.timeout is not None and not args.timeout > 0:
        parser.error(f"--timeout {args.timeout:g} must be a positive number of seconds")
    with reported_errors(args.debug):
        publish(args.source, args.repo_id, args.revision, args.private, args.dry_run, timeout=args.timeout)
    return 0
