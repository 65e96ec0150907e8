"""The CLEF network: sizes, parameter counts, state-dict layout, forward semantics, and conformance with the
reference implementation's outputs (``../shared/conformance``)."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conformance_helpers import assert_matches_reference, batchnorm_keys, read_key_shapes, rule_state_dict
from torch import nn

import clef_sdk as clef
from clef_sdk.models import ARCHITECTURES, ClefEncoder, build
from clef_sdk.weights.format import encoder_from_weights, extract_backbone

SIZES = ("small", "medium", "large")
# Published figures (paper, conformance README), BatchNorm weight/bias included.
PUBLISHED_PARAMETERS = {"small": 447_792, "medium": 30_654_000, "large": 296_623_360}
EMBED_DIMS = {"small": 256, "medium": 1024, "large": 2048}

# The README's float32 tolerance, per row.
F32_COSINE = 0.99999
F32_REL = 1e-3
# float64 against the float64 reference: measured cosine 1 - 1e-16 and max|diff| 2e-16 * max|expected|
# (small and medium); asserted with four orders of magnitude of margin.
F64_COSINE = 1 - 1e-13
F64_REL = 1e-12


@pytest.fixture(scope="module")
def small_checkpoint_state_dict(small_ckpt: Path) -> dict[str, torch.Tensor]:
    return torch.load(small_ckpt, map_location="cpu", weights_only=True)["state_dict"]


@pytest.fixture(scope="module")
def medium_encoder(medium_rule_state_dict: dict[str, torch.Tensor]) -> ClefEncoder:
    return encoder_from_weights(extract_backbone(medium_rule_state_dict))


def _strip(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The released-checkpoint recipe: drop the ``backbone.`` prefix and the BatchNorm tensors."""
    unprefixed = {key.removeprefix("backbone."): value for key, value in state_dict.items()}
    drop = batchnorm_keys(list(unprefixed))
    return {key: value for key, value in unprefixed.items() if key not in drop}


def _forward(encoder: nn.Module, windows: np.ndarray, dtype: torch.dtype = torch.float32) -> np.ndarray:
    with torch.inference_mode():
        return encoder(torch.from_numpy(windows).to(dtype).unsqueeze(1)).double().numpy()


# --- architecture -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_parameter_counts_match_published(size: str, conformance_dir: Path) -> None:
    ours = sum(p.numel() for p in build(size, device="meta").parameters())
    shapes = read_key_shapes(conformance_dir, size)
    bn = batchnorm_keys(list(shapes))
    bn_affine = sum(math.prod(shapes[k]) for k in bn if k.endswith((".weight", ".bias")))
    assert ours + bn_affine == PUBLISHED_PARAMETERS[size]
    assert ARCHITECTURES[size].num_parameters() == PUBLISHED_PARAMETERS[size]
    assert ARCHITECTURES[size].num_parameters(include_batchnorm=False) == ours
    # the reference key list agrees with the published figure as well
    reference = sum(
        math.prod(shape)
        for key, shape in shapes.items()
        if not key.endswith(("running_mean", "running_var", "num_batches_tracked"))
    )
    assert reference == PUBLISHED_PARAMETERS[size]


@pytest.mark.parametrize("size", SIZES)
def test_embed_dim_and_output_shape(size: str) -> None:
    network = build(size, device="meta")
    assert network.embed_dim == ARCHITECTURES[size].embed_dim == EMBED_DIMS[size]
    out = network(torch.empty(3, 1, 5000, device="meta"))
    assert tuple(out.shape) == (3, EMBED_DIMS[size])


@pytest.mark.parametrize("size", SIZES)
def test_state_dict_keys_are_reference_keys_without_batchnorm(size: str, conformance_dir: Path) -> None:
    reference = read_key_shapes(conformance_dir, size)
    bn = batchnorm_keys(list(reference))
    assert bn, "the reference carries BatchNorm tensors"
    expected = {key: shape for key, shape in reference.items() if key not in bn}
    ours = {key: tuple(t.shape) for key, t in build(size, device="meta").state_dict().items()}
    assert ours == expected
    assert ARCHITECTURES[size].batchnorm_shapes() == {key: reference[key] for key in bn}


@pytest.mark.parametrize("size", SIZES)
def test_no_batchnorm_or_dropout_modules(size: str) -> None:
    network = build(size, device="meta")
    banned = (nn.modules.batchnorm._BatchNorm, nn.Dropout, nn.Dropout1d)
    assert not [name for name, m in network.named_modules() if isinstance(m, banned)]


