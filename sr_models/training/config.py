"""Training configs: YAML files, `key.sub=value` overrides, and validation with errors that say what to fix."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Dict, Sequence

import timm
import yaml

from ..recipes import recipe_path

__all__ = ["load_config", "apply_overrides", "validate_config", "TASKS"]

TASKS = ("semantic-segmentation", "image-classification")

_DEFAULTS: Dict[str, Any] = {
    "seed": 0,
    "model": {"args": {}},
    "optim": {"name": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4},
    "schedule": {"name": "poly", "power": 0.9, "warmup_steps": 0},
    "loss": {"aux_weight": 0.4, "ohem_thresh": None, "ohem_min_kept": 100000, "label_smoothing": 0.0},
    "batch_size": 8,
    "grad_accum_steps": 1,
    "max_steps": 1000,
    "checkpoint_every": 500,
    "keep_checkpoints": 2,
    "log_every": 10,
    "num_workers": 0,
    "eval": {"mode": "whole", "max_images": None},
    "overlays": 4,
}


def _merge(base: Dict[str, Any], update: Dict[str, Any]) -> Dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in update.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def apply_overrides(cfg: Dict[str, Any], overrides: Sequence[str]) -> Dict[str, Any]:
    """Set `a.b.c=value` entries (value parsed as YAML: numbers, lists, null, ...) in a copy of `cfg`."""
    cfg = copy.deepcopy(cfg)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"override {item!r} is not of the form key.sub=value")
        node = cfg
        *parents, leaf = key.split(".")
        for part in parents:
            if not isinstance(node.setdefault(part, {}), dict):
                raise ValueError(f"override {item!r}: {part!r} is not a section of the config")
            node = node[part]
        node[leaf] = yaml.safe_load(raw)
    return cfg


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> Dict[str, Any]:
    """The YAML config at `path` (or the packaged recipe of that name) over the defaults, with `overrides` applied."""
    path = recipe_path(path)
    loaded = yaml.safe_load(path.read_text()) or {}
    if not isinstance(loaded, dict):
        raise ValueError(f"{path} must hold a mapping of config keys")
    return validate_config(apply_overrides(_merge(_DEFAULTS, loaded), overrides))


def validate_config(cfg: Dict[str, Any]) -> Dict[str, Any]:
    """Check the keys the training code relies on; return `cfg`."""
    if cfg.get("task") not in TASKS:
        raise ValueError(f"task={cfg.get('task')!r} must be one of {list(TASKS)}")
    name = cfg.get("model", {}).get("name")
    if not name or not timm.is_model(name):
        raise ValueError(f"model.name={name!r} is not a registered timm model (sr-models registers "
                         f"e.g. srnet_resnet50_d8, sr_resnet50; `timm.list_models('sr*')` lists them)")
    data = cfg.get("data") or {}
    if not data.get("name"):
        raise ValueError("data.name is required (e.g. cityscapes, ade20k, embedded, imagefolder, hf)")
    root = data.get("root")
    if root and not Path(root).exists():
        raise FileNotFoundError(f"data.root={root} does not exist; download the data set there or set data.root")
    for key in ("batch_size", "grad_accum_steps", "max_steps", "checkpoint_every"):
        if not isinstance(cfg[key], int) or cfg[key] < 1:
            raise ValueError(f"{key}={cfg[key]!r} must be a positive integer")
    if cfg["optim"]["name"] not in ("sgd", "adamw"):
        raise ValueError(f"optim.name={cfg['optim']['name']!r} must be 'sgd' or 'adamw'")
    if cfg["schedule"]["name"] not in ("poly", "cosine"):
        raise ValueError(f"schedule.name={cfg['schedule']['name']!r} must be 'poly' or 'cosine'")
    return cfg
