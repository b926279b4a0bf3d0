"""How a training command ends early, the same way for both commands.

- Ctrl-C: the checkpoint at ``--out`` is not touched; with ``--save-on-interrupt`` the weights of the steps done
  so far go to ``<out stem>.interrupted-step<N>.pt`` next to it; exit code 130, as for any program ended by SIGINT.
- A non-finite loss: one line naming the step and the learning-rate flags; nothing is written; exit code 1.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, NoReturn, Optional

from ..train import NonFiniteLossError
from .preflight import PreflightError, check_replaceable

INTERRUPTED = 130   # 128 + SIGINT, what a shell reports for a program stopped by Ctrl-C
DIVERGED = 1


def interrupted_path(out: Path, step: int) -> Path:
    """Where ``--save-on-interrupt`` puts the progress of a run stopped after ``step`` steps."""
    out = Path(out)
    return out.with_name(f"{out.stem}.interrupted-step{step}{out.suffix or '.pt'}")


def diverged(prog: str, error: NonFiniteLossError) -> NoReturn:
    """End the command after a non-finite loss, naming the step and the flags of the learning rates."""
    flags = ", ".join(f"--{name.replace('_', '-')} {value:g}" for name, value in error.settings.items())
    sys.stderr.write(f"{prog}: error: training diverged at step {error.step} (the loss is {error.loss}); the "
                     f"likely cause is a learning rate too large ({flags}): try smaller values. Nothing was "
                     f"written.\n")
    raise SystemExit(DIVERGED)


def interrupted(out: Path, step: Optional[int], save: Optional[Callable[[Path], Path]],
                task_family: str) -> NoReturn:
    """End the command after Ctrl-C; ``save(path)`` writes the progress when ``--save-on-interrupt`` asked for it.

    ``step`` is None when the interrupt came outside the training loop (nothing to save then).
    """
    done = "before training started" if step is None else f"after step {step}"
    lines = [f"interrupted {done}; {out} was not touched"]
    if save is None or step is None:
        if step:
            lines.append("(--save-on-interrupt keeps the progress of an interrupted run)")
    else:
        lines.append(_save_progress(interrupted_path(out, step), step, save, task_family))
    sys.stderr.write("\n".join(lines) + "\n")
    raise SystemExit(INTERRUPTED)


def _save_progress(path: Path, step: int, save: Callable[[Path], Path], task_family: str) -> str:
    try:
        if path.exists():   # a name of our own making, but never replace a user's file with it
            check_replaceable(path, force=False, task_family=task_family)
        save(path)
    except (PreflightError, ValueError, OSError) as error:
        return f"the progress was NOT saved: {error}"
    return f"saved the progress so far ({step} steps) to {path}"
