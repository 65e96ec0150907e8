"""Pretraining losses: the reference values in ../shared/conformance/loss_cases.json, gradients (gradcheck),
degenerate batches, input checks, BYOL/MoCo, and the cross-process gather with 2 real gloo processes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from clef_sdk.train.losses import (
    byol_loss,
    clef_loss,
    gather_across_processes,
    info_nce,
    metadata_similarity,
    moco_loss,
    similarity_alignment,
    weighted_info_nce,
)

# The reference values were computed in float32; ours match them to 1.1e-7 (float32) and 2.2e-7 (float64)
# relative (measured over all cases and terms). The tolerance is 1e-4.
LOSS_RTOL = 1e-4


@pytest.fixture(scope="module")
def loss_cases(conformance_dir: Path) -> list[dict]:
    return json.loads((conformance_dir / "loss_cases.json").read_text())["cases"]


def _tensors(case: dict, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    z = torch.tensor(case["z"], dtype=dtype)
    n = case["n"]
    risk = torch.tensor([math.nan if v is None else v for v in case["risk"]], dtype=dtype)
    return z[:n], z[n:], risk, torch.tensor(case["missing_rate"], dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_reference_values(loss_cases: list[dict], dtype: torch.dtype) -> None:
    assert {case["n"] for case in loss_cases} == {4, 8, 32, 64}
    assert any(v is None for case in loss_cases for v in case["risk"]), "the cases include missing risks"
    for case in loss_cases:
        z1, z2, risk, missing = _tensors(case, dtype)
        t = case["temperature"]
        got = {
            "weighted_nce": weighted_info_nce(z1, z2, risk, temperature=t),
            "alignment": similarity_alignment(z1, z2, risk),
            "clef_loss": clef_loss(z1, z2, risk, temperature=t),
            "info_nce": info_nce(z1, z2, temperature=t),
            "weighted_nce_masked": weighted_info_nce(z1, z2, risk, missing, temperature=t),
            "alignment_masked": similarity_alignment(z1, z2, risk, missing),
        }
        for name, value in got.items():
            assert value.dtype == dtype and value.shape == ()
            assert float(value) == pytest.approx(case[name], rel=LOSS_RTOL), (case["n"], name)


def test_gradcheck_float64(loss_cases: list[dict]) -> None:
    z1, z2, risk, missing = _tensors(loss_cases[0], torch.float64)
    z1.requires_grad_(True)
    z2.requires_grad_(True)
    queue = torch.nn.functional.normalize(
        torch.randn(8, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64), dim=0
    )
    functions = {
        "weighted_info_nce": lambda a, b: weighted_info_nce(a, b, risk),
        "weighted_info_nce masked": lambda a, b: weighted_info_nce(a, b, risk, missing),
        "similarity_alignment": lambda a, b: similarity_alignment(a, b, risk, missing),
        "clef_loss": lambda a, b: clef_loss(a, b, risk),
        "info_nce": info_nce,
        "byol_loss": lambda a, b: byol_loss(a, b.flip(0), b, a.flip(0)),
        "moco_loss": lambda a, b: moco_loss(a, b, queue),
    }
    for name, function in functions.items():
        assert torch.autograd.gradcheck(function, (z1, z2), eps=1e-6, atol=1e-6), name


@pytest.mark.parametrize(
    "risk",
    [torch.tensor([7.5]), torch.full((6,), 3.0), torch.full((6,), math.nan)],
    ids=["n=1", "identical risks", "all risks missing"],
)
def test_degenerate_batches_are_finite(risk: torch.Tensor) -> None:
    n = len(risk)
    generator = torch.Generator().manual_seed(1)
    z1 = torch.randn(n, 16, generator=generator, requires_grad=True)
    z2 = torch.randn(n, 16, generator=generator, requires_grad=True)
    for missing in (None, torch.full((n,), 0.5)):
        for loss in (
            clef_loss(z1, z2, risk, missing),
            weighted_info_nce(z1, z2, risk, missing),
            similarity_alignment(z1, z2, risk, missing),
            info_nce(z1, z2),
        ):
            z1.grad = z2.grad = None
            loss.backward()
            assert torch.isfinite(loss)
            assert torch.isfinite(z1.grad).all() and torch.isfinite(z2.grad).all()


def test_identical_views_score_better_than_unrelated_ones() -> None:
    generator = torch.Generator().manual_seed(2)
    z = torch.randn(16, 32, generator=generator)
    risk = torch.linspace(1, 20, 16)
    noise = torch.randn(16, 32, generator=generator)
    for loss in (lambda a, b: clef_loss(a, b, risk), info_nce):
        assert loss(z, z + 0.01 * noise) < loss(z, noise)


def test_metadata_similarity() -> None:
    risk = torch.tensor([1.0, 5.0, math.nan, 1.0])
    similarity = metadata_similarity(risk)
    assert torch.equal(similarity.diagonal(), torch.ones(4))
    assert torch.allclose(similarity, similarity.T)
    # the most different pair (5 vs 0) gets the floor weight 1 - 1 = 0 (up to the 1e-6 of the normalisation)
    assert similarity[1, 2] == pytest.approx(0.0, abs=1e-5)
    assert similarity[0, 3] == pytest.approx(0.8)  # equal risks: weight 0.2, the floor
    masked = metadata_similarity(risk, torch.tensor([0.0, 1.0, 1.0, 0.0]))
    assert masked[1, 2] == pytest.approx(1 - math.exp(-1), abs=1e-5)  # both missing everything: weight * e^-1
    assert masked[0, 3] == similarity[0, 3]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: clef_loss(torch.ones(4, 8), torch.ones(3, 8), torch.ones(4)), r"both be \(n, d\)"),
        (lambda: clef_loss(torch.ones(4, 8), torch.ones(4, 8), torch.ones(3)), r"risk must be \(4,\)"),
        (lambda: clef_loss(torch.ones(4, 8), torch.ones(4, 8), torch.ones(4), torch.ones(2)), r"missing_rate must be"),
        (lambda: info_nce(torch.ones(0, 8), torch.ones(0, 8)), "empty"),
        (lambda: moco_loss(torch.ones(4, 8), torch.ones(4, 8), torch.ones(7, 10)), r"queue must be \(d, K\)"),
    ],
)
def test_bad_shapes_raise(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_moco_and_byol_values() -> None:
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    queue = torch.tensor([[0.0, -1.0], [1.0, 0.0]])  # two keys: (0, 1) and (-1, 0)
    # row 0: positive cos 1, negatives 0 and -1 -> cross-entropy of [1, 0, -1] / 0.5 at index 0
    expected0 = -torch.log_softmax(torch.tensor([1.0, 0.0, -1.0]) / 0.5, 0)[0]
    expected1 = -torch.log_softmax(torch.tensor([1.0, 1.0, 0.0]) / 0.5, 0)[0]
    assert moco_loss(q, q, queue, temperature=0.5) == pytest.approx(float((expected0 + expected1) / 2))
    assert byol_loss(q, q, q, q) == pytest.approx(0.0)
    assert byol_loss(q, -q, q, -q) == pytest.approx(8.0)  # 2 - 2 * (-1) per direction


def test_gather_is_identity_in_one_process() -> None:
    z = torch.randn(3, 4)
    assert gather_across_processes(z, None)[0] is z


@pytest.mark.xdist_group("distributed")  # with --dist loadgroup: one process group at a time
def test_two_gloo_processes_equal_one_process_with_the_whole_batch(tmp_path: Path) -> None:
    """k=2 processes with batch b=4 each: the same loss, and after DDP-style averaging the same gradient, as one
    process with batch 8 (the negatives of both processes enter every row)."""
    generator = torch.Generator().manual_seed(3)
    n, d_in, d = 8, 12, 6
    risk = torch.rand(n, generator=generator) * 20
    risk[2] = math.nan
    case = {
        "weight": torch.randn(d_in, d, generator=generator),
        "x1": torch.randn(n, d_in, generator=generator),
        "x2": torch.randn(n, d_in, generator=generator),
        "risk": risk,
        "missing_rate": torch.rand(n, generator=generator),
        "per_process": n // 2,
    }
    from ddp_workers import loss_and_gradients

    mp.spawn(
        loss_and_gradients, args=(2, f"file://{tmp_path / 'rendezvous'}", case, str(tmp_path)), nprocs=2, join=True
    )

    weight = torch.nn.Parameter(case["weight"].clone())
    z1, z2 = case["x1"] @ weight, case["x2"] @ weight
    loss = clef_loss(z1, z2, case["risk"], case["missing_rate"]) + info_nce(z1, z2)
    loss.backward()
    for rank in range(2):
        result = torch.load(tmp_path / f"rank{rank}.pt")
        # float32 sums in another order: measured 0 for the loss and 7.1e-8 of the largest gradient entry
        assert float(result["loss"]) == pytest.approx(loss.item(), rel=1e-6)
        torch.testing.assert_close(result["grad"], weight.grad, rtol=1e-5, atol=1e-6)
