"""Checkpoint conversion: accepted layouts, refusal of unsafe pickles, validation errors, the safetensors format
and its metadata, corrupt files, and the .ckpt -> .safetensors -> embeddings round trip."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import re
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from conformance_helpers import assert_matches_reference, batchnorm_keys, read_key_shapes
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import clef_sdk as clef
from clef_sdk import CheckpointError, convert_checkpoint
from clef_sdk.weights.format import extract_backbone, read_checkpoint, read_checkpoint_payload, read_weights

# Set by ``_record_execution`` if unpickling ever runs code from a checkpoint.
EXECUTED: list[str] = []


def _record_execution(tag: str) -> str:
    EXECUTED.append(tag)
    return tag


class UnsafeObject:
    """Unpickling this calls ``_record_execution``: proof of whether a loader ran pickled code."""

    def __reduce__(self):
        return (_record_execution, ("unpickled",))


@pytest.fixture(scope="module")
def lightning(small_ckpt: Path) -> dict:
    return torch.load(small_ckpt, map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def prefixed(lightning: dict) -> dict[str, torch.Tensor]:
    """The checkpoint's state dict: ``backbone.`` keys, BatchNorm included."""
    return dict(lightning["state_dict"])


@pytest.fixture(scope="module")
def unprefixed(prefixed: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {key.removeprefix("backbone."): value for key, value in prefixed.items()}


@pytest.fixture(scope="module")
def backbone(unprefixed: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """What a conversion must write: the unprefixed tensors without BatchNorm."""
    drop = batchnorm_keys(list(unprefixed))
    return {key: value for key, value in unprefixed.items() if key not in drop}


def _save(tmp_path: Path, payload: object, name: str = "in.pt") -> Path:
    path = tmp_path / name
    torch.save(payload, path)
    return path


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _metadata(path: Path) -> dict[str, str]:
    with safe_open(str(path), framework="pt") as handle:
        return handle.metadata()


# --- accepted inputs --------------------------------------------------------------------------------------


def test_returns_sha256_of_destination(small_ckpt: Path, tmp_path: Path) -> None:
    dst = tmp_path / "small.safetensors"
    digest = convert_checkpoint(small_ckpt, dst)
    assert digest == _sha256(dst)
    assert len(digest) == 64


@pytest.mark.parametrize(
    "layout",
    [
        "lightning",
        "state_dict_prefixed",
        "state_dict_unprefixed",
        "bare_prefixed",
        "bare_unprefixed",
        "bare_without_batchnorm",
        "prefixed_with_head",
    ],
)
def test_accepted_layouts_give_the_same_tensors(
    layout: str, small_ckpt: Path, lightning: dict, prefixed, unprefixed, backbone, tmp_path: Path
) -> None:
    payloads = {
        "state_dict_prefixed": {"state_dict": prefixed, "epoch": 3},
        "state_dict_unprefixed": {"state_dict": unprefixed},
        "bare_prefixed": prefixed,
        "bare_unprefixed": unprefixed,
        "bare_without_batchnorm": backbone,
        # other sub-modules of a Lightning module (projection heads) are ignored when keys are prefixed
        "prefixed_with_head": {
            **prefixed,
            "projector.0.weight": torch.ones(64, 256),
            "projector.0.bias": torch.ones(64),
        },
    }
    src = small_ckpt if layout == "lightning" else _save(tmp_path, payloads[layout])
    dst = tmp_path / "out.safetensors"
    convert_checkpoint(src, dst)
    written = load_file(str(dst))
    assert set(written) == set(backbone)
    for key, tensor in backbone.items():
        assert torch.equal(written[key], tensor), key
    assert _metadata(dst)["size"] == "small"


def test_writes_only_backbone_float32_contiguous(unprefixed, backbone, conformance_dir: Path, tmp_path: Path) -> None:
    # float64 tensors, some non-contiguous (transposed views): the output is float32 and contiguous
    odd = {}
    for key, value in unprefixed.items():
        value = value.double() if value.is_floating_point() else value
        if value.ndim == 3:
            value = value.transpose(0, 2).contiguous().transpose(0, 2)
            assert not value.is_contiguous()
        odd[key] = value
    weights = extract_backbone(odd)
    assert all(t.dtype == torch.float32 and t.is_contiguous() for t in weights.state_dict.values())
    dst = tmp_path / "out.safetensors"
    convert_checkpoint(_save(tmp_path, odd), dst)
    written = load_file(str(dst))
    reference = read_key_shapes(conformance_dir, "small")
    bn = batchnorm_keys(list(reference))
    assert {k: tuple(v.shape) for k, v in written.items()} == {k: s for k, s in reference.items() if k not in bn}
    assert not bn & set(written)
    assert all(t.dtype == torch.float32 for t in written.values())
    for key, tensor in backbone.items():
        torch.testing.assert_close(written[key], tensor, rtol=0, atol=0)


def test_metadata(small_ckpt: Path, tmp_path: Path) -> None:
    dst = tmp_path / "small.safetensors"
    convert_checkpoint(small_ckpt, dst)
    meta = _metadata(dst)
    assert meta["format"] == "clef-sdk/encoder"
    assert meta["format_version"] == clef.weights.format.FORMAT_VERSION
    assert meta["size"] == "small"
    assert meta["embed_dim"] == "256"
    assert meta["source_sha256"] == _sha256(small_ckpt)
    preprocessing = json.loads(meta["preprocessing"])
    assert preprocessing["target_fs_hz"] == 500
    assert preprocessing["window_samples"] == 5000
    assert preprocessing["bandpass"]["order"] == 5
    assert (preprocessing["bandpass"]["low_hz"], preprocessing["bandpass"]["high_hz"]) == (0.67, 40.0)
    assert preprocessing["normalization"]["eps"] == 1e-8
    assert read_weights(dst).metadata == meta


def test_infers_size_from_shapes(medium_rule_state_dict, unprefixed) -> None:
    assert extract_backbone(unprefixed).size == "small"
    weights = extract_backbone(medium_rule_state_dict)
    assert weights.size == "medium"
    assert weights.embed_dim == 1024


def test_unknown_stem_width(unprefixed) -> None:
    broken = {**unprefixed, "first_conv.conv.weight": torch.zeros(48, 1, 16)}
    with pytest.raises(CheckpointError, match=r"first_conv\.conv\.weight.*\(48, 1, 16\).*no CLEF size has 48"):
        extract_backbone(broken)


def test_not_a_clef_state_dict(tmp_path: Path) -> None:
    src = _save(tmp_path, {"encoder.weight": torch.zeros(3, 3)})
    with pytest.raises(CheckpointError, match="cannot tell the CLEF size.*first_conv.conv.weight"):
        convert_checkpoint(src, tmp_path / "out.safetensors")


# --- refused inputs ---------------------------------------------------------------------------------------


def test_refuses_pickle_that_needs_more_than_weights(prefixed, tmp_path: Path) -> None:
    src = _save(tmp_path, {"state_dict": prefixed, "hyper_parameters": {"callback": UnsafeObject()}})
    EXECUTED.clear()
    dst = tmp_path / "out.safetensors"
    with pytest.raises(CheckpointError, match=r"refused to load .*_record_execution.*weights_only=True") as info:
        convert_checkpoint(src, dst)
    assert "run code" in str(info.value)
    assert EXECUTED == []  # nothing from the file ran
    assert not dst.exists()
    with pytest.raises(CheckpointError, match="refused"):
        clef.load(src, device="cpu")
    assert EXECUTED == []


def test_refuses_custom_class_instance(prefixed, tmp_path: Path) -> None:
    class_instance = {"state_dict": prefixed, "config": _Config()}
    src = _save(tmp_path, class_instance)
    with pytest.raises(CheckpointError, match=r"refused to load .*_Config"):
        read_checkpoint(src)


class _Config:
    """A plain custom class: harmless, but not something weights_only loading may construct."""

    def __init__(self) -> None:
        self.lr = 1e-3


def test_missing_key_is_listed(backbone, tmp_path: Path) -> None:
    broken = dict(backbone)
    del broken["stage_list.2.block_list.1.conv2.conv.weight"]
    with pytest.raises(CheckpointError, match=r"missing keys: stage_list\.2\.block_list\.1\.conv2\.conv\.weight"):
        convert_checkpoint(_save(tmp_path, broken), tmp_path / "out.safetensors")


def test_unexpected_key_is_listed(backbone, tmp_path: Path) -> None:
    broken = {**backbone, "dense.weight": torch.zeros(10, 256)}
    with pytest.raises(CheckpointError, match=r"unexpected keys: dense\.weight"):
        convert_checkpoint(_save(tmp_path, broken), tmp_path / "out.safetensors")


def test_wrong_shape_is_listed(backbone, tmp_path: Path) -> None:
    broken = {**backbone, "stage_list.0.block_list.0.se_fc1.weight": torch.zeros(16, 31)}
    with pytest.raises(
        CheckpointError, match=r"wrong shapes: stage_list\.0\.block_list\.0\.se_fc1\.weight: \(16, 31\) != \(16, 32\)"
    ):
        convert_checkpoint(_save(tmp_path, broken), tmp_path / "out.safetensors")


def test_all_problems_are_listed_together(backbone) -> None:
    broken = {key: value for key, value in backbone.items() if not key.startswith("stage_list.5.")}
    broken["extra.bias"] = torch.zeros(3)
    broken["stage_list.1.block_list.0.conv1.conv.bias"] = torch.zeros(7)
    with pytest.raises(CheckpointError) as info:
        extract_backbone(broken)
    message = str(info.value)
    n_missing = sum(key.startswith("stage_list.5.") for key in backbone)
    assert "missing keys: stage_list.5." in message and f"({n_missing} in all)" in message
    assert "unexpected keys: extra.bias" in message
    assert "wrong shapes: stage_list.1.block_list.0.conv1.conv.bias: (7,)" in message
    assert "CLEF-small" in message


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_refused(backbone, tmp_path: Path, bad: float) -> None:
    broken = dict(backbone)
    tensor = broken["stage_list.3.block_list.1.conv3.conv.weight"].clone()
    tensor[0, 0, 0] = bad
    broken["stage_list.3.block_list.1.conv3.conv.weight"] = tensor
    dst = tmp_path / "out.safetensors"
    with pytest.raises(CheckpointError, match=r"stage_list\.3\.block_list\.1\.conv3\.conv\.weight contains NaN or inf"):
        convert_checkpoint(_save(tmp_path, broken), dst)
    assert not dst.exists()


def test_integer_weights_refused(backbone) -> None:
    broken = {**backbone, "first_conv.conv.bias": torch.zeros(32, dtype=torch.int64)}
    with pytest.raises(CheckpointError, match=r"first_conv\.conv\.bias has dtype torch\.int64"):
        extract_backbone(broken)


def test_non_tensor_entries_refused(backbone, tmp_path: Path) -> None:
    src = _save(tmp_path, {**backbone, "note": "hello"})
    with pytest.raises(CheckpointError, match="not tensors: note"):
        read_checkpoint(src)


def test_no_state_dict_refused(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="holds no state dict"):
        read_checkpoint(_save(tmp_path, [torch.zeros(2)]))


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_corrupt_checkpoint(small_ckpt: Path, tmp_path: Path, damage: str) -> None:
    data = small_ckpt.read_bytes()
    garbage = random.Random(4096).randbytes(4096)  # seeded: the same bytes every run
    content = {"truncated": data[: len(data) // 2], "garbage": garbage, "empty": b""}[damage]
    src = tmp_path / "broken.ckpt"
    src.write_bytes(content)
    dst = tmp_path / "out.safetensors"
    with pytest.raises(CheckpointError, match=str(src)):
        convert_checkpoint(src, dst)
    assert not dst.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.ckpt"]  # no temporary files left behind


def _load_quietly(path: Path) -> None:
    with warnings.catch_warnings():  # torch warns about odd pickle protocols in garbage before it fails
        warnings.simplefilter("ignore", UserWarning)
        read_checkpoint_payload(path)


def test_random_bytes_are_always_a_checkpoint_error(tmp_path: Path) -> None:
    """500 seeded random files, bare and behind the headers that send torch.load down its pickle and zip paths:
    every one is a CheckpointError (the unpickler raised IndexError, KeyError, struct.error ... for 1 in 17)."""
    rng = random.Random(20251201)
    src = tmp_path / "garbage.ckpt"
    prefixes = [b"", b"\x80\x02", b"\x80\x02\x8a\x0alp\x00", b"PK\x03\x04"]
    for i in range(500):
        src.write_bytes(prefixes[i % len(prefixes)] + rng.randbytes(rng.choice([1, 7, 64, 4096, rng.randrange(8192)])))
        with pytest.raises(CheckpointError, match=re.escape(str(src))) as info:
            _load_quietly(src)
        message = str(info.value)
        assert any(s in message for s in ("refused to load", "not a PyTorch checkpoint", "truncated or corrupt")), i


def test_truncated_checkpoint_at_many_offsets_is_a_checkpoint_error(small_ckpt: Path, tmp_path: Path) -> None:
    data = small_ckpt.read_bytes()
    offsets = sorted({*range(0, 600, 7), *(int(len(data) * (k / 97) ** 2) for k in range(97)), len(data) - 1})
    src = tmp_path / "cut.ckpt"
    for offset in offsets:
        src.write_bytes(data[:offset])
        with pytest.raises(CheckpointError, match="truncated or corrupt: download it again"):
            _load_quietly(src)


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_damaged_checkpoints_never_raise_raw_errors(tmp_path: Path, legacy: bool) -> None:
    """Bytes overwritten in a small checkpoint (zip and legacy format): the loader either reads it or raises
    CheckpointError; it raised KeyError, IndexError, AssertionError and struct.error."""
    buffer = io.BytesIO()
    payload = {"state_dict": {"a": torch.ones(3, 4), "b": torch.zeros(2)}, "epoch": 1, "hp": {"x": [1, 2.0, "s"]}}
    torch.save(payload, buffer, _use_new_zipfile_serialization=not legacy)
    original = buffer.getvalue()
    rng = random.Random(17)
    src = tmp_path / "damaged.ckpt"
    for _ in range(300):
        data = bytearray(original)
        for _ in range(rng.randrange(1, 5)):
            start = rng.randrange(len(data))
            data[start : start + rng.choice([1, 4, 8])] = rng.randbytes(rng.choice([1, 4, 8]))
        src.write_bytes(bytes(data))
        try:
            _load_quietly(src)
        except CheckpointError:
            pass


def test_unreadable_checkpoint_says_so_and_never_advises_deleting(small_ckpt: Path, tmp_path: Path, unreadable):
    src = tmp_path / "mine.ckpt"
    src.write_bytes(small_ckpt.read_bytes())
    with unreadable(src):
        for call in (read_checkpoint_payload, read_weights, clef.load):
            with pytest.raises(CheckpointError) as info:
                call(src)
            _assert_unreadable_message(str(info.value), src)
        with pytest.raises(CheckpointError) as info:
            convert_checkpoint(src, tmp_path / "out.safetensors")
        _assert_unreadable_message(str(info.value), src)
    assert src.read_bytes() == small_ckpt.read_bytes()  # untouched
    assert not (tmp_path / "out.safetensors").exists()


def _assert_unreadable_message(message: str, path: Path) -> None:
    assert "cannot read the " in message and str(path) in message, message
    assert "Permission denied" in message and "permissions" in message, message
    assert "corrupt" not in message, message
    for advice in ("delete it and", "delete the file", "download it again", "download or convert it again"):
        assert advice not in message, message
    assert "do not delete it" in message, message


def test_missing_source(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        convert_checkpoint(tmp_path / "nope.ckpt", tmp_path / "out.safetensors")


def test_destination_must_be_safetensors(small_ckpt: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\.safetensors"):
        convert_checkpoint(small_ckpt, tmp_path / "out.pt")


# --- reading our safetensors files ------------------------------------------------------------------------


@pytest.fixture
def converted(small_safetensors: Path, tmp_path: Path) -> Path:
    path = tmp_path / "copy.safetensors"
    path.write_bytes(small_safetensors.read_bytes())
    return path


def _header_length(data: bytes) -> int:
    return struct.unpack("<Q", data[:8])[0]


@pytest.mark.parametrize("damage", ["truncated", "header_length", "header_json", "garbage", "empty"])
def test_corrupt_safetensors(converted: Path, damage: str) -> None:
    data = converted.read_bytes()
    n = _header_length(data)
    if damage == "truncated":
        content = data[: len(data) - 1000]
    elif damage == "header_length":
        content = struct.pack("<Q", n + 10_000_000) + data[8:]
    elif damage == "header_json":
        content = data[:8] + b"#" + data[9:]
    elif damage == "garbage":
        content = os.urandom(len(data))
    else:
        content = b""
    converted.write_bytes(content)
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        read_weights(converted)
    with pytest.raises(CheckpointError):
        clef.load(converted, device="cpu")


def _rewrite(path: Path, *, metadata: dict[str, str] | None, tensors: dict[str, torch.Tensor] | None = None) -> None:
    tensors = tensors if tensors is not None else load_file(str(path))
    save_file(tensors, str(path), metadata=metadata)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format_version": "2"}, "format version '2'"),
        ({"format": "someone-else"}, "not written by clef-sdk"),
        ({"size": "medium"}, "metadata says size 'medium' but the tensors are CLEF-small"),
        (None, "not written by clef-sdk"),
    ],
    ids=["version", "format", "size", "no-metadata"],
)
def test_tampered_metadata(converted: Path, change: dict[str, str] | None, message: str) -> None:
    metadata = None if change is None else {**_metadata(converted), **change}
    _rewrite(converted, metadata=metadata)
    with pytest.raises(CheckpointError, match=message):
        read_weights(converted)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"preprocessing": None}, "has no preprocessing in its metadata"),
        ({"preprocessing": "not json"}, "preprocessing metadata is not valid JSON"),
        ({"preprocessing": "[" * 100_000}, "preprocessing metadata is not valid JSON"),
        ({"preprocessing": "null"}, "does not implement"),
        ({"embed_dim": None}, "has no embed_dim in its metadata"),
        ({"embed_dim": "1024"}, "metadata says embed_dim '1024' but CLEF-small embeds in 256"),
        ({"size": None}, "has no size in its metadata"),
        ({"format_version": None}, "has no format_version in its metadata"),
        ({"tensors_sha256": "0" * 64}, "modified or corrupted after conversion"),
    ],
    ids=lambda value: "-".join(f"{k}={str(v)[:8]}" for k, v in value.items()) if isinstance(value, dict) else "",
)
def test_metadata_the_checks_need_must_be_there_and_valid(converted: Path, change: dict, message: str) -> None:
    """A check never passes because its key was dropped, and a tampered value is a CheckpointError naming the
    file (preprocessing that is not JSON raised JSONDecodeError; deeply nested JSON RecursionError)."""
    metadata = _metadata(converted)
    for key, value in change.items():
        if value is None:
            del metadata[key]
        else:
            metadata[key] = value
    _rewrite(converted, metadata=metadata)
    with pytest.raises(CheckpointError, match=re.escape(message)) as info:
        read_weights(converted)
    assert str(converted) in str(info.value)


