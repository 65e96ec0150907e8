"""``clef.signal_quality`` on labelled windows of every source, leave-one-source-out.

The windows are those of ``_quality_windows.py`` (recorded ECG of five databases, and the same windows with
noise and artefacts added, at 128-1000 Hz in three units). For each source held out in turn, the score's ranges
are chosen on the other four by the procedure of ``_quality_tuning.py`` (the highest AUROC among the ranges that
flag at most 1% of each tuning source's usable windows); the held-out source is not tested on its windows whose
recorded noise tuning windows carry (NSTDB's 4-7 at 0, 6 and 12 dB). The table gives, on the held-out source, the
AUROC of usable against unusable windows and the fractions of its usable windows flagged and of its unusable
windows caught at the default threshold 0.5; then how many short artefacts (0.5 s at 5x and 10x the QRS) added to
each held-out source's usable recorded windows those ranges catch with their reason. The same procedure on all five
sources must give the SDK's ``DEFAULT_RANGES``. Then the shipped score per kind of window, and the NSTDB scores per
SNR.

    python benchmarks/bench_quality_loso.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table, require_shared, write_json
from _quality_tuning import (
    MAX_FLAGGED,
    NSTDB_LEVELS,
    Grid,
    choose_ranges,
    leave_one_source_out,
    measure,
    scores,
    short_artefacts_caught,
)
from _quality_windows import quality_windows

from clef_sdk.quality import DEFAULT_RANGES, DEFAULT_THRESHOLD


def kinds_table(windows: list, score: np.ndarray, reasons: list[tuple[str, ...]]) -> list[tuple[object, ...]]:
    """Per kind of window and label: how many, the median score, the share below the threshold, the main
    reasons."""
    kind = np.array([w.kind for w in windows])
    label = np.array([w.label for w in windows])
    rows = []
    for name in dict.fromkeys(kind):
        for name_label in ("usable", "ambiguous", "unusable"):
            chosen = (kind == name) & (label == name_label)
            if not chosen.any():
                continue
            found: dict[str, int] = {}
            for index in np.flatnonzero(chosen):
                for reason in reasons[index]:
                    found[reason] = found.get(reason, 0) + 1
            top = ", ".join(f"{r} {n}" for r, n in sorted(found.items(), key=lambda item: -item[1])[:3])
            rows.append(
                (
                    name,
                    name_label,
                    int(chosen.sum()),
                    f"{statistics.median(score[chosen]):.2f}",
                    f"{100 * np.mean(score[chosen] < DEFAULT_THRESHOLD):.0f}%",
                    top or "-",
                )
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-source", type=int, default=40, help="usable windows corrupted per source")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)

    windows = quality_windows(require_shared(), args.per_source)
    started = time.perf_counter()
    measured = measure(windows)
    seconds = time.perf_counter() - started
    grid = Grid.of(measured)
    held_out = leave_one_source_out(measured, grid)
    print(
        f"{len(windows)} windows ({int(measured.scored.sum())} scored) measured in {seconds:.1f} s; "
        f"leave-one-source-out (ranges chosen on the other sources, at most {MAX_FLAGGED:.0%} of their usable "
        f"windows flagged):"
    )
    print_table(
        (
            "held-out source",
            "usable / unusable",
            "AUROC",
            "usable flagged",
            "unusable caught",
            "ranges chosen without it",
        ),
        [
            (
                h.source,
                f"{h.n_usable} / {h.n_unusable}",
                f"{h.auroc:.3f}",
                f"{100 * h.usable_flagged:.1f}%",
                f"{100 * h.unusable_caught:.1f}%",
                f"bSQI {h.ranges.bsqi}, similarity {h.ranges.similarity}, artefact {h.ranges.artefact}, "
                f"in-band {h.ranges.in_band}",
            )
            for h in held_out
        ],
    )
    for h in held_out:
        if h.source == "nstdb":
            levels = ", ".join(f"{snr} dB {mean:.2f}" for snr, mean in zip(NSTDB_LEVELS, h.nstdb_means))
            print(f"NSTDB held out, mean score of its noisy windows: {levels}")
    held_out_ranges = {h.source: h.ranges for h in held_out}
    bursts = [b for times in (5.0, 10.0) for b in short_artefacts_caught(windows, held_out_ranges, times)]
    print("\n0.5 s of 1-10 Hz noise at 5x and 10x the QRS (peak to peak) in each held-out source's usable recorded")
    print("windows (3 places each), caught with the reason artefact by the ranges chosen without the source:")
    print_table(
        ("held-out source", "bursts", "5x caught", "10x caught"),
        [
            (five.source, five.n_bursts, f"{100 * five.caught:.1f}%", f"{100 * ten.caught:.1f}%")
            for five, ten in zip(bursts[: len(held_out)], bursts[len(held_out) :])
        ],
    )
    on_all = choose_ranges(measured, np.ones(len(windows), dtype=bool), grid)
    print(f"\nchosen on all five sources: {on_all}; the SDK's DEFAULT_RANGES: {DEFAULT_RANGES}")
    if on_all != DEFAULT_RANGES:
        print("  they differ: update DEFAULT_RANGES in clef_sdk/quality.py", file=sys.stderr)

    shipped = scores(measured, DEFAULT_RANGES)
    print("\nthe SDK's score (DEFAULT_RANGES), per kind of window:")
    kinds = kinds_table(windows, shipped, measured.reasons)
    print_table(("kind", "label", "windows", "median score", f"below {DEFAULT_THRESHOLD:g}", "main reasons"), kinds)
    nstdb = []
    for snr in NSTDB_LEVELS:
        chosen = measured.nstdb_snr == snr
        nstdb.append(
            (
                f"{snr} dB",
                int(chosen.sum()),
                f"{statistics.median(shipped[chosen]):.2f}",
                f"{np.mean(shipped[chosen]):.2f}",
            )
        )
    print()
    print_table(("NSTDB 118, after the noise starts", "windows", "median score", "mean score"), nstdb)
    write_json(
        "bench_quality_loso",
        {
            "windows": len(windows),
            "seconds": seconds,
            "leave_one_source_out": [asdict(h) for h in held_out],
            "short_artefacts": [asdict(b) for b in bursts],
            "chosen_on_all": asdict(on_all),
            "kinds": kinds,
            "nstdb": nstdb,
        },
        args.json,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
