"""Fixtures for the pretraining tests: real LUDB records in a folder of their own, and a store made from them."""

from __future__ import annotations

from pathlib import Path

import pytest
from ludb_helpers import link_ludb


@pytest.fixture(scope="session")
def ludb_source(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return link_ludb(data_dir, tmp_path_factory.mktemp("ludb-source"))


@pytest.fixture(scope="session")
def ludb_store(ludb_source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A float16 store of the 24 records (one 10 s window each); shared: do not modify."""
    pytest.importorskip("pandas")
    from clef_sdk.train.data import prepare

    path = tmp_path_factory.mktemp("stores") / "ludb24"
    prepare(ludb_source, path, workers=1, shard_size=8, progress=False)
    return path


@pytest.fixture(scope="session")
def trained_run(ludb_store: Path, tmp_path_factory: pytest.TempPathFactory):
    """CLEF-small trained for 4 steps of 8 subjects on the LUDB store (CPU), checkpoints at steps 2 and 4."""
    pytest.importorskip("lightning")
    from clef_sdk.train.trainer import fit

    return fit(
        ludb_store,
        output=tmp_path_factory.mktemp("runs") / "run",
        batch_size=8,
        max_steps=4,
        checkpoint_every=2,
        num_workers=0,
        accelerator="cpu",
        progress=False,
        log_every=1,
    )
