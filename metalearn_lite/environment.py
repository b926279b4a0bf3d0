"""Is this machine ready for the lessons? One check per requirement, each with the fix when it fails.

Run ``python -m metalearn_lite.check`` before a workshop (after ``python -m metalearn_lite.data download``): it
prints a table of OK/PROBLEM lines and exits with status 1 when anything needs fixing. Nothing is downloaded or
written; the data check only reads and hashes the files in the data directory, the cache check reads the prepared
arrays back and compares their checksums. A check that fails in an unforeseen way is a PROBLEM, never a crash
and never an OK.
"""

from __future__ import annotations

import importlib
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Tuple

MIN_PYTHON = (3, 9)
MIN_TORCH = (2, 1)


@dataclass(frozen=True)
class Check:
    """The result of one check: a name, whether it passed, what was found, and how to fix it when it did not."""

    name: str
    ok: bool
    detail: str
    fix: str = ""


def check_python(version_info=sys.version_info) -> Check:
    """Python at least ``MIN_PYTHON`` (the lowest version the package supports)."""
    found = ".".join(str(part) for part in tuple(version_info)[:3])
    if tuple(version_info)[:2] >= MIN_PYTHON:
        return Check("Python", True, f"{found} ({platform.python_implementation()})")
    wanted = ".".join(map(str, MIN_PYTHON))
    return Check("Python", False, f"{found} is older than {wanted}",
                 f"install Python {wanted} or newer (e.g. from python.org or conda) and reinstall the package")


def check_torch() -> Check:
    """torch importable, at least ``MIN_TORCH``, with ``torch.func`` (functional_call, grad, vmap)."""
    wanted = ".".join(map(str, MIN_TORCH))
    fix = (f'pip install "torch>={wanted}" --index-url https://download.pytorch.org/whl/cpu   '
           f"(a small CPU build; drop --index-url for a CUDA build)")
    module = _import("torch")
    if module is None:
        return Check("torch", False, "not installed", fix)
    version = module.__version__
    if _version_tuple(version) < MIN_TORCH:
        return Check("torch", False, f"{version} is older than {wanted} (no torch.func)", fix)
    func = _import("torch.func")
    missing = [name for name in ("functional_call", "grad", "vmap") if not hasattr(func, name)]
    if func is None or missing:
        return Check("torch", False, f"{version}: torch.func lacks {', '.join(missing) or 'everything'}", fix)
    return Check("torch", True, f"{version}, torch.func present")


def check_ipywidgets() -> Check:
    """ipywidgets importable (the sliders of every explorer)."""
    module = _import("ipywidgets")
    if module is None:
        return Check("ipywidgets", False, "not installed: the explorers' sliders cannot be shown",
                     'pip install "ipywidgets>=7.6"   (then restart the kernel)')
    return Check("ipywidgets", True, module.__version__)


def check_widgets_frontend() -> Check:
    """The browser side of ipywidgets: the JupyterLab extension (jupyterlab_widgets) or the classic one."""
    from .utils import in_colab
    if in_colab():
        return Check("widgets in the browser", True,
                     "Colab's own (ipywidgets 7 needs no widget manager; the setup cell turns it on for 8)")
    found = [f"{name} {_version_of(name)}" for name in ("jupyterlab_widgets", "widgetsnbextension")
             if _import(name) is not None]
    if found:
        return Check("widgets in the browser", True, ", ".join(found))
    return Check("widgets in the browser", False,
                 "neither jupyterlab_widgets nor widgetsnbextension: sliders would show as plain text",
                 'pip install "ipywidgets>=7.6" jupyterlab_widgets   (in the environment that runs jupyter lab; '
                 "then restart jupyter lab and reload the page)")


def check_device() -> Check:
    """Where the lessons compute: a CUDA GPU when there is one, else the CPU (informational; never a problem)."""
    torch = _import("torch")
    if torch is None:
        return Check("device", False, "unknown: torch is missing", "install torch (see the torch line)")
    if torch.cuda.is_available():
        return Check("device", True, f"cuda ({torch.cuda.get_device_name(0)})")
    return Check("device", True, "cpu (every lesson is sized for a laptop CPU)")


def check_data(data_dir=None) -> Check:
    """The Omniglot files the lessons need are in the data directory with the right md5 (read-only, no network)."""
    from .data import MINIMAL_FILES, ChecksumError, MissingDataError, ensure_file, get_data_dir
    folder = get_data_dir(data_dir)
    problems = []
    for name in MINIMAL_FILES:
        try:
            ensure_file(name, data_dir=folder, download=False)
        except MissingDataError:
            problems.append(f"{name} missing")
        except ChecksumError:
            problems.append(f"{name} has the wrong md5 (corrupted or partial)")
        except OSError as error:  # e.g. another user's file without read permission, or a folder of that name
            problems.append(f"{name} cannot be read ({type(error).__name__}: {error.strerror or error})")
    if not problems:
        return Check("Omniglot data", True, f"{len(MINIMAL_FILES)} files verified in {folder}")
    return Check("Omniglot data", False, f"in {folder}: " + "; ".join(problems),
                 f"python -m metalearn_lite.data download --data-dir {folder}   (needs a network once; or copy "
                 f"{', '.join(MINIMAL_FILES)} there, or point METALEARN_DATA at a folder that has them)")


