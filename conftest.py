"""The notebooks' memory budget, checked wherever `pytest --nbval` runs them.

mybinder.org guarantees roughly 450 MB to 1 GB per user, so a notebook whose kernel needs more is killed in front of a
class. After the last cell of each notebook, before nbval stops its kernel, this reads the kernel's peak resident
memory and fails the notebook's last cell when it is above the budget.
"""

from __future__ import annotations

import pytest

from metalearn_lite.memory import KERNEL_MEMORY_BUDGET_MIB, peak_memory_mib


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    notebook = item.parent
    kernel = getattr(notebook, "kernel", None)  # only nbval's notebook collectors have a kernel
    last_cell = nextitem is None or nextitem.parent is not notebook
    peak = _kernel_peak_mib(kernel) if kernel is not None and last_cell else None
    result = yield
    if peak is not None and peak > KERNEL_MEMORY_BUDGET_MIB:
        raise AssertionError(f"{notebook.name}: the kernel's memory peaked at {peak:,.0f} MiB, above the "
                             f"{KERNEL_MEMORY_BUDGET_MIB:,} MiB budget of one Binder user; free what cells no "
                             f"longer need (del, smaller evaluation chunks)")
    return result


def _kernel_peak_mib(kernel):
    pid = getattr(getattr(getattr(kernel, "km", None), "provisioner", None), "pid", None)
    return None if pid is None else peak_memory_mib(pid)