def test_files_written_by_this_version_load(small_safetensors: Path) -> None:
    weights = read_weights(small_safetensors)
    assert weights.size == "small" and weights.metadata["embed_dim"] == "256"


def test_unreadable_safetensors_says_so_and_never_advises_deleting(converted: Path, unreadable) -> None:
    """safetensors reports a permission-denied file as 'No such file or directory'; it was then called corrupt."""
    before = converted.read_bytes()
    with unreadable(converted):
        for call in (read_weights, clef.load):
            with pytest.raises(CheckpointError) as info:
                call(converted)
            _assert_unreadable_message(str(info.value), converted)
    assert converted.read_bytes() == before


def test_a_directory_is_not_reported_missing_or_corrupt(tmp_path: Path) -> None:
    folder = tmp_path / "model.safetensors"
    folder.mkdir()
    with pytest.raises(CheckpointError, match="is a directory: pass the file itself"):
        read_weights(folder)
    with pytest.raises(CheckpointError, match="is a directory: pass the file itself"):
        read_checkpoint(tmp_path)


def test_scalar_or_non_tensor_entries_are_checkpoint_errors(backbone, converted: Path, tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"'first_conv\.conv\.weight' has shape \(\)"):
        extract_backbone({**backbone, "first_conv.conv.weight": torch.tensor(1.0)})
    with pytest.raises(CheckpointError, match="not tensors: first_conv.conv.bias"):
        extract_backbone({**backbone, "first_conv.conv.bias": [0.0] * 32})
    with pytest.raises(CheckpointError, match="not a state dict"):
        extract_backbone([torch.zeros(3)])  # type: ignore[arg-type]
    with pytest.raises(CheckpointError, match="keys that are not strings: 3"):
        extract_backbone({**backbone, 3: torch.zeros(3)})  # type: ignore[dict-item]
    scalar = {**backbone, "first_conv.conv.weight": torch.tensor(1.0)}
    save_file(scalar, str(tmp_path / "scalar.safetensors"), metadata=_metadata(converted))
    with pytest.raises(CheckpointError, match="has shape"):
        read_weights(tmp_path / "scalar.safetensors")


