"""The network's thread count: fixed when the caller gives one, else the free cores this process may use."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import clef_sdk as clef
from clef_sdk import threads
from clef_sdk.errors import SettingsError
from clef_sdk.threads import (
    ThreadChoice,
    available_cpus,
    busy_cpus,
    check_num_threads,
    fixed_num_threads,
    torch_threads,
)


@pytest.fixture
def unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """No thread count in the environment (the test workers set OMP_NUM_THREADS=1)."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv(threads.NUM_THREADS_ENV, raising=False)


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "2"])
def test_a_thread_count_is_a_positive_int(bad: object) -> None:
    with pytest.raises(ValueError, match="num_threads must be a positive int"):
        check_num_threads(bad)
    with pytest.raises(ValueError, match="num_threads"):
        clef.embed(np.sin(np.arange(5000) / 40.0), fs=500, model=clef.build("small"), num_threads=bad)  # type: ignore[arg-type]


def test_the_caller_fixes_the_count_by_argument_then_environment(unset, monkeypatch: pytest.MonkeyPatch) -> None:
    assert fixed_num_threads() is None
    monkeypatch.setenv("OMP_NUM_THREADS", "3,1")  # OpenMP's list form: the first level counts
    assert fixed_num_threads() == 3
    monkeypatch.setenv(threads.NUM_THREADS_ENV, "2")
    assert fixed_num_threads() == 2 and fixed_num_threads(5) == 5
    monkeypatch.setenv(threads.NUM_THREADS_ENV, "many")
    with pytest.raises(SettingsError, match="CLEF_SDK_NUM_THREADS='many' must be a positive whole number"):
        fixed_num_threads()


def test_the_cgroup_quota_caps_the_cores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads, "_CGROUP", tmp_path)
    assert available_cpus() == len(os.sched_getaffinity(0))  # no quota file: the affinity mask
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert available_cpus() == len(os.sched_getaffinity(0))
    (tmp_path / "cpu.max").write_text("150000 100000\n")  # 1.5 CPUs of quota: one whole core
    assert available_cpus() == 1
    (tmp_path / "cpu.max").unlink()
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("50000\n")  # cgroup v1, half a CPU: still one thread
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert available_cpus() == 1


def test_the_affinity_mask_caps_the_cores() -> None:
    code = "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); from clef_sdk.threads import available_cpus; print(available_cpus())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "1"


def test_other_processes_runnable_threads_reduce_the_choice(
    unset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loadavg = tmp_path / "loadavg"
    monkeypatch.setattr(threads, "_LOADAVG", loadavg)
    online, cores = os.cpu_count() or 1, available_cpus()
    loadavg.write_text("0.10 0.20 0.30 1/150 4321\n")  # only this process runs
    assert busy_cpus() == 0 and ThreadChoice(ceiling=64).count == cores
    loadavg.write_text(f"3.00 2.00 1.00 {online}/150 4321\n")  # all other cores taken by others
    assert busy_cpus() == online - 1 and ThreadChoice(ceiling=64).count == 1
    loadavg.write_text("garbled\n")
    assert busy_cpus() == 0  # the system does not say: the cores this process may use
    assert ThreadChoice(ceiling=1).count == 1  # never above torch's (or the caller's) own count


def test_busy_neighbours_are_seen_on_this_machine(unset) -> None:
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 1)]
    try:
        deadline, seen = time.monotonic() + 20, 0
        while time.monotonic() < deadline and seen < len(spinners):
            seen = max(seen, busy_cpus())
            time.sleep(0.05)
        assert seen >= len(spinners)  # each spinner is a runnable thread of another process
        assert ThreadChoice(ceiling=64).count == 1  # every core is busy: one thread, no spinning against them
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


