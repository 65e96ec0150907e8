"""One switch for progress bars: off by default where stderr is not a terminal, on request everywhere (the call's
progress=, clef.set_progress, CLEF_SDK_PROGRESS, clef --quiet / --verbose), and passed through ClefEmbedder and
fit_probe."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import clef_sdk as clef
from clef_sdk import embedding
from clef_sdk.cli import main
from clef_sdk.progress import PROGRESS_ENV, progress_disabled, progress_wanted


@pytest.fixture(autouse=True)
def reset() -> Iterator[None]:
    yield
    clef.set_progress(None)
    clef.set_verbose(None)


@pytest.fixture
def long_job(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every job counts as long (1,024+ windows), so that 6 windows take the default path of a long one."""
    monkeypatch.setattr(embedding, "AUTO_PROGRESS_WINDOWS", 1)


def bar_drawn(capsys: pytest.CaptureFixture[str]) -> bool:
    return "window" in capsys.readouterr().err  # tqdm's "embedding (...): 100%|...| 6/6 [..., window/s]"


def test_the_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PROGRESS_ENV, raising=False)
    assert progress_disabled() is None  # tqdm decides: a bar only on a terminal
    monkeypatch.setenv(PROGRESS_ENV, "1")
    assert progress_disabled() is False and progress_disabled(False) is True
    clef.set_progress(False)
    assert progress_disabled() is True and progress_disabled(True) is False
    monkeypatch.setenv(PROGRESS_ENV, "sometimes")
    clef.set_progress(None)
    with pytest.raises(ValueError, match="CLEF_SDK_PROGRESS"):
        progress_disabled()
    with pytest.raises(TypeError, match="True, False or None"):
        clef.set_progress("yes")  # type: ignore[arg-type]


def test_no_bar_without_a_terminal_by_default(long_job, small_encoder, mitdb_record, capsys, monkeypatch) -> None:
    monkeypatch.delenv(PROGRESS_ENV, raising=False)
    assert not progress_wanted()  # pytest's stderr is no terminal
    clef.embed(mitdb_record, 360, model=small_encoder)
    assert not bar_drawn(capsys)
    clef.embed(mitdb_record, 360, model=small_encoder, progress=True)
    assert bar_drawn(capsys)
    clef.set_progress(True)
    clef.embed(mitdb_record, 360, model=small_encoder)
    assert bar_drawn(capsys)
    clef.embed(mitdb_record, 360, model=small_encoder, progress=False)
    assert not bar_drawn(capsys)
    clef.set_progress(None)
    monkeypatch.setenv(PROGRESS_ENV, "on")
    clef.embed(mitdb_record, 360, model=small_encoder)
    assert bar_drawn(capsys)


def test_estimators_pass_it_on(long_job, small_encoder, mitdb_record, capsys, monkeypatch) -> None:
    monkeypatch.setenv(PROGRESS_ENV, "1")  # bars everywhere, unless the estimator says no
    signals = np.stack([mitdb_record[: 360 * 20], mitdb_record[360 * 20 : 360 * 40]] * 3)
    clef.ClefEmbedder(model=small_encoder, fs=360, progress=False).fit_transform(signals)
    assert not bar_drawn(capsys)
    probe = clef.fit_probe(signals, [0, 1] * 3, fs=360, model=small_encoder, cv=2, progress=False, precision="fp32")
    assert not bar_drawn(capsys) and probe[0].progress is False


def test_the_command_line_switches(small_safetensors: Path, data_dir: Path, tmp_path: Path, capsys, long_job) -> None:
    record = str(data_dir / "wfdb-sample" / "100.hea")
    out = str(tmp_path / "e.npy")
    assert main(["--verbose", "embed", record, "--model", str(small_safetensors), "-o", out]) == 0
    assert bar_drawn(capsys)
    clef.set_progress(None)
    assert main(["--quiet", "embed", record, "--model", str(small_safetensors), "-o", out]) == 0
    assert not bar_drawn(capsys)
    with pytest.raises(SystemExit):
        main(["--quiet", "--verbose", "list"])
