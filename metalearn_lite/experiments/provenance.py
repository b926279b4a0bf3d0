"""Where a checkpoint came from: the commit of the code that trained it."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Optional


def git_commit() -> Optional[str]:
    """The commit of the code that is running, with '+dirty' when tracked package files were modified."""
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "metalearn_lite"], cwd=root,
                               capture_output=True, timeout=10).returncode != 0
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")
