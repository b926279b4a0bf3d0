"""Find, verify and (when needed) download the Omniglot zip files; read zip members safely.

A file is only ever used after its md5 matches the published one. Downloads stream into a temporary file in the
target folder and are moved into place with ``os.replace`` only once the hash is right, so an interrupted or
wrong download (a quota page, a dead link's HTML) is never mistaken for data.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Dict, Iterable, List, Optional
from urllib.error import URLError
from urllib.request import urlopen

from .settings import DATA_DIR_ENV, PathLike, get_data_dir

_BASE_URL = "https://github.com/brendenlake/omniglot/raw/master/python"
_DOWNLOAD_TIMEOUT_S = 60
_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class RemoteFile:
    """A published file: its name in the data directory, md5 hash and download address."""

    name: str
    md5: str
    url: str


# Addresses and hashes: Lake's repository, see shared/data/omniglot/PROVENANCE.md (full sets: as torchvision uses).
OMNIGLOT_FILES: Dict[str, RemoteFile] = {
    remote.name: remote for remote in (
        RemoteFile("images_background_small1.zip", "e704a628b5459e08445c13499850abc4",
                   f"{_BASE_URL}/images_background_small1.zip"),
        RemoteFile("images_background_small2.zip", "b75a71a51d3b13f821f212756fe481fd",
                   f"{_BASE_URL}/images_background_small2.zip"),
        RemoteFile("all_runs.zip", "e8996daecdf12afeeb4a53a179f06b19",
                   f"{_BASE_URL}/one-shot-classification/all_runs.zip"),
        RemoteFile("images_background.zip", "68d2efa1b9178cc56df9314c21c6e718",
                   f"{_BASE_URL}/images_background.zip"),
        RemoteFile("images_evaluation.zip", "6b91aef0f799c5bb55b94e3f2daec811",
                   f"{_BASE_URL}/images_evaluation.zip"),
    )
}

# What the lessons and tests need (about 3 MB); the full background/evaluation sets are optional.
MINIMAL_FILES = ("images_background_small1.zip", "images_background_small2.zip", "all_runs.zip")


class MissingDataError(FileNotFoundError):
    """Data files are missing and could not be downloaded; the message says where to get them and where to put them."""


class ChecksumError(ValueError):
    """A file's md5 does not match the published hash; the file is not used."""


class UnsafeZipError(ValueError):
    """A zip entry's path would escape the folder it belongs to."""


def md5_of(path: PathLike) -> str:
    """Return the hex md5 of the file at ``path``."""
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def ensure_files(names: Iterable[str] = MINIMAL_FILES, data_dir: Optional[PathLike] = None,
                 download: bool = True) -> Dict[str, Path]:
    """Return verified local paths for ``names``, downloading what is missing or corrupted.

    Parameters: ``names`` are keys of ``OMNIGLOT_FILES``; ``download=False`` never touches the network.
    Raises ``MissingDataError`` naming every file that could not be had (address and folder included), and
    ``ChecksumError`` when a file with the wrong hash is in the folder and cannot be replaced.
    """
    folder = get_data_dir(data_dir)
    remotes = [_remote(name) for name in names]
    found, failures = {}, []
    for remote in remotes:
        try:
            found[remote.name] = _ensure_one(remote, folder, download)
        except _FetchFailed as failure:
            failures.append((remote, str(failure)))
    if failures:
        raise MissingDataError(_missing_message(failures, folder))
    return found


def ensure_file(name: str, data_dir: Optional[PathLike] = None, download: bool = True) -> Path:
    """Return the verified local path of one file (see ``ensure_files``)."""
    return ensure_files([name], data_dir, download)[name]


