"""Where the registry's pretrained weights live on the Hugging Face Hub: `<org>/<model>.<tag>`."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import timm
from timm.models import generate_default_cfgs

DEFAULT_HUB_ORG = "sr-models"
HUB_ORG_ENV = "SR_MODELS_HUB_ORG"

PAPER_ID = "arXiv:2011.03308"


def hub_org() -> str:
    """The Hub organisation of the registry's weights: `$SR_MODELS_HUB_ORG`, else `sr-models`."""
    return os.environ.get(HUB_ORG_ENV) or DEFAULT_HUB_ORG


def generate_hub_cfgs(cfgs: Dict[str, Dict[str, Any]]):
    """timm's `generate_default_cfgs` with each `arch.tag` entry's `hf_hub_id` set to `<org>/<arch>.<tag>`."""
    org = hub_org()
    return generate_default_cfgs({name: dict(cfg, hf_hub_id=f"{org}/{name}") for name, cfg in cfgs.items()})


_HUB_ID = re.compile(r"(hf-hub:)?\w[\w.-]*/\w[\w.-]*(@[\w.-]+)?")  # org/name[@revision]


def resolve_model_source(source: str, where: Optional[str] = None) -> Tuple[str, bool]:
    """`(timm name, is a registry name)` for a saved or run folder (`local-dir:` optional, `~` expanded), a Hub id
    (`org/name[@revision]`, `hf-hub:...`) or a registered model name (tags included); the commands' one-line errors
    name `source` and `where` it came from (if the caller does not add that itself)."""
    where = f" ({where})" if where else ""
    path = Path(source.removeprefix("local-dir:")).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{source} holds no config.json: give a folder written by a training run or "
                                    f"save_pretrained{where}")
        return f"local-dir:{path}", False
    if path.is_file():
        raise ValueError(f"{source} is a file: give the folder that holds it and its config.json{where}")
    if source.startswith(("local-dir:", ".", "/", "~")):
        raise FileNotFoundError(f"no such folder {source}{where}")
    if timm.is_model(source):
        return source, True
    if _HUB_ID.fullmatch(source):
        return (source if source.startswith("hf-hub:") else f"hf-hub:{source}"), False
    raise ValueError(f"unknown model {source!r}: not a folder, a Hub id (org/name) or a registered model name "
                     f"(see sr-models-summary){where}")
