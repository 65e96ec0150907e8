"""``clef.signal_quality`` on labelled windows of every source, leave-one-source-out.

The windows are those of ``_quality_windows.py`` (recorded ECG of five databases, and the same windows with
noise and artefacts added, at 128-1000 Hz in three units). For each source held out in turn, the threshold is
chosen on the other four: the largest that keeps at least 95% of their usable windows usable. The table gives, on
the held-out source, the AUROC of usable against unusable windows (threshold-free), the fraction of its usable
windows flagged and of its unusable windows caught at that threshold, and the same two at the SDK's default
threshold. A second table gives the catch rate per kind of corruption, and the NSTDB scores per SNR.

    python benchmarks/bench_quality_loso.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table, require_shared, write_json
from _quality_windows import NSTDB_CLEAN_WINDOWS, SOURCES, quality_windows

import clef_sdk as clef
from clef_sdk.quality import DEFAULT_THRESHOLD

#: the tuned threshold keeps at least this fraction of the tuning sources' usable windows
KEEP_USABLE = 0.95


def tuned_threshold(scores: np.ndarray, usable: np.ndarray) -> float:
    """The largest threshold keeping ``KEEP_USABLE`` of the usable windows (``score >= threshold``)."""
    return float(np.quantile(scores[usable], 1 - KEEP_USABLE, method="lower"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-source", type=int, default=40, help="usable windows corrupted per source")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    from sklearn.metrics import roc_auc_score

    shared = require_shared()
    windows = quality_windows(shared, args.per_source)
    started = time.perf_counter()
    results = [clef.signal_quality(w.signal, w.fs) for w in windows]
    seconds = time.perf_counter() - started
    scores = np.array([r.score[0] for r in results])
    reasons = [r.reasons[0] for r in results]
    source = np.array([w.source for w in windows])
    label = np.array([w.label for w in windows])
    kind = np.array([w.kind for w in windows])
    scored = label != "ambiguous"
    usable = label == "usable"

    rows, table = [], []
    for held_out in SOURCES:
        tune = (source != held_out) & scored
        test = (source == held_out) & scored
        threshold = tuned_threshold(scores[tune], usable[tune])
        y, s = usable[test], scores[test]
        auroc = roc_auc_score(y, s) if 0 < y.sum() < len(y) else float("nan")
        flagged, caught = np.mean(s[y] < threshold), np.mean(s[~y] < threshold)
        flagged_default, caught_default = np.mean(s[y] < DEFAULT_THRESHOLD), np.mean(s[~y] < DEFAULT_THRESHOLD)
        rows.append(
            (
                held_out,
                f"{int(y.sum())} / {int((~y).sum())}",
                f"{auroc:.3f}",
                f"{threshold:.2f}",
                f"{100 * flagged:.1f}%",
                f"{100 * caught:.1f}%",
                f"{100 * flagged_default:.1f}%",
                f"{100 * caught_default:.1f}%",
            )
        )
        table.append(
            {
                "held_out": held_out,
                "usable": int(y.sum()),
                "unusable": int((~y).sum()),
                "auroc": auroc,
                "threshold": threshold,
                "usable_flagged": flagged,
                "unusable_caught": caught,
                "usable_flagged_at_default": flagged_default,
                "unusable_caught_at_default": caught_default,
            }
        )
    print(f"{len(windows)} windows ({int(scored.sum())} scored) in {seconds:.1f} s; leave-one-source-out:")
    print_table(
        (
            "held-out source",
            "usable / unusable",
            "AUROC",
            "threshold",
            "usable flagged",
            "unusable caught",
            f"flagged at {DEFAULT_THRESHOLD:g}",
            f"caught at {DEFAULT_THRESHOLD:g}",
        ),
        rows,
    )

    kinds = []
    for name in dict.fromkeys(kind):
        chosen = kind == name
        for name_label in ("usable", "ambiguous", "unusable"):
            rows_of = chosen & (label == name_label)
            if not rows_of.any():
                continue
            found: dict[str, int] = {}
            for index in np.flatnonzero(rows_of):
                for reason in reasons[index]:
                    found[reason] = found.get(reason, 0) + 1
            top = ", ".join(f"{r} {n}" for r, n in sorted(found.items(), key=lambda item: -item[1])[:3])
            kinds.append(
                (
                    name,
                    name_label,
                    int(rows_of.sum()),
                    f"{statistics.median(scores[rows_of]):.2f}",
                    f"{100 * np.mean(scores[rows_of] < DEFAULT_THRESHOLD):.0f}%",
                    top or "-",
                )
            )
    print()
    print_table(("kind", "label", "windows", "median score", f"below {DEFAULT_THRESHOLD:g}", "main reasons"), kinds)
    nstdb = []
    for snr in (24, 12, 6, 0):
        chosen = np.array(
            [
                w.source == "nstdb"
                and w.kind == "recorded"
                and w.record.startswith(f"118e{snr:02d}")
                and int(w.record.split(":")[1]) >= NSTDB_CLEAN_WINDOWS
                for w in windows
            ]
        )
        nstdb.append((f"{snr} dB", int(chosen.sum()), f"{statistics.median(scores[chosen]):.2f}"))
    print()
    print_table(("NSTDB 118, after the noise starts", "windows", "median score"), nstdb)
    write_json(
        "bench_quality_loso",
        {"windows": len(windows), "seconds": seconds, "leave_one_source_out": table, "kinds": kinds},
        args.json,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
