"""A detector folder: `model.safetensors` + `config.json` (the registered name and its arguments, the labels)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Optional

from safetensors.torch import load_model, save_model
from torch import nn

from ._registry import create_detector

__all__ = ["save_detector", "load_detector"]


def save_detector(model: nn.Module, folder: str | Path, id2label: Optional[Dict[int, str]] = None) -> Path:
    """Write `model` (built by `create_detector`) to `folder`; `id2label` names its labels (category ids)."""
    cfg = getattr(model, "detector_cfg", None)
    if cfg is None:
        raise ValueError(f"{type(model).__name__} was not built by sr_models.create_detector: no detector_cfg to save")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_model(model, str(folder / "model.safetensors"))
    config = dict(detector=cfg, id2label={str(k): v for k, v in (id2label or {}).items()})
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    return folder


def load_detector(folder: str | Path) -> nn.Module:
    """The detector saved in `folder`, in eval mode, with `id2label` (int keys) as an attribute."""
    folder = Path(folder)
    path = folder / "config.json"
    try:
        config = json.loads(path.read_text())
        cfg = dict(config["detector"])
    except (OSError, json.JSONDecodeError, KeyError) as e:
        raise ValueError(f"{path} is not a detector config ({e})") from None
    model = create_detector(cfg.pop("name"), **cfg)
    load_model(model, str(folder / "model.safetensors"))
    model.id2label = {int(k): v for k, v in config.get("id2label", {}).items()}
    return model.eval()