def check_cache(data_dir=None, cache_dir=None) -> Check:
    """The prepared 28x28 cache: each file present is read back and its checksum compared (nothing is written).

    Not prepared yet is fine when the cache folder can be written (the first lesson builds it); a corrupt or
    unreadable file, or a missing one in a folder that cannot be written, is a problem.
    """
    from .data import get_cache_dir, get_data_dir
    from .data.omniglot import SOURCES, verify_cache
    folder, data_folder = get_cache_dir(cache_dir), get_data_dir(data_dir)
    fix = f"python -m metalearn_lite.data prepare --data-dir {data_folder} --cache-dir {folder}"
    try:
        statuses = [verify_cache(name, data_folder, folder) for name in SOURCES["minimal"].values()]
    except (OSError, ValueError) as error:  # the zips themselves are missing or bad: the cache cannot be named
        return Check("Omniglot cache", False, f"not verified: the data files are not usable ({type(error).__name__})",
                     "fix the Omniglot data first (see its line), then " + fix)
    bad = [status for status in statuses if status.state in ("corrupt", "unreadable")]
    if bad:
        return Check("Omniglot cache", False, "; ".join(f"{s.path} is {s.state} ({s.detail})" for s in bad),
                     f"{fix}   (rebuilds it; or delete the file)")
    missing = [status.path.name for status in statuses if not status.ok]
    if not missing:
        return Check("Omniglot cache", True, f"{len(statuses)} files verified (checksums) in {folder}")
    writable, reason = _writable_folder(folder)
    if not writable:
        return Check("Omniglot cache", False, f"{', '.join(missing)} not prepared, and {folder} {reason}",
                     f"set METALEARN_CACHE (or --cache-dir) to a writable folder, then {fix}")
    return Check("Omniglot cache", True, f"not prepared yet in {folder} (writable): the first lesson builds it, "
                                         f"or `{fix}` does it now")


def _writable_folder(folder: Path) -> Tuple[bool, str]:
    """Whether ``folder`` exists or can be created and can be written, judged without writing anything."""
    existing = Path(folder)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return False, f"cannot be created ({existing} is not a folder)"
    if not os.access(existing, os.W_OK | os.X_OK):
        return False, f"cannot be written ({existing} is read-only for this user)"
    return True, ""


def check_matplotlib() -> Check:
    """matplotlib importable with a usable backend; the notebooks draw with the inline backend."""
    fix_backend = "unset MPLBACKEND (or set MPLBACKEND=Agg outside notebooks); the notebooks need no setting"
    try:
        module = _import("matplotlib")
    except Exception as error:  # e.g. MPLBACKEND=bogus makes the import itself raise ValueError
        return Check("matplotlib", False, f"does not import ({type(error).__name__}: {error})", fix_backend)
    if module is None:
        return Check("matplotlib", False, "not installed", 'pip install "matplotlib>=3.7"')
    try:
        importlib.import_module("matplotlib.pyplot")
        backend = module.get_backend()
    except Exception as error:  # e.g. MPLBACKEND names a backend that is not installed
        return Check("matplotlib", False, f"{module.__version__}: pyplot does not load ({error})", fix_backend)
    if _import("matplotlib_inline") is None:
        return Check("matplotlib", False, f"{module.__version__}, backend {backend}, no matplotlib-inline",
                     "pip install ipykernel   (it brings matplotlib-inline, which draws the notebooks' figures)")
    return Check("matplotlib", True, f"{module.__version__}, backend {backend}, inline backend for notebooks present")


def run_checks(data_dir=None, cache_dir=None) -> List[Check]:
    """Run every check, in the order a fix is best applied; return the results (a failing check is a PROBLEM)."""
    checks: List[Tuple[str, Callable[[], Check]]] = [
        ("Python", check_python), ("torch", check_torch), ("ipywidgets", check_ipywidgets),
        ("widgets in the browser", check_widgets_frontend), ("device", check_device),
        ("Omniglot data", lambda: check_data(data_dir)), ("Omniglot cache", lambda: check_cache(data_dir, cache_dir)),
        ("matplotlib", check_matplotlib)]
    return [_guarded(name, check) for name, check in checks]


def _guarded(name: str, check: Callable[[], Check]) -> Check:
    # One broken check (an odd environment variable, an unreadable file) must not hide the report of the others.
    try:
        return check()
    except Exception as error:
        return Check(name, False, f"not verified: the check itself failed ({type(error).__name__}: {error})",
                     "fix what the error above names (a setting, a file, a package), then run the check again")


def format_report(results: List[Check]) -> str:
    """A table (check, OK/PROBLEM, what was found), then one fix per problem."""
    width = max(len(result.name) for result in results)
    lines = [f"{result.name:<{width}}  {'OK' if result.ok else 'PROBLEM':<7}  {result.detail}" for result in results]
    problems = [result for result in results if not result.ok]
    if problems:
        lines += ["", f"{len(problems)} problem(s). How to fix:"]
        lines += [f"  - {result.name}: {result.fix}" for result in problems]
    else:
        lines += ["", "All checks passed: ready for the lessons."]
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    """Command line: print the report; return 0 when everything is OK, else 1."""
    import argparse
    parser = argparse.ArgumentParser(prog="python -m metalearn_lite.check", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="the Omniglot folder to check (default: $METALEARN_DATA)")
    parser.add_argument("--cache-dir", default=None,
                        help="the prepared-cache folder to check (default: $METALEARN_CACHE)")
    args = parser.parse_args(argv)
    results = run_checks(args.data_dir, args.cache_dir)
    print(format_report(results))
    return 0 if all(result.ok for result in results) else 1


def _import(name: str):
    """The module, or None when it cannot be imported (missing, or blocked as ``sys.modules[name] = None``)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _version_of(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(name)
    except PackageNotFoundError:
        return "(version unknown)"


def _version_tuple(version: str) -> tuple:
    parts = []
    for part in version.split("+")[0].split(".")[:2]:
        digits = "".join(ch for ch in part if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)