def test_a_long_call_rechooses_at_most_once_a_second(unset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loadavg = tmp_path / "loadavg"
    monkeypatch.setattr(threads, "_LOADAVG", loadavg)
    loadavg.write_text("0 0 0 1/10 1\n")
    choice = ThreadChoice(ceiling=2)
    # every core busy with other processes' threads, however many of this process's own threads run now (a
    # just-finished OpenMP region's spinning threads count as running: with cpu_count only, a run saw 0 busy)
    loadavg.write_text(f"0 0 0 {(os.cpu_count() or 1) + 64}/100 1\n")
    assert not choice.update()  # checked less than a second ago
    choice.checked -= 2.0
    if available_cpus() > 1:
        assert choice.update() and choice.count == 1 == torch.get_num_threads()
    fixed = ThreadChoice(2)
    fixed.checked -= 2.0
    assert not fixed.update() and fixed.count == 2


def test_the_block_runs_on_the_choice_and_restores_the_callers_count() -> None:
    before = torch.get_num_threads()
    with torch_threads(1) as outer:
        assert outer.count == 1 == torch.get_num_threads()
        with torch_threads(2):
            assert torch.get_num_threads() == 2
        assert torch.get_num_threads() == 2  # nested blocks restore once, when the outermost ends
    assert torch.get_num_threads() == before


def test_embeddings_agree_across_thread_counts(small_encoder, mitdb_record: np.ndarray) -> None:
    signal = mitdb_record[: 360 * 60].astype(np.float64)
    one = clef.embed(signal, fs=360, model=small_encoder, pooling=None, num_threads=1)
    again = clef.embed(signal, fs=360, model=small_encoder, pooling=None, num_threads=1)
    two = clef.embed(signal, fs=360, model=small_encoder, pooling=None, num_threads=2)
    np.testing.assert_array_equal(one, again)  # a fixed count reruns bit for bit
    # measured: max abs difference 2.4e-7 between 1 and 2 threads (float32 sums in another order)
    np.testing.assert_allclose(one, two, rtol=0, atol=5e-6)
    embedder = clef.ClefEmbedder(model=small_encoder, fs=360, num_threads=1)
    np.testing.assert_array_equal(
        embedder.fit_transform(signal[None]), one.mean(axis=0, dtype=np.float64)[None].astype(np.float32)
    )


def test_onnxruntime_sessions_follow_the_thread_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from clef_sdk.backends import exported_network

    # its own encoder: the session-wide one's cached network would keep this test's CLEF_SDK_HOME for later tests
    encoder = clef.build("small", seed=11).eval()
    monkeypatch.setenv("CLEF_SDK_HOME", str(tmp_path))
    x = np.sin(np.arange(3 * 5000) / 40.0)
    one = clef.embed(x, fs=500, model=encoder, backend="onnxruntime", num_threads=1)
    two = clef.embed(x, fs=500, model=encoder, backend="onnxruntime", num_threads=2)
    assert exported_network(encoder, "onnxruntime").thread_counts == [1, 2]
    np.testing.assert_allclose(one, two, rtol=0, atol=5e-6)


def test_the_command_line_takes_threads(small_safetensors: Path, tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.sin(np.arange(5000) / 40.0))
    run = [
        sys.executable,
        "-m",
        "clef_sdk",
        "embed",
        str(tmp_path / "x.npy"),
        "--fs",
        "500",
        "--model",
        str(small_safetensors),
    ]
    done = subprocess.run(
        [*run, "--threads", "1", "-o", str(tmp_path / "e.npy")], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert np.load(tmp_path / "e.npy").shape == (256,)
    refused = subprocess.run([*run, "--threads", "0"], capture_output=True, text=True, timeout=300)
    assert refused.returncode != 0 and "num_threads must be a positive int" in refused.stderr


def test_calls_within_a_second_share_one_reading(unset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loadavg = tmp_path / "loadavg"
    monkeypatch.setattr(threads, "_LOADAVG", loadavg)
    monkeypatch.setattr(threads, "_recent", None)
    loadavg.write_text("0 0 0 1/10 1\n")
    with torch_threads() as first:
        pass
    loadavg.write_text(f"0 0 0 {os.cpu_count()}/10 1\n")  # every other core now busy
    with torch_threads() as second:
        assert second is first  # read less than a second ago: no new reading
    first.checked -= 2.0
    with torch_threads() as third:
        assert third is not first and third.count == 1  # a second later: read again
    with torch_threads(2) as fixed:
        assert fixed.count == 2 and fixed is not third  # a fixed count is never shared
