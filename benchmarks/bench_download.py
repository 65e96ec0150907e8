"""Download + verify + convert times through a local Hub/Zenodo server (tests/hub_server.py) on 127.0.0.1.

    .venv/bin/python benchmarks/bench_download.py                  # CLEF-small, the conformance checkpoint
    .venv/bin/python benchmarks/bench_download.py --ckpt clef_medium.ckpt --size medium --repeat 3
    .venv/bin/python benchmarks/bench_download.py --quick                # one repeat: a smoke test (CI)

Each repeat starts from an empty cache (in a temporary folder) and measures, in this process:

- hub first load: ``fetch_weights`` from a pinned Hub source (hf_hub_download: HEAD + GET from the CDN) + sha256;
- zenodo first load: ``fetch_weights`` from a Zenodo source (our resumable downloader) + md5/sha256 + conversion;
- the parts of the Zenodo path alone: HTTP download, checksum pass, conversion (read + validate + write);
- cached load: a second ``fetch_weights`` (verification record: no re-hash), and ``clef verify`` (re-hash).

The server adds no artificial latency, so the numbers are the SDK's own cost on top of a fast network.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests"))

from hub_server import FakeHub

SHARED = Path(os.environ.get("CLEF_SDK_SHARED") or REPO_ROOT.parent / "shared")
DEFAULT_CKPT = SHARED / "conformance" / "clef_small_lightning.ckpt"
ZENODO_FILES = {"small": "clef_small.ckpt", "medium": "clef_medium.ckpt", "large": "clef_largel.ckpt"}


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", type=Path, default=DEFAULT_CKPT, help="a released Lightning checkpoint")
    parser.add_argument("--size", default="small", choices=sorted(ZENODO_FILES), help="its CLEF size")
    parser.add_argument("--repeat", type=int, default=5, help="cold-cache repeats (default 5; median reported)")
    parser.add_argument("--quick", action="store_true", help="one repeat (a smoke test of every step)")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeat = 1
    if not args.ckpt.is_file():
        parser.error(f"{args.ckpt} not found: pass --ckpt (the released .ckpt, or ../shared's conformance one)")

    scratch = Path(tempfile.mkdtemp(prefix="clef-bench-"))
    os.environ.update({"HF_HOME": str(scratch / "hf"), "HF_HUB_DISABLE_PROGRESS_BARS": "1", "NO_PROXY": "127.0.0.1"})
    for name in ("HF_HUB_OFFLINE", "CLEF_SDK_HOME", "HF_TOKEN"):
        os.environ.pop(name, None)

    try:
        return run(args, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def run(args: argparse.Namespace, scratch: Path) -> int:
    """The measurements, with every cache under ``scratch`` (HF_HOME is set before clef_sdk is imported)."""
    import clef_sdk
    from clef_sdk import convert_checkpoint
    from clef_sdk.files import md5_and_sha256_file
    from clef_sdk.weights.cache import verify_cache
    from clef_sdk.weights.fetch import fetch_weights
    from clef_sdk.weights.format import extract_backbone, read_checkpoint, write_weights
    from clef_sdk.weights.network import http_download
    from clef_sdk.weights.registry import model_entry

    ckpt = args.ckpt.read_bytes()
    safetensors_path = scratch / "model.safetensors"
    sha256 = convert_checkpoint(args.ckpt, safetensors_path)
    safetensors = safetensors_path.read_bytes()
    md5 = hashlib.md5(ckpt).hexdigest()
    zenodo_name = ZENODO_FILES[args.size]
    rows: dict[str, list[float]] = {}

    def record(label: str, seconds: float) -> None:
        rows.setdefault(label, []).append(seconds)

    with FakeHub() as hub:
        os.environ["HF_ENDPOINT"] = hub.endpoint
        commit = hub.add_hub_file(f"bench/clef-{args.size}", "model.safetensors", safetensors)
        url = hub.add_zenodo_file("17572734", zenodo_name, ckpt)
        hub_src = {
            "type": "hub",
            "repo_id": f"bench/clef-{args.size}",
            "filename": "model.safetensors",
            "revision": commit,
            "sha256": sha256,
            "size": len(safetensors),
        }
        zen_src = {
            "type": "zenodo",
            "record": "17572734",
            "filename": zenodo_name,
            "url": url,
            "checksum": f"md5:{md5}",
            "size": len(ckpt),
        }
        arch = clef_sdk.ARCHITECTURES[args.size]

        def use(*sources: dict) -> None:
            manifest = scratch / "manifest.json"
            model = {
                "aliases": [],
                "embed_dim": arch.embed_dim,
                "num_parameters": arch.num_parameters(),
                "sources": list(sources),
            }
            manifest.write_text(json.dumps({"schema_version": 1, "models": {args.size: model}}))
            os.environ["CLEF_SDK_MANIFEST"] = str(manifest)

        for repeat in range(args.repeat):
            cache = scratch / f"run{repeat}"
            os.environ["HF_HUB_CACHE"] = str(cache / "hub")
            entry_name = args.size

            use(hub_src)
            seconds, _ = timed(lambda: fetch_weights(model_entry(entry_name), progress=False))
            record("hub first load (download + sha256)", seconds)
            record("cached load (recorded verification)", timed(lambda: fetch_weights(model_entry(entry_name)))[0])
            record("clef verify (re-hash)", timed(lambda: verify_cache(model_entry(entry_name)))[0])

            use(zen_src)
            seconds, _ = timed(lambda: fetch_weights(model_entry(entry_name), progress=False))
            record("zenodo first load (download + md5 + convert)", seconds)

            part = cache / "parts" / zenodo_name
            record(
                "  zenodo HTTP download",
                timed(lambda: http_download(url, part, expected_size=len(ckpt), progress=False))[0],
            )
            record("  md5 + sha256 of the .ckpt", timed(lambda: md5_and_sha256_file(part))[0])
            seconds, weights = timed(lambda: extract_backbone(read_checkpoint(part), source=str(part)))
            record("  convert: read (weights_only) + validate", seconds)
            record(
                "  convert: write safetensors",
                timed(lambda: write_weights(weights, cache / "parts" / "w.safetensors"))[0],
            )

    print(
        f"CLEF-{args.size}: checkpoint {len(ckpt) / 1e6:.1f} MB, safetensors {len(safetensors) / 1e6:.1f} MB; "
        f"{args.repeat} cold-cache repeats through 127.0.0.1 (python {sys.version.split()[0]}, "
        f"torch {__import__('torch').__version__}, {os.cpu_count()} CPUs)"
    )
    width = max(len(label) for label in rows)
    print(f"{'step':<{width}}  {'median ms':>9}  {'min ms':>8}  {'max ms':>8}")
    for label, values in rows.items():
        median, low, high = (1000 * v for v in (statistics.median(values), min(values), max(values)))
        print(f"{label:<{width}}  {median:>9.1f}  {low:>8.1f}  {high:>8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
