"""Where the raw Omniglot zips live (the data directory) and where prepared arrays are cached.

Resolution order, for both folders: an explicit argument, then the module setting (``set_data_dir`` /
``set_cache_dir``), then the environment variable (``METALEARN_DATA`` / ``METALEARN_CACHE``), then a per-user
cache folder (``$XDG_CACHE_HOME/metalearn_lite/...`` or ``~/.cache/metalearn_lite/...``). The two are separate
because the data directory may be read-only (a shared course folder, CI), while the prepared cache must be written.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

DATA_DIR_ENV = "METALEARN_DATA"
CACHE_DIR_ENV = "METALEARN_CACHE"

PathLike = Union[str, "os.PathLike[str]"]

_settings: dict = {"data_dir": None, "cache_dir": None}


def set_data_dir(path: Optional[PathLike]) -> None:
    """Use ``path`` as the data directory from now on (``None`` goes back to the environment variable/default)."""
    _settings["data_dir"] = None if path is None else Path(path).expanduser()


def set_cache_dir(path: Optional[PathLike]) -> None:
    """Use ``path`` for prepared arrays from now on (``None`` goes back to the environment variable/default)."""
    _settings["cache_dir"] = None if path is None else Path(path).expanduser()


def get_data_dir(data_dir: Optional[PathLike] = None) -> Path:
    """Return the folder holding (or receiving) the Omniglot zip files."""
    return _resolve(data_dir, "data_dir", DATA_DIR_ENV, "omniglot")


def get_cache_dir(cache_dir: Optional[PathLike] = None) -> Path:
    """Return the writable folder for the prepared 28x28 arrays."""
    return _resolve(cache_dir, "cache_dir", CACHE_DIR_ENV, "prepared")


def _resolve(explicit, setting: str, env_var: str, default_leaf: str) -> Path:
    if explicit is not None:
        return Path(explicit).expanduser()
    if _settings[setting] is not None:
        return _settings[setting]
    from_env = os.environ.get(env_var)
    if from_env:
        return Path(from_env).expanduser()
    return _user_cache_root() / default_leaf


def _user_cache_root() -> Path:
    # XDG on Linux (and honoured elsewhere when set); ~/.cache otherwise, which is fine on macOS and Windows too.
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "metalearn_lite"
