"""A timeout on every request to the Hugging Face Hub (huggingface_hub 2.4's HTTP client has none of its own).

`set_hub_timeout(hub_timeout())` is called by the commands (training, publishing): a Hub that accepts a connection
and never answers then fails the request after `SR_MODELS_HUB_TIMEOUT` seconds (default 60) instead of hanging.
"""
from __future__ import annotations

import os

import httpx2
from huggingface_hub import set_client_factory
from huggingface_hub.utils._http import default_client_factory

__all__ = ["DEFAULT_TIMEOUT", "hub_timeout", "set_hub_timeout"]

DEFAULT_TIMEOUT = 60.0  # seconds without progress (connect, read, write) before a request fails


def hub_timeout() -> float:
    """The timeout in seconds of requests to the Hub: `SR_MODELS_HUB_TIMEOUT`, else 60."""
    raw = os.environ.get("SR_MODELS_HUB_TIMEOUT", str(DEFAULT_TIMEOUT))
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise ValueError(f"SR_MODELS_HUB_TIMEOUT={raw!r} must be a positive number of seconds (environment)")
    return seconds


def set_hub_timeout(seconds: float) -> None:
    """Make every huggingface_hub request that sets no timeout of its own fail after `seconds` without progress.

    Uploads, commits and repo creation set none; downloads have their own (`HF_HUB_ETAG_TIMEOUT`,
    `HF_HUB_DOWNLOAD_TIMEOUT`). The client is replaced through huggingface_hub's `set_client_factory`, so the
    clients it re-creates (after a connection error) keep the timeout.
    """
    def client_with_timeout() -> httpx2.Client:
        client = default_client_factory()
        client.timeout = httpx2.Timeout(seconds)
        return client

    set_client_factory(client_with_timeout)
