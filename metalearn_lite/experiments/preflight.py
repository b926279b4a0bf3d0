"""What both training commands check before their first step, so a typo costs a second instead of a whole run.

Each check raises ``PreflightError`` with one line that names the flag, the value and what is allowed;
``run_checks`` prints it the way argparse prints its own errors (``prog: error: ...``, exit code 2), without a
traceback and without the long usage text. The checks write nothing: the output folder is created for a moment to
prove it can be, then removed again.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Callable, Dict, Iterable, NamedTuple, NoReturn, Optional

from ..train import CheckpointError, load_checkpoint
from ..utils import resolve_device
from ..validation import require_float, require_int

USAGE_ERROR = 2       # argparse's exit code for a bad command line
MAX_SEED = 2**32 - 1  # NumPy's limit (seed_everything seeds NumPy too)


class PreflightError(ValueError):
    """A setting that would make the run fail or go wrong later; the message names the flag."""


class Range(NamedTuple):
    """Allowed values of a numeric flag: ``minimum``/``maximum`` inclusive (None: open); ``positive``: > 0."""

    minimum: Optional[float] = None
    maximum: Optional[float] = None
    positive: bool = False


SEED = Range(0, MAX_SEED)
# torch crashes on 0 or fewer threads, and far more threads than cores only slow a run down
THREADS = Range(1, os.cpu_count() or 1)


def refuse(prog: str, message: str) -> NoReturn:
    """Print ``prog: error: message`` to stderr and exit with argparse's usage-error code."""
    sys.stderr.write(f"{prog}: error: {message}\n")
    raise SystemExit(USAGE_ERROR)


def run_checks(prog: str, checks: Iterable[Callable[[], object]]) -> list:
    """Run each check in order and return what they return; the first ``PreflightError`` ends the command with
    its one-line message."""
    results = []
    for check in checks:
        try:
            results.append(check())
        except PreflightError as error:
            refuse(prog, str(error))
    return results


def check_ranges(args, ranges: Dict[str, Range]) -> None:
    """Check the numeric flags of ``args`` (``--log-every`` is ``args.log_every``); flags left at None are skipped.

    Integers and floats are told apart by the parsed value; floats must also be finite (argparse takes "nan").
    """
    for flag, allowed in ranges.items():
        value = getattr(args, flag.lstrip("-").replace("-", "_"))
        if value is None:
            continue
        try:
            if isinstance(value, int):
                require_int(flag, value, allowed.minimum, allowed.maximum)
            else:
                require_float(flag, value, allowed.minimum, allowed.maximum, positive=allowed.positive)
        except ValueError as error:
            raise PreflightError(str(error)) from None


def check_device(device: str) -> None:
    """``--device`` names a device this machine has."""
    try:
        resolve_device(device)
    except ValueError as error:
        raise PreflightError(f"--device: {error}") from None


def check_output(out: Path, force: bool, task_family: str) -> None:
    """``--out`` can be written: not a folder, absent or a checkpoint of ``task_family`` (else ``--force``), and
    in a folder that exists or can be created, and accepts new files."""
    out = Path(out)
    if out.is_dir():
        raise PreflightError(f"--out {out} is a folder; give the checkpoint's file name, e.g. {out / 'model.pt'}")
    if out.exists() or out.is_symlink():
        check_replaceable(out, force, task_family)
    check_folder_writable(out.parent)


def check_replaceable(out: Path, force: bool, task_family: str) -> None:
    """An existing ``--out`` is replaced only if it is a checkpoint of this command's family, or with ``--force``."""
    if force:
        return
    try:
        load_checkpoint(out, task_family=task_family)
    except (CheckpointError, FileNotFoundError, OSError) as error:
        raise PreflightError(f"--out {out} exists and {_reason(error, out)}; it was left alone: choose another "
                             f"--out, or add --force to replace it") from None


def check_folder_writable(folder: Path) -> None:
    """The folder exists or can be created, and a file can be created in it; leaves the file system as it was."""
    created = _missing_ancestors(folder)
    existing = folder.parents[len(created) - 1] if created else folder
    if not existing.is_dir():
        raise PreflightError(f"--out: {existing} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".metalearn-write-test-"):
            pass
    except OSError as error:
        verb = "create" if created and not folder.is_dir() else "write in"
        raise PreflightError(f"--out: cannot {verb} the folder {folder} ({error.strerror or error})") from None
    finally:
        for path in created:   # deepest first: leave no empty folders behind if the run never starts
            if path.is_dir():
                path.rmdir()


def check_data(load: Callable[[], object], flags: Dict[str, str], what: str = "the data") -> object:
    """Run ``load`` (reads or prepares the data, builds the sampler) and return what it returns.

    A ``ValueError`` naming a parameter (``n_way must be ...``) becomes a ``PreflightError`` naming its flag
    (``flags`` maps parameter names to flags); a missing or unreadable data file becomes one naming ``what``.
    """
    try:
        return load()
    except ValueError as error:
        message = str(error)
        named = [flag for name, flag in flags.items() if name in message]
        raise PreflightError(f"{', '.join(named) or what}: {message}") from None
    except OSError as error:
        raise PreflightError(f"{what}: {error}") from None


def _missing_ancestors(folder: Path) -> list:
    """The folders ``mkdir(parents=True)`` would create, deepest first."""
    missing = []
    for path in [folder, *folder.parents]:
        if path.exists():
            break
        missing.append(path)
    return missing


def _reason(error: Exception, out: Path) -> str:
    """The loader's message without the leading path (the refusal already names --out)."""
    if isinstance(error, FileNotFoundError):   # exists() but not is_file(): a dangling link, a device, a pipe
        return "is not a regular file"
    text = str(error)
    return text[len(str(out)):].lstrip() if text.startswith(str(out)) else text

