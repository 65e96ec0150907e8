"""Fixtures of the weights tests: files the process really cannot read (``unreadable``)."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import stat
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

import pytest

_CAPABILITY_VERSION_3 = 0x20080522
_DAC_CAPABILITIES = (1 << 1) | (1 << 2)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name, use_errno=True)
    except OSError:
        return None
    return libc if hasattr(libc, "capget") and hasattr(libc, "capset") else None


@contextmanager
def _without_dac_override() -> Iterator[None]:
    """Clear CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from this thread's effective capabilities (and restore them):
    root then gets EACCES from the kernel for a file mode 000, exactly as any other user."""
    libc = _libc()
    if libc is None:
        pytest.skip("no capget/capset here: cannot make a file unreadable for root")
    data = (_CapData * 2)()
    if libc.capget(ctypes.byref(_CapHeader(_CAPABILITY_VERSION_3, 0)), data) != 0:
        pytest.skip(f"capget failed (errno {ctypes.get_errno()}): cannot make a file unreadable for root")
    saved = [(d.effective, d.permitted, d.inheritable) for d in data]
    data[0].effective &= ~_DAC_CAPABILITIES
    if libc.capset(ctypes.byref(_CapHeader(_CAPABILITY_VERSION_3, 0)), data) != 0:
        pytest.skip(f"capset failed (errno {ctypes.get_errno()}): cannot make a file unreadable for root")
    try:
        yield
    finally:
        for entry, (effective, permitted, inheritable) in zip(data, saved):
            entry.effective, entry.permitted, entry.inheritable = effective, permitted, inheritable
        assert libc.capset(ctypes.byref(_CapHeader(_CAPABILITY_VERSION_3, 0)), data) == 0


@pytest.fixture
def unreadable() -> Callable[[Path], AbstractContextManager[None]]:
    """``with unreadable(path): ...``: within the block the file (mode 000) cannot be read by this process, for
    real: a user's read is refused by the kernel; root (as in CI) gives up, for the block and this thread only, the
    capabilities that let it read any file. The file's mode is restored afterwards."""

    @contextmanager
    def make(path: Path) -> Iterator[None]:
        mode = stat.S_IMODE(path.stat().st_mode)
        os.chmod(path, 0)
        try:
            with _without_dac_override() if os.geteuid() == 0 else nullcontext():
                try:
                    path.open("rb").close()
                except PermissionError:
                    pass  # the kernel really refuses
                else:
                    pytest.skip(f"the file system of {path} does not enforce permissions")
                yield
        finally:
            os.chmod(path, mode)

    return make
