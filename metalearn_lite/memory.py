"""How much memory a process has used: the notebooks' memory budget, checked by the tests and the run-all tool."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

# One mybinder.org user gets roughly 450 MB to 1 GB (2025 deploy notes); a kernel above this is killed in class.
KERNEL_MEMORY_BUDGET_MIB = 1024


def peak_memory_mib(pid: int) -> Optional[float]:
    """Peak resident memory (VmHWM) of process ``pid`` in MiB, or None where /proc is not there (macOS, Windows)."""
    try:
        status = Path(f"/proc/{int(pid)}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # the kernel reports kB
    return None
