"""The job plan of an archive run, written once, and which parts each rank computes.

``_plan.json`` fixes what the job is: the source (its description and the SHA-256 of its record ids), the model's
identity (weights digest, file SHA-256 or Hub commit), the leads and every option that changes a part's bytes, and
the part size. A rerun computes its own plan and compares: a different source, model or option is refused, never
mixed into the same table. Part ``i`` holds records ``[i * shard_size, (i + 1) * shard_size)`` of the sorted list;
rank ``r`` of ``w`` computes parts ``i`` with ``i % w == r`` (no process group: a dead rank blocks nobody, and the
parts it left are computed by the next run).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import OutputError
from ..files import atomic_write_text

__all__ = ["PLAN_FILE", "PLAN_FORMAT", "JobPlan", "rank_from_environment"]

PLAN_FILE = "_plan.json"
PLAN_FORMAT = "clef-sdk/embed-archive/1"


@dataclass(frozen=True)
class JobPlan:
    """What an archive job computes; ``_plan.json`` in the output folder."""

    source: dict[str, Any]
    records_sha256: str
    n_records: int
    model: dict[str, Any]
    leads: tuple[str, ...]
    options: dict[str, Any]
    shard_size: int

    @property
    def n_parts(self) -> int:
        return max(1, -(-self.n_records // self.shard_size))

    def part_range(self, part: int) -> tuple[int, int]:
        """The records (indices into the sorted list) of ``part``."""
        start = part * self.shard_size
        return start, min(start + self.shard_size, self.n_records)

    def parts_of(self, rank: int, world_size: int) -> list[int]:
        """The parts rank ``rank`` of ``world_size`` computes."""
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside 0..{world_size - 1} (world size {world_size})")
        return [part for part in range(self.n_parts) if part % world_size == rank]

    def as_json(self) -> dict[str, Any]:
        return {
            "format": PLAN_FORMAT,
            "source": self.source,
            "records_sha256": self.records_sha256,
            "n_records": self.n_records,
            "model": self.model,
            "leads": list(self.leads),
            "options": self.options,
            "shard_size": self.shard_size,
            "n_parts": self.n_parts,
        }

    def write_or_check(self, output: Path) -> None:
        """Write ``_plan.json`` to a new (or empty) output folder, or check that the one there is this plan."""
        path = output / PLAN_FILE
        mine = self.as_json()
        if path.is_file():
            try:
                theirs = json.loads(path.read_text())
            except ValueError:
                raise OutputError(f"{path} is corrupt; remove the output folder {output} and run again") from None
            differ = sorted(key for key in mine.keys() | theirs.keys() if mine.get(key) != theirs.get(key))
            if differ:
                raise OutputError(
                    f"{output} holds another job (its plan differs in: {', '.join(differ)}); use another output "
                    "folder, or delete this one to start over"
                )
            return
        output.mkdir(parents=True, exist_ok=True)
        foreign = [p.name for p in output.iterdir() if not p.name.startswith(".")]
        if foreign:
            raise OutputError(
                f"{output} is not empty and holds no archive plan ({', '.join(sorted(foreign)[:5])}); "
                "choose an empty or new output folder"
            )
        atomic_write_text(path, json.dumps(mine, indent=2, sort_keys=True))


def rank_from_environment(environ: Mapping[str, str] | None = None) -> tuple[int, int, str]:
    """``(rank, world_size, where)`` from the launcher's variables: torchrun (``RANK``/``WORLD_SIZE``), a SLURM
    job array (``SLURM_ARRAY_TASK_ID`` - ``SLURM_ARRAY_TASK_MIN`` of ``SLURM_ARRAY_TASK_COUNT``), ``srun``
    (``SLURM_PROCID``/``SLURM_NTASKS``); ``(0, 1, "single process")`` otherwise."""
    env = os.environ if environ is None else environ

    def number(name: str) -> int:
        try:
            return int(env[name])
        except ValueError:
            raise ValueError(f"${name}={env[name]!r} is not an integer") from None

    if "RANK" in env and "WORLD_SIZE" in env:
        return number("RANK"), number("WORLD_SIZE"), "torchrun (RANK, WORLD_SIZE)"
    if "SLURM_ARRAY_TASK_ID" in env and "SLURM_ARRAY_TASK_COUNT" in env:
        first = number("SLURM_ARRAY_TASK_MIN") if "SLURM_ARRAY_TASK_MIN" in env else 0
        return number("SLURM_ARRAY_TASK_ID") - first, number("SLURM_ARRAY_TASK_COUNT"), "SLURM job array"
    if "SLURM_PROCID" in env and "SLURM_NTASKS" in env:
        return number("SLURM_PROCID"), number("SLURM_NTASKS"), "srun (SLURM_PROCID, SLURM_NTASKS)"
    return 0, 1, "single process"
