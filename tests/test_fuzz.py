"""Property-based fuzzing of the public API (Hypothesis): random dtypes, containers, shapes, rates, NaN patterns,
value ranges and options for ``embed``, ``preprocess``, ``signal_quality``, ``Preprocessor`` and the readers.

Each call either returns what the plain float64 copy of its input gives (never NaN, within a memory bound) or
raises a ValueError/TypeError (clef_sdk's own errors derive from them) with a message, the same as the copy;
never another exception. Inputs are real ECG (the bundled MIT-BIH minute), cut, rescaled and recast.

Profiles: ``ci`` (the default, ~2 minutes in all on 2 cores) and ``long`` for a campaign:
``HYPOTHESIS_PROFILE=long .venv/bin/python -m pytest tests/test_fuzz.py``.
"""

from __future__ import annotations

import os
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import clef_sdk as clef
from clef_sdk.errors import RecordingError
from clef_sdk.io import read_recording, read_text_column

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)  # fmt: skip
settings.register_profile("long", max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck))
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

ECG, ECG_FS, _ = clef.datasets.load_example("mitdb-100")  # 60 s at 360 Hz, mV
ENCODER = clef.build("small", seed=0).eval()
# Peak traced memory of one call: inputs are at most ~40 s at 10 kHz (400k samples) and the pipeline works a chunk
# of windows at a time (measured below 60 MiB at rates with small resampling terms). resample_poly's FIR has
# 20 * max(up, down) + 1 taps: at a rate whose ratio to 500 Hz needs terms near 2**20 (4797.085... Hz) building it
# peaked at 553 MiB (once per rate: it is cached). A runaway allocation (the 56 GB of a zero-stuffing resampler)
# fails this bound at once.
MEMORY_BOUND_BYTES = 1024 * 2**20
DTYPES = ("float64", "float32", "float16", ">f8", "int16", "int32", "int64", "uint16", "int8")
CONTAINERS = ("array", "list", "tensor", "strided", "fortran-row", "memmap")
ALLOWED_ERRORS = (ValueError, TypeError)


NAN_PATTERNS = ("none", "few", "block", "mostly", "all", "inf")


