"""What this machine can hold: free disk and available memory, checked before a run writes or
allocates anything.

A command estimates what its settings need (model, batches, weights file, checkpoints) and calls
`require_disk` / `require_memory`; they raise a one-line `ResourceError` naming the flags and
the figures when the machine cannot hold it. Tests fake the machine with the environment
variables `ZOO_FAKE_FREE_DISK` and `ZOO_FAKE_AVAILABLE_MEMORY` (bytes).

Example:

>>> import os
>>> os.environ["ZOO_FAKE_AVAILABLE_MEMORY"] = str(2**30)
>>> require_memory(3 * 2**30, "--hidden 100000 --depth 1000")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
zoo.errors.ResourceError: --hidden 100000 --depth 1000 need about 3.2 GB of memory; this ...
>>> del os.environ["ZOO_FAKE_AVAILABLE_MEMORY"]
"""

import os
import shutil
from pathlib import Path

from zoo.errors import ResourceError

# Room a run keeps for its own small files (config, history, metrics, plots, logs) and for the
# file system not to be filled to the last block.
DISK_MARGIN_BYTES = 64 * 2**20
# Share of the available memory a run may plan to use: the rest is for TensorFlow itself,
# temporaries and the other processes on the machine.
MEMORY_SHARE = 0.8


def human_bytes(count: float) -> str:
    """`count` bytes as a short decimal figure: `'1.6 TB'`, `'512.0 MB'`."""
    count = float(count)
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if abs(count) < 1000 or unit == "PB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    raise AssertionError("unreachable")


def free_disk(path) -> int:
    """Bytes free for this user on the file system that holds `path` (or its nearest existing
    parent)."""
    fake = os.environ.get("ZOO_FAKE_FREE_DISK")
    if fake:
        return int(fake)
    path = Path(path).absolute()
    existing = next((p for p in (path, *path.parents) if p.exists()), Path("/"))
    return shutil.disk_usage(existing).free


def available_memory() -> int:
    """Bytes of memory available to a new allocation: `MemAvailable` (Linux), else the
    physical memory, whichever is known; a cgroup limit lowers it."""
    fake = os.environ.get("ZOO_FAKE_AVAILABLE_MEMORY")
    if fake:
        return int(fake)
    available = None
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if available is None:
        try:
            available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            return 2**63
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            available = min(available, int(text))
    return available


def require_disk(path, needed: float, flags: str) -> None:
    """Raises `ResourceError` unless the file system of `path` has `needed` bytes free plus
    `DISK_MARGIN_BYTES`.

    Args:
        path: where the run writes (its folder, or the nearest existing parent).
        needed: bytes the run's files will take.
        flags: the flags that set the size, as the user typed them.
    """
    free = free_disk(path)
    if needed + DISK_MARGIN_BYTES > free:
        raise ResourceError(
            f"{flags} need about {human_bytes(needed)} of disk in {path}; "
            f"{human_bytes(free)} is free there."
        )


def require_memory(needed: float, flags: str) -> None:
    """Raises `ResourceError` unless `needed` bytes fit in `MEMORY_SHARE` of the available
    memory."""
    available = available_memory()
    if needed > MEMORY_SHARE * available:
        raise ResourceError(
            f"{flags} need about {human_bytes(needed)} of memory; this machine has "
            f"{human_bytes(available)} available."
        )