def test_tampered_headers_never_raise_raw_errors(converted: Path) -> None:
    """Seeded edits of the safetensors header (dtypes, shapes, offsets, metadata values and keys, bytes): every
    file either loads or is a CheckpointError."""
    data = converted.read_bytes()
    length = _header_length(data)
    header, body = json.loads(data[8 : 8 + length]), data[8 + length :]
    keys = sorted(k for k in header if k != "__metadata__")
    rng = random.Random(3)
    loaded = 0
    for _ in range(120):
        edited = json.loads(json.dumps(header))
        meta = edited["__metadata__"]
        key, kind = rng.choice(keys), rng.randrange(7)
        if kind == 0:
            edited[key]["dtype"] = rng.choice(["F64", "F16", "BF16", "I64", "U8", "BOOL", "F8_E4M3", "C64", "X", 5])
        elif kind == 1:
            edited[key]["shape"] = rng.choice([[], [0], [-1], [2**40], [1] * 9, "x", [1.5]])
        elif kind == 2:
            edited[key]["data_offsets"] = rng.choice([[0, 0], [5, 3], [0, 2**62], [-1, 4], "a", [0]])
        elif kind == 3:
            checked = ["preprocessing", "embed_dim", "size", "format_version", "tensors_sha256"]
            meta[rng.choice([*checked, *sorted(meta)])] = rng.choice([5, None, [], "x", "{}", "[" * 5000, "1e999"])
        elif kind == 4:
            del meta[rng.choice(sorted(meta))]
        elif kind == 5:
            edited["__metadata__"] = rng.choice([None, [], "x"])
        else:
            text = bytearray(json.dumps(edited).encode())
            for _ in range(3):
                text[rng.randrange(len(text))] = rng.randrange(256)
            converted.write_bytes(struct.pack("<Q", len(text)) + bytes(text) + body)
            loaded += _loads(converted)
            continue
        text = json.dumps(edited).encode()
        converted.write_bytes(struct.pack("<Q", len(text)) + text + body)
        loaded += _loads(converted)
    assert loaded < 30  # most edits are refused; the rest touched keys no check needs (source_file, ...)