def fetch(remote: RemoteFile, folder: Path) -> Path:
    """Download ``remote`` into ``folder``, verify its md5, and move it into place atomically; return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{remote.name}.", suffix=".part", dir=folder)
    try:
        digest = hashlib.md5()
        with os.fdopen(handle, "wb") as out, urlopen(remote.url, timeout=_DOWNLOAD_TIMEOUT_S) as response:
            for chunk in iter(lambda: response.read(_CHUNK_BYTES), b""):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != remote.md5:
            raise ChecksumError(
                f"the download of {remote.name} from {remote.url} has md5 {digest.hexdigest()}, expected "
                f"{remote.md5} (an error page or a changed file?); it was discarded")
        target = folder / remote.name
        os.replace(temp_name, target)
        return target
    finally:
        if os.path.exists(temp_name):
            os.remove(temp_name)


class _FetchFailed(Exception):
    """Internal: one file could not be obtained (collected so that the final error lists all of them)."""


def _remote(name: str) -> RemoteFile:
    if name not in OMNIGLOT_FILES:
        raise ValueError(f"unknown Omniglot file {name!r}; known files: {', '.join(OMNIGLOT_FILES)}")
    return OMNIGLOT_FILES[name]


def _ensure_one(remote: RemoteFile, folder: Path, download: bool) -> Path:
    local = folder / remote.name
    if local.exists():
        actual = md5_of(local)
        if actual == remote.md5:
            return local
        problem = (f"{local} has md5 {actual}, expected {remote.md5} (corrupted or partial); it is not used")
        if not download:
            raise ChecksumError(f"{problem}. {_fix_hint(remote, folder)}")
        warnings.warn(f"{problem}; downloading it again from {remote.url}", stacklevel=3)
        try:
            return fetch(remote, folder)
        except (URLError, OSError, ChecksumError) as error:
            raise ChecksumError(f"{problem}, and downloading it again failed ({error}). "
                                f"{_fix_hint(remote, folder)}") from error
    if not download:
        raise _FetchFailed("not in the folder and downloads are switched off (download=False)")
    try:
        return fetch(remote, folder)
    except (URLError, OSError, ChecksumError) as error:
        # Kept as text in the collected message; the user's fix is the same for every cause.
        raise _FetchFailed(f"download failed: {error}") from error


def _fix_hint(remote: RemoteFile, folder: Path) -> str:
    return (f"Delete it, then download {remote.url} and save it as {folder / remote.name} "
            f"(or run `python -m metalearn_lite.data download --data-dir {folder}`).")


def _missing_message(failures, folder: Path) -> str:
    lines = [f"Omniglot data missing from the data directory {folder}:"]
    for remote, reason in failures:
        lines.append(f"  - {remote.name}: {reason}\n      download {remote.url}\n"
                     f"      and save it as {folder / remote.name} (md5 {remote.md5})")
    lines.append(f"Put the files in {folder}, or point the environment variable {DATA_DIR_ENV} (or "
                 f"metalearn_lite.data.set_data_dir / data_dir=) at a folder that has them. With a network, "
                 f"`python -m metalearn_lite.data download --data-dir {folder}` fetches them all.")
    return "\n".join(lines)


def safe_member_names(archive: zipfile.ZipFile) -> List[str]:
    """Return the archive's entry names, refusing (``UnsafeZipError``) any absolute path or ``..`` component."""
    names = archive.namelist()
    for name in names:
        path = PurePosixPath(name.replace("\\", "/"))
        if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
            raise UnsafeZipError(f"refusing zip entry {name!r} in {archive.filename}: its path leaves the target folder")
    return names


def safe_extract(zip_path: PathLike, target: PathLike) -> Path:
    """Extract ``zip_path`` into ``target`` after checking that no entry escapes it; return ``target``."""
    target = Path(target).resolve()
    with zipfile.ZipFile(zip_path) as archive:
        for name in safe_member_names(archive):
            destination = (target / name).resolve()
            # Second line of defence (e.g. symlinked folders): the resolved path must stay below target.
            if destination != target and target not in destination.parents:
                raise UnsafeZipError(f"refusing zip entry {name!r} in {zip_path}: it resolves to {destination}")
        archive.extractall(target)
    return target