def test_released_checkpoint_loads_strict(small_checkpoint_state_dict: dict[str, torch.Tensor]) -> None:
    assert all(key.startswith("backbone.") for key in small_checkpoint_state_dict)
    stripped = _strip(small_checkpoint_state_dict)
    assert len(stripped) < len(small_checkpoint_state_dict)  # BatchNorm tensors were there and are dropped
    network = build("small")
    network.load_state_dict(stripped, strict=True)
    for key, tensor in network.state_dict().items():
        assert torch.equal(tensor, stripped[key])


def test_rule_weights_load_strict_medium(medium_rule_state_dict: dict[str, torch.Tensor]) -> None:
    build("medium").load_state_dict(_strip(medium_rule_state_dict), strict=True)


def test_strict_load_rejects_batchnorm_tensors(small_checkpoint_state_dict: dict[str, torch.Tensor]) -> None:
    unprefixed = {key.removeprefix("backbone."): value for key, value in small_checkpoint_state_dict.items()}
    with pytest.raises(RuntimeError, match="bn"):
        build("small").load_state_dict(unprefixed, strict=True)


def test_build_network_unknown_size() -> None:
    with pytest.raises(ValueError, match="unknown CLEF size 'huge'"):
        build("huge")


# --- forward ----------------------------------------------------------------------------------------------


def test_forward_is_time_mean_of_last_stage(small_encoder: ClefEncoder, conformance_windows: np.ndarray) -> None:
    captured: list[torch.Tensor] = []
    handle = small_encoder.stage_list[-1].register_forward_hook(lambda m, i, o: captured.append(o))
    try:
        x = torch.from_numpy(conformance_windows[:3]).unsqueeze(1)
        with torch.inference_mode():
            out = small_encoder(x)
    finally:
        handle.remove()
    (last_stage,) = captured
    # 5000 samples, stem stride 2 and 6 downsampling stages: ceil(5000 / 2**7) = 40 frames
    assert tuple(last_stage.shape) == (3, 256, 40)
    assert tuple(out.shape) == (3, 256)
    torch.testing.assert_close(out, last_stage.mean(-1), rtol=0, atol=0)


@pytest.mark.parametrize("n_samples", [3000, 5000, 7777])
def test_forward_features_frames(small_encoder: ClefEncoder, n_samples: int) -> None:
    x = torch.randn(2, 1, n_samples, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        features = small_encoder.forward_features(x)
        out = small_encoder(x)
    assert tuple(features.shape) == (2, 256, math.ceil(n_samples / 2**7))
    assert tuple(out.shape) == (2, 256)


@pytest.mark.parametrize("shape", [(2, 5000), (2, 2, 5000), (5000,)])
def test_forward_rejects_wrong_input_shape(small_encoder: ClefEncoder, shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"\(batch, 1, n_samples\)"):
        small_encoder(torch.zeros(shape))


def test_forward_rows_are_independent(small_encoder: ClefEncoder, conformance_windows: np.ndarray) -> None:
    together = _forward(small_encoder, conformance_windows)
    alone = np.concatenate([_forward(small_encoder, conformance_windows[i : i + 1]) for i in range(8)])
    np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-6 * np.abs(alone).max())


def test_train_mode_gives_the_same_output(small_encoder: ClefEncoder, conformance_windows: np.ndarray) -> None:
    """Without BatchNorm and dropout, train() and eval() compute the same function."""
    encoder = copy.deepcopy(small_encoder).train()
    np.testing.assert_array_equal(
        _forward(encoder, conformance_windows[:2]), _forward(small_encoder, conformance_windows[:2])
    )


# --- conformance ------------------------------------------------------------------------------------------


def test_conformance_small_float32(
    small_encoder: ClefEncoder, conformance_windows: np.ndarray, conformance_dir: Path
) -> None:
    expected = np.load(conformance_dir / "expected_small_lightning.npy")
    actual = _forward(small_encoder, conformance_windows)
    assert actual.shape == (8, 256)
    assert_matches_reference(actual, expected, min_cosine=F32_COSINE, max_rel_diff=F32_REL)


def test_conformance_small_float64(
    small_encoder: ClefEncoder, conformance_windows: np.ndarray, conformance_dir: Path
) -> None:
    expected = np.load(conformance_dir / "expected_small_lightning.npy")
    actual = _forward(copy.deepcopy(small_encoder).double(), conformance_windows, torch.float64)
    assert_matches_reference(actual, expected, min_cosine=F64_COSINE, max_rel_diff=F64_REL)


def test_conformance_medium_float32(
    medium_encoder: ClefEncoder, conformance_windows: np.ndarray, conformance_dir: Path
) -> None:
    expected = np.load(conformance_dir / "expected_medium_rule.npy")
    actual = _forward(medium_encoder, conformance_windows[:4])
    assert actual.shape == (4, 1024)
    assert_matches_reference(actual, expected, min_cosine=F32_COSINE, max_rel_diff=F32_REL)


