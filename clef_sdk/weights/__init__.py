"""CLEF weights: the manifest of named models, the safetensors format, the local cache, fetching from the Hub
and Zenodo, ``hf-hub:`` models and publishing.

========================  ==================================================================================
`.registry`          the manifest (``manifest.json``, ``CLEF_SDK_MANIFEST``): names, aliases, sources
`.format`            released ``.ckpt`` -> validated backbone tensors -> clef-sdk safetensors, and back
`.cache`             where cached files live, their verification, what is cached (no network)
`.network`           the one module that opens connections: Hub downloads and uploads, resumable HTTP
`.fetch`             named weights fetched on first use, from the Hub or converted from Zenodo
`.hf_hub`            any model by Hub repository id, ``hf-hub:ORG/NAME@REVISION``
`.cards`             model cards for released and trained models
`.publish`           write the Hub folder, then upload it (``clef publish``)
========================  ==================================================================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_getattr

if TYPE_CHECKING:  # imported on first use: the network modules (urllib, http.client) stay out of `import clef_sdk`
    from .cache import cache_status, cached_weights, clef_home, hub_cache_dir, verify_cache
    from .fetch import fetch_weights, install_checkpoint
    from .format import convert_checkpoint, read_weights
    from .registry import list_models, load_manifest, model_entry

__all__ = [
    "cache_status",
    "cached_weights",
    "clef_home",
    "convert_checkpoint",
    "fetch_weights",
    "hub_cache_dir",
    "install_checkpoint",
    "list_models",
    "load_manifest",
    "model_entry",
    "read_weights",
    "verify_cache",
]

_LAZY = {
    "cache_status": "cache",
    "cached_weights": "cache",
    "clef_home": "cache",
    "hub_cache_dir": "cache",
    "verify_cache": "cache",
    "fetch_weights": "fetch",
    "install_checkpoint": "fetch",
    "convert_checkpoint": "format",
    "read_weights": "format",
    "list_models": "registry",
    "load_manifest": "registry",
    "model_entry": "registry",
}

__getattr__ = lazy_getattr(__name__, _LAZY)


def __dir__() -> list[str]:
    return sorted(__all__)