def _loads(path: Path) -> int:
    try:
        read_weights(path)
    except CheckpointError:
        return 0
    return 1


def test_tampered_tensors(converted: Path) -> None:
    tensors = load_file(str(converted))
    tensors["stage_list.0.block_list.0.conv1.conv.weight"][0, 0, 0] = float("nan")
    _rewrite(converted, metadata=_metadata(converted), tensors=tensors)
    with pytest.raises(CheckpointError, match="contains NaN"):
        read_weights(converted)
    del tensors["stage_list.0.block_list.0.conv1.conv.weight"]
    _rewrite(converted, metadata=_metadata(converted), tensors=tensors)
    with pytest.raises(CheckpointError, match="missing keys: stage_list.0.block_list.0.conv1.conv.weight"):
        read_weights(converted)


def test_flipped_byte_in_tensor_data_is_detected(converted: Path) -> None:
    data = bytearray(converted.read_bytes())
    data[-100] ^= 0x01  # one bit of one float32 weight: still finite, still the right shapes
    converted.write_bytes(bytes(data))
    with pytest.raises(
        CheckpointError, match=r"modified or corrupted after conversion \(tensor data sha256 [0-9a-f]{64}"
    ):
        read_weights(converted)
    with pytest.raises(CheckpointError, match="delete the file and download or convert it again"):
        clef.load(converted, device="cpu")


