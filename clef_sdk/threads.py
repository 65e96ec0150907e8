"""How many CPU threads the network runs on: the cores this process may use, less those other processes keep busy.

PyTorch starts one OpenMP thread per core of the machine. On a shared machine that oversubscribes the cores:
OpenMP threads spin while they wait for each other, and a thread whose core another process holds makes every
parallel region wait for it (measured on 2 cores with one busy process beside: 30 min of ECG in 1.3-1.8 s with two
threads, 0.40-0.45 s with one). So, unless told a number, the SDK runs the network on

    min(torch's thread count, cores in the affinity mask, the cgroup CPU quota, idle cores)

where idle cores are the online CPUs less the other processes' runnable threads (``/proc/loadavg`` minus this
process's own), read at most once a second: when a call starts (calls within a second of the last reading share
it) and again during long calls. A number given as
``num_threads=``, in ``CLEF_SDK_NUM_THREADS`` or in ``OMP_NUM_THREADS`` is used as it is. Results differ between
thread counts only in float32 rounding (about 2e-7); pass a fixed ``num_threads`` for bit-identical reruns.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from .errors import SettingsError

__all__ = [
    "NUM_THREADS_ENV",
    "ThreadChoice",
    "available_cpus",
    "busy_cpus",
    "check_num_threads",
    "fixed_num_threads",
    "torch_threads",
]

NUM_THREADS_ENV = "CLEF_SDK_NUM_THREADS"
_RECHECK_SECONDS = 1.0
_CGROUP = Path("/sys/fs/cgroup")
_LOADAVG = Path("/proc/loadavg")


def check_num_threads(num_threads: object) -> int | None:
    """``num_threads`` as given: ``None`` (choose) or a positive int."""
    if num_threads is None:
        return None
    if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
        raise ValueError(
            f"num_threads must be a positive int or None (choose from the free cores), got {num_threads!r}"
        )
    return num_threads


def fixed_num_threads(num_threads: int | None = None) -> int | None:
    """The thread count fixed by the caller: ``num_threads``, else ``CLEF_SDK_NUM_THREADS``, else ``OMP_NUM_THREADS``
    (its first number); ``None`` when none is set."""
    if num_threads is not None:
        return check_num_threads(num_threads)
    for name in (NUM_THREADS_ENV, "OMP_NUM_THREADS"):
        text = (os.environ.get(name) or "").strip()
        if not text:
            continue
        first = text.split(",")[0].strip()  # OpenMP allows a list, one number per nesting level
        if not first.isdigit() or int(first) < 1:
            raise SettingsError(f"environment variable {name}={text!r} must be a positive whole number of threads")
        return int(first)
    return None


def _cgroup_quota() -> float | None:
    """CPUs allowed by the cgroup's CFS quota (v2 ``cpu.max`` or v1 ``cpu.cfs_quota_us``), ``None`` if unlimited."""
    own = ""
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            if line.startswith("0::"):
                own = line[3:].strip().lstrip("/")
    except OSError:
        pass
    for folder in dict.fromkeys([_CGROUP / own, _CGROUP]):
        try:
            quota, period = (folder / "cpu.max").read_text().split()[:2]
        except (OSError, ValueError):
            continue
        return None if quota == "max" else int(quota) / int(period)
    try:
        quota_us = int((_CGROUP / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((_CGROUP / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota_us <= 0 else quota_us / period_us


def available_cpus() -> int:
    """Cores this process may run on: its affinity mask, capped by the cgroup CPU quota (rounded down, at least 1)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    quota = _cgroup_quota()
    if quota is not None:
        cores = min(cores, max(1, int(quota)))
    return max(1, cores)


def _own_running_threads() -> int:
    count = 0
    for stat in Path("/proc/self/task").glob("*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the thread ended
            continue
        count += text[text.rindex(")") + 2] == "R"
    return count


def busy_cpus() -> int:
    """Runnable threads of other processes right now (``/proc/loadavg``'s count less this process's own); 0 where
    the system does not say (not Linux)."""
    try:
        running = int(_LOADAVG.read_text().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return 0
    return max(0, running - max(1, _own_running_threads()))


class ThreadChoice:
    """The thread count of one call: fixed when the caller gave one, else chosen from the free cores and re-chosen
    at most once a second (`update`) while the call runs."""

    def __init__(self, num_threads: int | None = None, ceiling: int | None = None):
        self.fixed = fixed_num_threads(num_threads)
        self.ceiling = ceiling or torch.get_num_threads()
        self.checked = 0.0
        self.count = self.fixed or self._choose()

    def _choose(self) -> int:
        self.checked = time.monotonic()
        online = os.cpu_count() or 1
        idle = online - busy_cpus()
        return max(1, min(self.ceiling, available_cpus(), idle))

    def update(self) -> bool:
        """Re-choose if a second has passed; whether the count changed."""
        if self.fixed is not None or time.monotonic() - self.checked < _RECHECK_SECONDS:
            return False
        previous, self.count = self.count, self._choose()
        if self.count != previous:
            torch.set_num_threads(self.count)
        return self.count != previous


_lock = threading.Lock()
_active = 0
_saved = 0
_recent: ThreadChoice | None = None


def _recent_choice(num_threads: int | None, ceiling: int) -> ThreadChoice:
    """The choice made less than a second ago for the same ceiling, else a new one: reading ``/proc`` took about
    0.3 ms, 4% of a one-window call (8 ms with OpenVINO), so calls in a row share one reading, as a long call does.
    A fixed count is cheap and never shared."""
    global _recent
    if fixed_num_threads(num_threads) is None:
        recent = _recent
        if recent is not None and recent.ceiling == ceiling and time.monotonic() - recent.checked < _RECHECK_SECONDS:
            return recent
    choice = ThreadChoice(num_threads, ceiling)
    if choice.fixed is None:
        _recent = choice
    return choice


@contextmanager
def torch_threads(num_threads: int | None = None) -> Iterator[ThreadChoice]:
    """Run torch on the chosen thread count inside the block and restore the caller's count after it (nested and
    concurrent blocks restore once, when the last one ends)."""
    global _active, _saved
    with _lock:
        if _active == 0:
            _saved = torch.get_num_threads()
        _active += 1
        ceiling = _saved
    choice = _recent_choice(num_threads, ceiling)
    torch.set_num_threads(choice.count)
    try:
        yield choice
    finally:
        with _lock:
            _active -= 1
            if _active == 0:
                torch.set_num_threads(_saved)
