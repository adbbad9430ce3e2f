"""Publish a saved model or a training run to the Hugging Face Hub: stage, verify locally, upload, verify remotely.

`python hub/publish.py RUN_OR_MODEL_DIR --repo-id ORG/NAME` is the command line. The token comes from the standard
places (`HF_TOKEN`, `hf auth login`) and is never printed.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Dict, Optional

import timm
import torch
from huggingface_hub import HfApi, get_token, snapshot_download
from transformers import AutoModelForImageClassification, AutoModelForSemanticSegmentation

from .hf.saving import is_segmenter
from .model_card import render_model_card

__all__ = ["PublishError", "stage", "verify_local", "publish", "REPO_FILES"]

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
    architecture = json.loads((folder / "config.json").read_text())["architecture"]
    auto = AutoModelForSemanticSegmentation if is_segmenter(architecture) else AutoModelForImageClassification
    timm_model = timm.create_model(f"local-dir:{folder}", pretrained=True).eval()
    hf_model = auto.from_pretrained(folder).eval()
    _, height, width = timm_model.pretrained_cfg["input_size"]
    x = torch.randn(1, 3, min(height, 128), min(width, 128), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        difference = (timm_model(x) - hf_model(pixel_values=x).logits).abs().max().item()
    if difference > 1e-5:
        raise PublishError(f"{folder}: timm and transformers disagree on the logits (max difference {difference})")
    return timm_model


def stage(source: Path, staging: Path, repo_id: str) -> Dict[str, str]:
    """Copy the model files of `source` to `staging`, render README.md; return {file: sha256}."""
    missing = [name for name in REPO_FILES if not (source / name).is_file()]
    if missing:
        raise PublishError(f"{source} is not a saved sr-models folder: {', '.join(missing)} missing "
                           f"(write one with sr_models.save_pretrained or a training run)")
    staging.mkdir(parents=True, exist_ok=True)
    for name in REPO_FILES:
        shutil.copy2(source / name, staging / name)
    try:
        model = verify_local(staging)
    except PublishError:
        raise
    except Exception as e:  # a corrupt file, an architecture sr_models does not register, ...
        raise PublishError(f"{source} does not load back through timm and transformers: "
                           f"{type(e).__name__}: {_first_line(str(e))}") from e
    card = render_model_card(source, model, repo_id)
    card.save(staging / "README.md")
    return {path.name: _sha256(path) for path in sorted(staging.iterdir())}


def publish(source: Path, repo_id: str, revision: Optional[str] = None, private: bool = False,
            dry_run: bool = False, log: Callable[[str], None] = print) -> Optional[str]:
    """Stage and verify `source`, upload it to `repo_id` (branch `revision`), verify the upload; return the commit."""
    source = Path(source)
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
            raise PublishError(f"upload to {repo_id} failed: {type(e).__name__}: {message}") from None
        remote = {name: _sha256(downloaded / name) for name in hashes if (downloaded / name).is_file()}
        if remote != hashes:
            raise PublishError(f"the files downloaded from {repo_id}@{commit.oid} differ from the uploaded ones")
        log(f"published {repo_id} at {commit.oid}")
        return commit.oid
