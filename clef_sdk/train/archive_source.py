"""A prepared pretraining store as a source of ``clef.embed_archive`` (``clef embed-archive STORE``).

The store (``clef train prepare``) holds band-passed 10 s windows at 500 Hz, so a record's lead is embedded from
its stored windows, z-scored as [`clef_sdk.preprocess`][clef_sdk.preprocess] would (up to the store's dtype, float16 by default:
about 1e-3 of the signal's range). Records are the store's ``path`` values.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..archive.sources import RecordLeads
from ..preprocessing import zscore
from .data import PretrainingStore

__all__ = ["StoreSource"]


class StoreSource:
    """The records of a prepared store, each lead's stored windows ready for the encoder."""

    def __init__(self, store: str | os.PathLike[str]):
        self.store = PretrainingStore(store)
        self.records = sorted(self.store.rows_by_record)
        self.default_leads = tuple(self.store.leads)

    def describe(self) -> dict[str, Any]:
        info = (self.store.path / "store.json").read_bytes()
        return {"kind": "pretraining store", "store_json_sha256": hashlib.sha256(info).hexdigest()}

    def read(self, record: str, leads: Sequence[str]) -> RecordLeads:
        rows = self.store.rows_by_record[record]
        windows: dict[str, np.ndarray] = {}
        missing: dict[str, str] = {}
        for lead in leads:
            if lead not in self.store.leads:
                missing[lead] = "no such lead"
                continue
            column = self.store.leads.index(lead)
            present = rows[self.store.available[rows, column]]
            if not len(present):
                missing[lead] = "no such lead"
                continue
            stored = np.asarray(self.store.windows[present, column], dtype=np.float64)
            windows[lead] = zscore(stored).astype(np.float32)
        return RecordLeads({}, 500.0, missing, windows)
