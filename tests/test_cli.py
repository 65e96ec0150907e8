"""The ``clef`` command line on real recordings: input formats, outputs, and one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import clef_sdk as clef
from clef_sdk.cli import main
from clef_sdk.io import read_recording


@pytest.fixture(scope="module")
def encoder(small_safetensors: Path) -> clef.ClefEncoder:
    return clef.load(small_safetensors, device="cpu")


@pytest.fixture(scope="module")
def minute_of_mitdb(mitdb_record: np.ndarray) -> np.ndarray:
    return mitdb_record[: 60 * 360].astype(np.float64)


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_embed_npy_matches_python_api(tmp_path, capsys, small_safetensors, encoder, minute_of_mitdb):
    source = tmp_path / "rec.npy"
    np.save(source, minute_of_mitdb)
    out = tmp_path / "emb.npy"
    code, _, err = run_cli(
        capsys, "embed", str(source), "--fs", "360", "--model", str(small_safetensors), "-o", str(out)
    )
    assert code == 0, err
    np.testing.assert_allclose(np.load(out), encoder.embed(minute_of_mitdb, 360), rtol=1e-6, atol=1e-7)


def test_embed_2d_npy_per_window(tmp_path, capsys, small_safetensors, minute_of_mitdb):
    source = tmp_path / "batch.npy"
    np.save(source, np.stack([minute_of_mitdb, minute_of_mitdb[::-1]]))
    out = tmp_path / "emb.npy"
    code, _, err = run_cli(
        capsys, "embed", str(source), "--fs", "360", "--model", str(small_safetensors), "--per-window", "-o", str(out)
    )
    assert code == 0, err
    assert np.load(out).shape == (2, 6, 256)


def test_embed_csv_column_by_name_prints_rows(tmp_path, capsys, small_safetensors, encoder, minute_of_mitdb):
    source = tmp_path / "rec.csv"
    lines = ["time,lead_I"] + [f"{i / 360:.5f},{v:.6f}" for i, v in enumerate(minute_of_mitdb)]
    source.write_text("\n".join(lines) + "\n")
    code, out, err = run_cli(
        capsys,
        "embed",
        str(source),
        "--fs",
        "360",
        "--column",
        "lead_I",
        "--model",
        str(small_safetensors),
        "--per-window",
    )
    assert code == 0, err
    printed = np.loadtxt(out.splitlines(), delimiter=",")
    expected = encoder.embed(np.round(minute_of_mitdb, 6), 360, pooling=None)
    assert printed.shape == expected.shape == (6, 256)
    np.testing.assert_allclose(printed, expected, rtol=1e-5, atol=1e-6)


def test_csv_with_several_columns_needs_column(tmp_path):
    source = tmp_path / "two.csv"
    source.write_text("a,b\n1,2\n3,4\n")
    with pytest.raises(Exception, match="2 columns .*--column"):
        read_recording(source)
    with pytest.raises(Exception, match="has no column 'c'; it has a, b"):
        read_recording(source, column="c")
    np.testing.assert_array_equal(read_recording(source, column="1")[0], [2, 4])


def test_txt_single_column_without_header_and_nan_cells(tmp_path):
    source = tmp_path / "one.txt"
    source.write_text("0.1\n\n0.2\nNaN\n# a comment\n0.4\n")
    signal, fs = read_recording(source)
    assert fs is None
    np.testing.assert_array_equal(signal, [0.1, 0.2, np.nan, 0.4])


def test_text_cell_that_is_not_a_number_names_the_row(tmp_path):
    source = tmp_path / "bad.csv"
    source.write_text("ecg\n0.1\nabc\n")
    with pytest.raises(Exception, match=r"row 3: 'abc' is not a number"):
        read_recording(source)


def test_embed_wfdb_reads_fs_from_header(data_dir, capsys, small_safetensors, encoder, mitdb_record):
    pytest.importorskip("wfdb")
    record = data_dir / "wfdb-sample" / "100.hea"
    code, out, err = run_cli(capsys, "embed", str(record), "--model", str(small_safetensors), "--no-progress")
    assert code == 0, err
    assert "using lead 'MLII'" in err
    printed = np.loadtxt(out.splitlines(), delimiter=",")
    # The .dat record and the npz copy are the same MIT-BIH signal (npz stored as float32).
    np.testing.assert_allclose(printed, encoder.embed(mitdb_record, 360), rtol=1e-3, atol=1e-4)


def test_wfdb_fs_contradicting_header_is_an_error(data_dir, capsys, small_safetensors):
    pytest.importorskip("wfdb")
    code, _, err = run_cli(
        capsys, "embed", str(data_dir / "wfdb-sample" / "100"), "--fs", "500", "--model", str(small_safetensors)
    )
    assert code != 0
    assert "--fs 500 contradicts the 360 Hz" in err


def test_wfdb_without_the_wfdb_package_says_how_to_install(data_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "wfdb", None)  # the third-party package is unavailable
    with pytest.raises(Exception, match=r'pip install "clef-sdk\[io\]"'):
        read_recording(data_dir / "wfdb-sample" / "100.hea")


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (lambda d, w: ["embed", str(d / "rec.npy"), "--model", w], "carries no sampling rate: pass --fs"),
        (lambda d, w: ["embed", str(d / "missing.npy"), "--fs", "360", "--model", w], "input file not found"),
        (lambda d, w: ["embed", str(d / "rec.xyz"), "--fs", "360", "--model", w], "unsupported input rec.xyz"),
        (lambda d, w: ["embed", str(d / "rec.npy"), "--fs", "0", "--model", w], "positive, finite sampling rate"),
        (lambda d, w: ["embed", str(d / "rec.npy"), "--fs", "360", "--model", "huge"], "unknown model 'huge'"),
        (lambda d, w: ["embed", str(d / "short.npy"), "--fs", "360", "--model", w], "shorter than one 10 s window"),
        (lambda d, w: ["embed", str(d / "rec.npy"), "--fs", "360", "--model", w, "-o", str(d / "x.txt")], ".npy file"),
        (lambda d, w: ["convert", str(d / "rec.npy"), "-o", str(d / "x.safetensors")], "is not a PyTorch checkpoint"),
    ],
)
def test_errors_are_one_line_and_nonzero(tmp_path, capsys, small_safetensors, minute_of_mitdb, make_args, message):
    np.save(tmp_path / "rec.npy", minute_of_mitdb)
    np.save(tmp_path / "short.npy", minute_of_mitdb[:1000])
    (tmp_path / "rec.xyz").write_text("1\n")
    code, _, err = run_cli(capsys, *make_args(tmp_path, str(small_safetensors)))
    assert code == 1
    assert message in err
    assert err.startswith("clef: error: ") and "Traceback" not in err


def test_convert_then_list(tmp_path, capsys, small_ckpt):
    out = tmp_path / "small.safetensors"
    code, stdout, err = run_cli(capsys, "convert", str(small_ckpt), "-o", str(out))
    assert code == 0, err
    assert "CLEF-small, embed_dim 256" in stdout and out.is_file()
    code, stdout, _ = run_cli(capsys, "list")
    assert code == 0
    for name in clef.list_models():
        assert name in stdout


def test_entry_point_subprocess_has_no_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "clef_sdk", "embed", str(tmp_path / "none.npy"), "--fs", "360"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == f"clef: error: input file not found: {tmp_path / 'none.npy'}"


def test_version_flag(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert clef.__version__ in capsys.readouterr().out


def test_long_inputs_are_not_loaded_whole(tmp_path, data_dir):
    """A .npy is memory-mapped and a WFDB record read lazily, so `clef embed` handles week-long recordings."""
    from clef_sdk.io import WfdbSignal

    source = tmp_path / "ecg.npy"
    np.save(source, np.arange(20_000, dtype=np.float32))
    signal, _ = read_recording(source)
    assert isinstance(signal, np.memmap)
    pytest.importorskip("wfdb")
    signal, fs = read_recording(data_dir / "wfdb-sample" / "100.hea", column="V5")
    assert isinstance(signal, WfdbSignal) and signal.lead == "V5" and fs == 360


def test_messages_in_the_callers_language(tmp_path, monkeypatch, capsys, data_dir) -> None:
    """A misspelt name gets a "did you mean"; on the command line the hints name options, not Python calls."""
    with pytest.raises(clef.ManifestError, match=r"did you mean 'small'\?.*clef\.list_models\(\)"):
        clef.load("smal")
    record = str(data_dir / "wfdb-sample" / "100.hea")
    assert main(["embed", record, "--model", "smal", "-o", str(tmp_path / "e.npy")]) != 0
    err = capsys.readouterr().err
    assert "did you mean 'small'?" in err and "`clef list`" in err and "--model PATH" in err
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("CLEF_SDK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert main(["embed", record, "--model", "large", "-o", str(tmp_path / "e.npy")]) != 0
    err = capsys.readouterr().err
    assert "--model path/to/clef_large.ckpt" in err and "clef.load(" not in err


def test_info_of_a_local_file(small_ckpt, capsys) -> None:
    """`clef info PATH` of a released checkpoint: its model, size, sha256, contract and how to use it, checked in
    full (not "unknown model ... pass its path instead")."""
    import hashlib

    assert main(["info", str(small_ckpt)]) == 0
    out = capsys.readouterr().out
    assert "CLEF-small, embed_dim 256" in out and "500 Hz" in out and f"--model {small_ckpt}" in out
    assert hashlib.sha256(Path(small_ckpt).read_bytes()).hexdigest() in out and "MB" in out