@st.composite
def recordings(
    draw: st.DrawFn, max_seconds: float = 35.0, dtypes: tuple[str, ...] = DTYPES, nans: tuple[str, ...] = NAN_PATTERNS
) -> tuple[np.ndarray, float]:
    """A stretch of real ECG presented at a random rate, scale, offset, dtype and NaN pattern."""
    fs = draw(st.one_of(st.sampled_from([50.0, 128.0, 128.5, 250.0, 257.3, 360.0, 500.0, 1000.0, 4000.0, 10_000.0]),
                        st.floats(50.0, 10_000.0), st.floats(1.0, 20_000.0)))  # fmt: skip
    # mostly long enough for windows (10 s each), sometimes too short, empty or just at the edges
    seconds = draw(st.one_of(st.floats(9.5, max_seconds), st.sampled_from([0.0, 0.5, 1.0, 9.99, 10.0]),
                             st.floats(0.0, max_seconds)))  # fmt: skip
    n = min(int(seconds * fs), 400_000)
    start = draw(st.integers(0, len(ECG) - 1))
    base = np.resize(np.roll(ECG, -start), n)  # real ECG samples, repeated as needed
    # mostly amplitudes of real units (V to nV, ADC counts), sometimes far outside what the pipeline accepts
    scale = 10.0 ** draw(st.one_of(st.floats(-3.5, 9.0), st.floats(-16, 16)))
    offset = draw(st.sampled_from([0.0, 1.0, -300.0, 1e4])) * scale
    values = base * scale + offset
    dtype = np.dtype(draw(st.sampled_from(dtypes)))
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        values = np.clip(np.round(values), info.min, info.max)
    with np.errstate(over="ignore", invalid="ignore"):
        array = values.astype(dtype)
    if dtype.kind == "f" and n:
        pattern = draw(st.sampled_from(nans))
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        if pattern == "few":
            array[rng.integers(0, n, size=max(1, n // 1000))] = np.nan
        elif pattern == "block":
            first = int(rng.integers(0, n))
            array[first : first + int(rng.integers(1, max(2, n // 3)))] = np.nan
        elif pattern == "mostly":
            array[rng.random(n) < 0.8] = np.nan
        elif pattern == "all":
            array[:] = np.nan
        elif pattern == "inf":
            array[int(rng.integers(0, n))] = np.inf
    return array, fs


def contain(array: np.ndarray, kind: str, tmp: Path) -> object:
    """``array`` in one of the containers the API accepts."""
    if kind == "list":
        return array.tolist()
    if kind == "tensor":
        native = array.astype(array.dtype.newbyteorder("=")) if not array.dtype.isnative else array
        try:
            return torch.from_numpy(np.ascontiguousarray(native))
        except TypeError:  # a dtype torch lacks (uint16 on older torch): the numpy array itself
            return native
    if kind == "strided":
        doubled = np.repeat(array, 2)
        return doubled[::2]
    if kind == "fortran-row":
        return np.asfortranarray(np.stack([array, array]))[0]
    if kind == "memmap":
        path = tmp / f"x{os.getpid()}_{id(array)}.npy"
        np.save(path, array)
        return np.load(path, mmap_mode="r")
    return array


def outcome(call, *args, **kwargs) -> tuple[str, object]:
    """``("ok", result)`` or ``("error", exception type)``; fails on exceptions outside the allowed ones."""
    tracemalloc.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = call(*args, **kwargs)
    except ALLOWED_ERRORS as exc:
        assert str(exc), f"{type(exc).__name__} without a message"
        event(f"{getattr(call, '__name__', type(call).__name__)}: {type(exc).__name__}: {str(exc)[:30]}")
        return "error", type(exc)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < MEMORY_BOUND_BYTES, f"{call.__name__} peaked at {peak / 2**20:.0f} MiB"
    event(f"{getattr(call, '__name__', type(call).__name__)}: returned")
    return "ok", result


def same(got: tuple[str, object], expected: tuple[str, object]) -> None:
    assert got[0] == expected[0], (got, expected)
    if got[0] == "error":
        assert issubclass(got[1], ALLOWED_ERRORS)  # type: ignore[arg-type]
        return
    a, b = (np.asarray(x) for x in (got[1], expected[1]))
    assert a.shape == b.shape
    assert not np.isnan(a).any(), "NaN output"
    np.testing.assert_array_equal(a, b)


options = st.fixed_dictionaries(
    {"stride_seconds": st.sampled_from([None, 10, 5, 2.5]), "tail": st.sampled_from(["drop", "pad", "last"])}
)


@given(recording=recordings(), container=st.sampled_from(CONTAINERS), opts=options)
def test_preprocess_equals_its_float64_copy(tmp_path_factory, recording, container, opts) -> None:
    array, fs = recording
    tmp = tmp_path_factory.mktemp("fuzz")
    expected = outcome(clef.preprocess, np.array(array, dtype=np.float64), fs, **opts)
    same(outcome(clef.preprocess, contain(array, container, tmp), fs, **opts), expected)


@given(recording=recordings(max_seconds=32.0), container=st.sampled_from(CONTAINERS),
       pooling=st.sampled_from(["mean", "max", None]), tail=st.sampled_from(["drop", "pad"]))  # fmt: skip
def test_embed_equals_its_float64_copy(tmp_path_factory, recording, container, pooling, tail) -> None:
    array, fs = recording
    tmp = tmp_path_factory.mktemp("fuzz")
    kwargs = {"model": ENCODER, "pooling": pooling, "tail": tail, "progress": False}
    expected = outcome(clef.embed, np.array(array, dtype=np.float64), fs, **kwargs)
    same(outcome(clef.embed, contain(array, container, tmp), fs, **kwargs), expected)


@given(recording=recordings(max_seconds=25.0), tail=st.sampled_from(["drop", "pad", "last"]))
def test_signal_quality_is_defined_for_every_window(recording, tail) -> None:
    array, fs = recording
    kind, result = outcome(clef.signal_quality, array, fs, tail=tail)
    windows = outcome(clef.preprocess, np.array(array, dtype=np.float64), fs, tail=tail)
    assert kind == windows[0]
    if kind == "ok":
        assert isinstance(result, clef.SignalQuality)
        assert len(result) == len(windows[1])  # type: ignore[arg-type]
        assert np.isfinite(result.score).all() and ((0 <= result.score) & (result.score <= 1)).all()


@given(
    recording=recordings(max_seconds=25.0, dtypes=("float64", "float32", ">f8"), nans=("none",)),
    dtype=st.sampled_from([torch.float64, torch.float32]),
)  # NaN handling is the numpy path's (the Preprocessor propagates NaNs, as documented)
def test_preprocessor_matches_preprocess(recording, dtype) -> None:
    array, fs = recording
    tensor = torch.from_numpy(np.array(array, dtype=np.float64)).to(dtype)
    expected = outcome(clef.preprocess, tensor.double().numpy(), fs)  # the same (possibly float32) samples
    if expected[0] == "error":
        return  # amplitude and length rules are checked by the numpy path only
    try:
        preprocessor = clef.Preprocessor(fs)
    except ALLOWED_ERRORS:
        return
    kind, got = outcome(preprocessor, tensor)
    assert kind == "ok"
    # one float32 step of clef.preprocess's output (float64), float32 arithmetic (float32): the measured
    # tolerances of tests/test_torch_preprocessing.py
    tolerance = 2e-6 if dtype == torch.float64 else 1e-4
    assert np.abs(got.numpy() - expected[1]).max() <= tolerance  # type: ignore[union-attr]


lines = st.lists(
    st.one_of(
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.integers(-(10**30), 10**30).map(str),
        st.sampled_from(["", "ecg", "NaN", "na", "null", "#comment", "a,b", "1;2", "1\t2", "1 2 3", "\ufeff1", "--"]),
        st.text(max_size=20),
    ),
    max_size=60,
)


@given(rows=lines, sep=st.sampled_from(["\n", "\r\n"]), column=st.sampled_from([None, "0", "1", "ecg", "-1", 5]))
def test_text_reader_returns_numbers_or_a_recording_error(tmp_path_factory, rows, sep, column) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "x.csv"
    path.write_text(sep.join(rows), encoding="utf-8", errors="surrogatepass")
    try:
        values = read_text_column(path, column)
    except RecordingError as exc:
        assert str(exc) and len(str(exc)) < 2000  # one readable line, not the file
        return
    assert values.dtype == np.float64 and values.ndim == 1


@given(content=st.binary(max_size=4096), suffix=st.sampled_from([".npy", ".csv", ".hea"]))
def test_readers_refuse_garbage_files_with_a_typed_error(tmp_path_factory, content, suffix) -> None:
    path = tmp_path_factory.mktemp("fuzz") / f"rec{suffix}"
    path.write_bytes(content)
    if suffix == ".hea":
        path.with_suffix(".dat").write_bytes(content[::-1])
    try:
        signal, _ = read_recording(path)
        np.asarray(signal[:10] if hasattr(signal, "shape") else signal)
    except (RecordingError, OSError) as exc:  # OSError: unreadable samples of a WFDB record, said as such
        assert str(exc) and len(str(exc)) < 2000
