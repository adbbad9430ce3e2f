"""Where the registry's pretrained weights live on the Hugging Face Hub: `<org>/<model>.<tag>`."""
from __future__ import annotations

import os
from typing import Any, Dict

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
