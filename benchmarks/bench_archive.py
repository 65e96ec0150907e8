"""``clef.embed_archive`` throughput: records/s by model size and reader processes, and the cost of parts and resume.

The archive is real LUDB records (10 s, 500 Hz, lead I) replicated into a nested WFDB folder of ``--records``
records (symlinks to the 200 originals). For each size and reader count the job runs into a fresh folder; the
configurations are interleaved within each repeat (the machine's speed drifts), and the table gives medians.

- ``records/s``: record-leads embedded per second, reading, checking, embedding and writing parts included;
- ``in-memory``: ``clef.embed`` of the same records already in memory, one call (no reading, no parts): the
  ratio to it is what reading and writing parts cost;
- ``resume``: a rerun of a finished job (it reads the plan, sees every part, and stops).

On a GPU (when one is there) it adds the device with 4, 8 and 16 readers and the cosine of its embeddings to the
CPU's.

    python benchmarks/bench_archive.py                         # 2000 records, small and medium, 0/1/2 readers
    python benchmarks/bench_archive.py --records 200 --sizes small --repeats 1   # a quick look
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import encoder_for, machine, print_table, require_shared, row_cosines, write_json

import clef_sdk as clef


def build_archive(ludb: Path, folder: Path, n_records: int) -> Path:
    """``n_records`` records in ``folder/gNN/rNNNNN``, each a symlink pair to a LUDB record (cycling)."""
    originals = sorted(int(p.stem) for p in (ludb / "data").glob("*.hea"))
    for index in range(n_records):
        source = ludb / "data" / str(originals[index % len(originals)])
        target = folder / f"g{index // 100:02d}" / f"r{index:05d}"
        target.parent.mkdir(parents=True, exist_ok=True)
        for suffix in (".hea", ".dat"):
            link = Path(f"{target}{suffix}")
            if not link.exists():
                link.symlink_to(Path(f"{source}{suffix}").resolve())
        # the header names its signal file: point it at this record's own name
        header = Path(f"{target}.hea")
        text = Path(f"{source}.hea").read_text().replace(f"{source.name}.dat", f"{target.name}.dat")
        header.unlink()
        header.write_text(text.replace(f"{source.name} ", f"{target.name} ", 1))
    return folder


def job(archive: Path, encoder: clef.ClefEncoder, workers: int, shard: int, device: str | None) -> tuple[float, Path]:
    output = Path(tempfile.mkdtemp(prefix="bench-archive-")) / "out"
    started = time.perf_counter()
    clef.embed_archive(archive, output, model=encoder, leads=["I"], shard_size=shard, workers=workers,
                       devices=[device] if device else None, progress=False)  # fmt: skip
    return time.perf_counter() - started, output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--sizes", default="small,medium")
    parser.add_argument("--workers", default="0,1,2", help="reader process counts to compare")
    parser.add_argument("--shard-size", type=int, default=250)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None, help="write the results here (default: benchmarks/results/)")
    args = parser.parse_args(argv)

    shared = require_shared()
    folder = Path(tempfile.mkdtemp(prefix="bench-archive-src-"))
    archive = build_archive(shared / "data" / "ludb", folder, args.records)
    worker_counts = [int(w) for w in args.workers.split(",")]
    sizes = args.sizes.split(",")
    encoders = {size: encoder_for(size)[0] for size in sizes}
    signals = [clef.WfdbSignal(path.with_suffix(""), "i") for path in sorted(archive.rglob("*.hea"))]
    in_memory = [np.asarray(s[0 : len(s)]) for s in signals]

    times: dict[tuple[str, str], list[float]] = {}
    last: dict[tuple[str, str], Path] = {}
    for _ in range(args.repeats):
        for size in sizes:
            started = time.perf_counter()
            clef.embed(in_memory, fs=500, model=encoders[size])
            times.setdefault((size, "in-memory"), []).append(time.perf_counter() - started)
            for workers in worker_counts:
                seconds, output = job(archive, encoders[size], workers, args.shard_size, None)
                times.setdefault((size, f"{workers} readers"), []).append(seconds)
                last[(size, f"{workers} readers")] = output
    rows = []
    results: dict[str, object] = {"records": args.records, "shard_size": args.shard_size, "repeats": args.repeats}
    for size in sizes:
        base = statistics.median(times[(size, "in-memory")])
        for name in ["in-memory"] + [f"{w} readers" for w in worker_counts]:
            median = statistics.median(times[(size, name)])
            rows.append((size, name, f"{args.records / median:.1f}", f"{median:.1f}", f"{median / base:.2f}"))
            results[f"{size}/{name}"] = {"median_s": median, "records_per_s": args.records / median}
        output = last[(size, f"{worker_counts[-1]} readers")]
        started = time.perf_counter()
        clef.embed_archive(
            archive, output, model=encoders[size], leads=["I"], shard_size=args.shard_size, progress=False
        )
        resume = time.perf_counter() - started
        rows.append((size, "resume (finished job)", "", f"{resume:.2f}", ""))
        results[f"{size}/resume_s"] = resume

    if torch.cuda.is_available():
        for size in sizes:
            gpu = encoders[size].to("cuda")
            _, cpu_values = clef.read_embeddings(last[(size, f"{worker_counts[-1]} readers")])
            for workers in (4, 8, 16):
                seconds, output = job(archive, gpu, workers, args.shard_size, "cuda")
                _, values = clef.read_embeddings(output)
                cosine = float(np.min(row_cosines(values, cpu_values)))
                rows.append(
                    (
                        size,
                        f"cuda, {workers} readers",
                        f"{args.records / seconds:.1f}",
                        f"{seconds:.1f}",
                        f"cos>={cosine:.6f}",
                    )
                )
                results[f"{size}/cuda/{workers}"] = {"seconds": seconds, "min_cosine_to_cpu": cosine}

    print(f"embed_archive: {args.records} LUDB records (lead I, 10 s, 500 Hz), parts of {args.shard_size}, "
          f"median of {args.repeats}; cpu threads {torch.get_num_threads()}, {os.cpu_count()} cores")  # fmt: skip
    print_table(("size", "run", "records/s", "seconds", "vs in-memory"), rows)
    path = write_json("bench_archive", {"machine": machine(), "results": results}, args.json)
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