def test_conformance_medium_float64(
    medium_encoder: ClefEncoder, conformance_windows: np.ndarray, conformance_dir: Path
) -> None:
    expected = np.load(conformance_dir / "expected_medium_rule.npy")
    actual = _forward(copy.deepcopy(medium_encoder).double(), conformance_windows[:4], torch.float64)
    assert_matches_reference(actual, expected, min_cosine=F64_COSINE, max_rel_diff=F64_REL)


def test_conformance_tolerance_is_not_vacuous(
    small_encoder: ClefEncoder, conformance_windows: np.ndarray, conformance_dir: Path
) -> None:
    """Shifting one grouped convolution's weights by 5% of their mean magnitude must break the float32 tolerance
    (measured: max|diff| 2e-3 * max|expected|), so the conformance checks can fail."""
    encoder = copy.deepcopy(small_encoder)
    with torch.no_grad():
        weight = encoder.stage_list[3].block_list[0].conv2.conv.weight
        weight.add_(0.05 * weight.abs().mean())
    expected = np.load(conformance_dir / "expected_small_lightning.npy")
    with pytest.raises(AssertionError):
        assert_matches_reference(
            _forward(encoder, conformance_windows), expected, min_cosine=F32_COSINE, max_rel_diff=F32_REL
        )


@pytest.mark.slow
def test_large_rule_weights_load_and_embed(conformance_dir: Path, conformance_windows: np.ndarray) -> None:
    """CLEF-large (296.6 M parameters, ~1.2 GB of float32 per copy; ~15 s on 2 CPU cores)."""
    state_dict = rule_state_dict(conformance_dir, "large")
    weights = extract_backbone(state_dict, source="large rule weights")
    assert weights.size == "large"
    network = build("large")
    network.load_state_dict(_strip(state_dict), strict=True)
    del state_dict, network
    encoder = encoder_from_weights(weights)
    del weights
    out = _forward(encoder, conformance_windows[:2])
    assert out.shape == (2, 2048)
    assert np.isfinite(out).all()
    assert np.abs(out).max() > 0
    assert not np.allclose(out[0], out[1])  # different ECG, different embeddings


# --- inside PyTorch models: named layers, random-init controls, frozen encoders ----------------------------


def test_forward_intermediates_match_forward_and_hooks(conformance_windows: np.ndarray, small_encoder) -> None:
    x = torch.from_numpy(conformance_windows[:3]).unsqueeze(1)
    names = small_encoder.layer_names
    assert names == ("first_conv", "stage_0", "stage_1", "stage_2", "stage_3", "stage_4", "stage_5", "embedding")
    hooked: dict[str, torch.Tensor] = {}
    modules = {
        "first_conv": small_encoder.first_conv,
        **{f"stage_{i}": s for i, s in enumerate(small_encoder.stage_list)},
    }
    handles = [
        m.register_forward_hook(lambda _m, _i, out, name=name: hooked.__setitem__(name, out))
        for name, m in modules.items()
    ]
    try:
        with torch.inference_mode():
            expected = small_encoder(x)
            every = small_encoder.forward_intermediates(x)
    finally:
        for handle in handles:
            handle.remove()
    assert list(every) == list(names)
    torch.testing.assert_close(every["embedding"], expected, rtol=0, atol=0)
    for name, tensor in hooked.items():
        torch.testing.assert_close(every[name], tensor, rtol=0, atol=0)
    assert every["first_conv"].shape == (3, 32, 2500) and every["stage_5"].shape[:2] == (3, 256)
    with torch.inference_mode():
        some = small_encoder.forward_intermediates(x, layers=["stage_1", "first_conv"])
    assert list(some) == ["stage_1", "first_conv"]
    with pytest.raises(ValueError, match=r"unknown layer\(s\) \['stage_9'\]"):
        small_encoder.forward_intermediates(x, layers=["stage_9"])


def test_build_is_reproducible_by_seed() -> None:
    a, b, c = clef.build("small", seed=7), clef.build("small", seed=7), clef.build("small", seed=8)
    assert a.training and all(p.requires_grad for p in a.parameters())
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.first_conv.conv.weight, c.first_conv.conv.weight)
    before = torch.random.get_rng_state()
    clef.build("small", seed=1)
    assert torch.equal(torch.random.get_rng_state(), before)  # the global generator is left alone
    with pytest.raises(ValueError, match="unknown CLEF size"):
        clef.build("tiny")


def test_load_frozen(small_safetensors) -> None:
    encoder = clef.load(small_safetensors, device="cpu", freeze=True)
    assert not encoder.training and not any(p.requires_grad for p in encoder.parameters())
    x = torch.randn(2, 1, 5000, requires_grad=True)
    encoder(x).sum().backward()  # gradients still reach the input: a fixed feature extractor
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in encoder.parameters())