def test_file_without_tensor_digest_is_refused(converted: Path) -> None:
    metadata = _metadata(converted)
    del metadata["tensors_sha256"]
    _rewrite(converted, metadata=metadata)
    with pytest.raises(CheckpointError, match="no tensors_sha256 .* integrity cannot be checked"):
        read_weights(converted)


# --- round trip -------------------------------------------------------------------------------------------


def test_round_trip_matches_checkpoint_and_reference(
    small_ckpt: Path, tmp_path: Path, conformance_windows: np.ndarray, conformance_dir: Path, mitdb_record: np.ndarray
) -> None:
    dst = tmp_path / "small.safetensors"
    convert_checkpoint(small_ckpt, dst)
    from_safetensors = clef.load(dst, device="cpu")
    from_ckpt = clef.load(small_ckpt, device="cpu")
    x = torch.from_numpy(conformance_windows).unsqueeze(1)
    with torch.inference_mode():
        a = from_safetensors(x).numpy()
        b = from_ckpt(x).numpy()
    np.testing.assert_array_equal(a, b)
    expected = np.load(conformance_dir / "expected_small_lightning.npy")
    assert_matches_reference(a, expected, min_cosine=0.99999, max_rel_diff=1e-3)
    minute = mitdb_record[: 360 * 60]
    np.testing.assert_array_equal(clef.embed(minute, 360, model=dst), clef.embed(minute, 360, model=small_ckpt))


def test_conversion_is_reproducible(small_ckpt: Path, tmp_path: Path) -> None:
    first = convert_checkpoint(small_ckpt, tmp_path / "a.safetensors")
    second = convert_checkpoint(small_ckpt, tmp_path / "b.safetensors")
    assert first == second
