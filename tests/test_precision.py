"""Fast modes: bf16 autocast (CPU with native bf16, GPU), torch.compile, and the GPU preprocessing path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conformance_helpers import row_cosines

import clef_sdk as clef
from clef_sdk import precision as precision_module
from clef_sdk.precision import bf16_min_cosine, check_precision, cpu_has_native_bf16
from clef_sdk.weights.format import encoder_from_weights, extract_backbone

needs_native_bf16 = pytest.mark.skipif(
    not cpu_has_native_bf16(), reason="this CPU has no native bf16 (AVX-512 BF16, AMX or Arm BF16)"
)


@pytest.fixture(scope="module")
def ludb_minutes(data_dir) -> np.ndarray:
    """Lead I of LUDB records 1-12 back to back: 2 min of real 500 Hz ECG in ADC counts."""
    return np.concatenate(
        [np.fromfile(data_dir / "ludb" / "data" / f"{r}.dat", dtype="<i2").reshape(-1, 12)[:, 0] for r in range(1, 13)]
    ).astype(np.float64)


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match=r"precision must be one of \('fp32', 'bf16'\)"):
        check_precision("fp16", torch.device("cpu"))
    with pytest.raises(ValueError, match="precision must be one of"):
        clef.embed(np.random.default_rng(0).normal(size=6000), 500, model=clef.build("small"), precision="half")


def test_bf16_on_a_cpu_without_native_bf16_says_what_to_do(monkeypatch):
    cpuinfo = "flags\t\t: fpu sse sse2 avx avx2 fma avx512f\n"  # a CPU with AVX-512 but no BF16 extension
    monkeypatch.setattr(precision_module.platform, "system", lambda: "Linux")
    monkeypatch.setattr(precision_module.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(precision_module.Path, "read_text", lambda self, **kwargs: cpuinfo)
    cpu_has_native_bf16.cache_clear()
    try:
        assert not cpu_has_native_bf16()
        with pytest.raises(ValueError, match="native bf16 instructions .* Use precision='fp32'"):
            check_precision("bf16", torch.device("cpu"))
        monkeypatch.setattr(precision_module.Path, "read_text", lambda self, **kwargs: cpuinfo + " avx512_bf16\n")
        cpu_has_native_bf16.cache_clear()
        assert cpu_has_native_bf16()
    finally:
        cpu_has_native_bf16.cache_clear()


def test_the_bf16_bound_is_lower_on_cpus_with_amx(monkeypatch):
    """oneDNN's AMX convolution kernels round more than its AVX-512 BF16 ones (the measurements below)."""
    from clef_sdk.precision import cpu_has_amx_bf16

    monkeypatch.setattr(precision_module.platform, "system", lambda: "Linux")
    monkeypatch.setattr(precision_module.Path, "is_file", lambda self: True)
    for flags, expected in (("avx512f avx512_bf16", 0.9999), ("avx512f avx512_bf16 amx_bf16 amx_tile", 0.997)):
        monkeypatch.setattr(
            precision_module.Path, "read_text", lambda self, flags=flags, **kwargs: f"flags\t: {flags}\n"
        )
        cpu_has_amx_bf16.cache_clear()
        try:
            assert bf16_min_cosine(torch.device("cpu")) == expected
            assert bf16_min_cosine(torch.device("cuda")) == 0.9999
        finally:
            cpu_has_amx_bf16.cache_clear()


@needs_native_bf16
@pytest.mark.parametrize("size", ["small", "medium"])
def test_bf16_embeddings_stay_within_cosine_of_fp32(size, small_encoder, medium_rule_state_dict, ludb_minutes):
    encoder = small_encoder if size == "small" else encoder_from_weights(extract_backbone(medium_rule_state_dict))
    fp32 = clef.embed(ludb_minutes, 500, model=encoder, pooling=None)
    bf16 = clef.embed(ludb_minutes, 500, model=encoder, pooling=None, precision="bf16")
    assert bf16.dtype == np.float32 and bf16.shape == fp32.shape == (12, encoder.embed_dim)
    # measured on this data: min cosine 0.999994 (small, conformance checkpoint), 0.999991 (medium, rule weights) on
    # AVX-512 BF16; 0.99825 (small) on a Xeon with AMX (oneDNN's AMX convolutions), 0.999995 there with AMX off
    assert row_cosines(bf16, fp32).min() >= bf16_min_cosine(torch.device("cpu"))


@needs_native_bf16
def test_bf16_through_the_embedder_and_the_command_line(small_safetensors, ludb_minutes, tmp_path, capsys):
    from clef_sdk.cli import main

    embedder = clef.ClefEmbedder(model=str(small_safetensors), fs=500, precision="bf16")
    rows = embedder.fit_transform(ludb_minutes.reshape(3, -1))
    reference = clef.embed(ludb_minutes.reshape(3, -1), 500, model=str(small_safetensors))
    assert row_cosines(rows, reference).min() >= bf16_min_cosine(torch.device("cpu"))
    source = tmp_path / "ecg.npy"
    np.save(source, ludb_minutes)
    output = tmp_path / "embedding.npy"
    assert (
        main(
            [
                "embed",
                str(source),
                "--fs",
                "500",
                "--model",
                str(small_safetensors),
                "--precision",
                "bf16",
                "-o",
                str(output),
                "--no-progress",
            ]
        )
        == 0
    )
    reference = clef.embed(ludb_minutes, 500, model=str(small_safetensors))
    assert row_cosines(np.load(output), reference) >= bf16_min_cosine(torch.device("cpu"))


@pytest.mark.slow
def test_compiled_encoder_gives_the_same_embeddings(small_encoder, ludb_minutes):
    eager = clef.embed(ludb_minutes, 500, model=small_encoder, pooling=None, batch_size=5)
    compiled = clef.embed(ludb_minutes, 500, model=small_encoder, pooling=None, batch_size=5, compile=True)
    # 12 windows in batches of 5: the last batch is padded to the compiled shape and its padding dropped.
    # measured max |difference| 4.8e-7 (inductor fuses the element-wise ops differently)
    np.testing.assert_allclose(compiled, eager, rtol=0, atol=1e-5)


@pytest.mark.gpu
@pytest.mark.parametrize("size", ["small", "medium"])
def test_gpu_fast_mode_matches_fp32(size, small_encoder, medium_rule_state_dict, ludb_minutes, conformance_windows):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    encoder = small_encoder if size == "small" else encoder_from_weights(extract_backbone(medium_rule_state_dict))
    cpu = clef.embed(ludb_minutes, 500, model=encoder, pooling=None, device="cpu")
    gpu_fp32 = clef.embed(ludb_minutes, 500, model=encoder, pooling=None, device="cuda")
    gpu_fast = clef.embed(ludb_minutes, 500, model=encoder, pooling=None, device="cuda", precision="bf16", compile=True)
    assert row_cosines(gpu_fp32, cpu).min() >= 0.99999  # GPU preprocessing in float64 and fp32 model: faithful
    # the fast mode's bound; bf16 on a CPU measured 1 - 6e-6 (small) and 1 - 9e-6 (medium) on these windows
    assert row_cosines(gpu_fast, cpu).min() >= 0.9999
    with torch.inference_mode():
        windows = torch.from_numpy(conformance_windows).unsqueeze(1)
        reference = encoder.cpu()(windows).numpy()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            fast = encoder.cuda()(windows.cuda()).float().cpu().numpy()
    assert row_cosines(fast, reference).min() >= 0.999
