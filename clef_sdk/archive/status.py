"""The state of an archive job, running or finished: ``clef embed-archive --status -o OUT``."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from ..errors import OutputError
from .parts import part_done, part_name, report_path
from .plan import PLAN_FILE
from .reading import SUCCESS_FILE

__all__ = ["archive_status", "format_status"]


def archive_status(output: str | os.PathLike[str]) -> dict[str, Any]:
    """Parts done and to do, records covered, skipped so far, the rate from the parts' times, and completion."""
    folder = Path(output)
    path = folder / PLAN_FILE
    if not path.is_file():
        raise OutputError(f"{folder} is not an embed-archive output (no _plan.json)")
    plan = json.loads(path.read_text())
    fmt = plan["options"]["format"]
    done = [part for part in range(plan["n_parts"]) if part_done(folder, part, fmt)]
    skipped = sum(len(json.loads(report_path(folder, part).read_text())) for part in done)
    suffix = "npy" if fmt == "npy" else "parquet"
    times = sorted((folder / f"{part_name(part)}.{suffix}").stat().st_mtime for part in done)
    per_part = (times[-1] - times[0]) / (len(times) - 1) if len(times) > 1 else None
    left = plan["n_parts"] - len(done)
    shard = plan["shard_size"]
    return {
        "output": str(folder),
        "model": plan["model"].get("label"),
        "leads": plan["leads"],
        "n_records": plan["n_records"],
        "n_parts": plan["n_parts"],
        "parts_done": len(done),
        "records_done": min(len(done) * shard, plan["n_records"]),
        "skipped": skipped,
        "complete": (folder / SUCCESS_FILE).is_file(),
        "seconds_per_part": per_part,
        "eta_seconds": per_part * left if per_part is not None and left else None,
        "last_part_age_seconds": time.time() - times[-1] if times else None,
        "runs": len(list((folder / "_runs").glob("*.json"))) if (folder / "_runs").is_dir() else 0,
    }


def format_status(status: dict[str, Any]) -> str:
    """The status as a few lines of text."""
    state = "complete" if status["complete"] else "unfinished (rerun the same command to resume)"
    lines = [
        f"{status['output']}: {state}",
        f"  model {status['model']}, leads {','.join(status['leads'])}",
        f"  parts {status['parts_done']}/{status['n_parts']}, records ~{status['records_done']}/{status['n_records']},"
        f" skipped record-leads {status['skipped']}",
    ]
    if status["seconds_per_part"] is not None:
        eta = f", about {status['eta_seconds'] / 60:.1f} min left" if status["eta_seconds"] else ""
        lines.append(
            f"  {status['seconds_per_part']:.1f} s per part{eta}; last part {status['last_part_age_seconds']:.0f} s ago"
        )
    return "\n".join(lines)
