"""Find, verify and (when needed) download the Omniglot zip files; read zip members safely.

A file is only ever used after its md5 matches the published one. Downloads stream into a temporary file in the
target folder and are moved into place with ``os.replace`` only once the hash is right, so an interrupted or
wrong download (a quota page, a dead link's HTML) is never mistaken for data. Every download is bounded
(``DownloadLimits``: a total deadline, a minimum rate, a stall timeout), so a slow or dead network ends in the
actionable ``MissingDataError`` instead of a hang.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
import time
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Dict, Iterable, List, Optional
from urllib.error import URLError
from urllib.request import urlopen

from tqdm.auto import tqdm

from .settings import DATA_DIR_ENV, PathLike, get_data_dir

_BASE_URL = "https://github.com/brendenlake/omniglot/raw/master/python"
_CHUNK_BYTES = 1 << 20
_READ_BYTES = 64 << 10
# Data files are shared like any dataset (a teacher's folder serves a class); mkstemp alone would leave 0600.
SHARED_FILE_MODE = 0o644
# Far above the largest Omniglot zip once extracted (images_background: about 20 MB), far below a zip bomb.
MAX_EXTRACT_BYTES = 512 << 20


@dataclass(frozen=True)
class DownloadLimits:
    """Bounds on one file's download; any breach ends it with an error naming the limit.

    deadline_s: total seconds for the file, connection included.
    min_rate: bytes per second, averaged since the start and enforced once ``grace_s`` has passed.
    stall_s: seconds without a single byte (connect or read) before giving up.
    """

    deadline_s: float = 300.0
    min_rate: float = 20_000.0
    grace_s: float = 15.0
    stall_s: float = 20.0

    def __post_init__(self):
        for name in ("deadline_s", "min_rate", "grace_s", "stall_s"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and value > 0):
                raise ValueError(f"DownloadLimits.{name} must be a positive number, got {value!r}")


# The limits every download uses unless told otherwise (tests and slow sites may set their own).
DOWNLOAD_LIMITS = DownloadLimits()


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
    """A zip that is not extracted: an entry escapes the target folder, is a symlink, or the total is too large."""


class DownloadTooSlow(OSError):
    """A download broke one of its ``DownloadLimits`` (deadline, minimum rate, stall); nothing was kept."""


def md5_of(path: PathLike) -> str:
    """Return the hex md5 of the file at ``path``."""
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def ensure_files(names: Iterable[str] = MINIMAL_FILES, data_dir: Optional[PathLike] = None,
                 download: bool = True, limits: Optional[DownloadLimits] = None,
                 progress: Optional[bool] = None) -> Dict[str, Path]:
    """Return verified local paths for ``names``, downloading what is missing or corrupted.

    Parameters: ``names`` are keys of ``OMNIGLOT_FILES``; ``download=False`` never touches the network;
    ``limits`` bound each download (default ``DOWNLOAD_LIMITS``); ``progress``: a progress bar per download
    (``None``: only on a terminal or in a notebook).
    Raises ``MissingDataError`` naming every file that could not be had (address and folder included), and
    ``ChecksumError`` when a file with the wrong hash is in the folder and cannot be replaced. Once one download
    is too slow, the remaining ones are not tried (the class would wait for each in turn).
    """
    folder = get_data_dir(data_dir)
    remotes = [_remote(name) for name in names]
    found, failures, too_slow = {}, [], None
    for remote in remotes:
        fetcher = _Fetcher(limits or DOWNLOAD_LIMITS, progress, too_slow)
        try:
            found[remote.name] = _ensure_one(remote, folder, download, fetcher)
        except _FetchFailed as failure:
            failures.append((remote, str(failure)))
            if too_slow is None and isinstance(failure.__cause__, DownloadTooSlow):
                too_slow = remote.name
    if failures:
        raise MissingDataError(_missing_message(failures, folder))
    return found


def ensure_file(name: str, data_dir: Optional[PathLike] = None, download: bool = True,
                limits: Optional[DownloadLimits] = None, progress: Optional[bool] = None) -> Path:
    """Return the verified local path of one file (see ``ensure_files``)."""
    return ensure_files([name], data_dir, download, limits, progress)[name]


def fetch(remote: RemoteFile, folder: Path, limits: Optional[DownloadLimits] = None,
          progress: Optional[bool] = None) -> Path:
    """Download ``remote`` into ``folder``, verify its md5, and move it into place atomically; return its path.

    Raises ``DownloadTooSlow`` when a limit of ``limits`` (default ``DOWNLOAD_LIMITS``) is broken, ``ChecksumError``
    on a wrong hash, ``URLError``/``OSError`` on network or disk errors; no partial file is left in any case.
    """
    limits = limits or DOWNLOAD_LIMITS
    folder.mkdir(parents=True, exist_ok=True)
    _remove_stale_parts(remote, folder, limits)
    handle, temp_name = tempfile.mkstemp(prefix=f".{remote.name}.", suffix=".part", dir=folder)
    try:
        with os.fdopen(handle, "wb") as out:
            md5 = _stream(remote, out, limits, progress)
        if md5 != remote.md5:
            raise ChecksumError(
                f"the download of {remote.name} from {remote.url} has md5 {md5}, expected "
                f"{remote.md5} (an error page or a changed file?); it was discarded")
        os.chmod(temp_name, SHARED_FILE_MODE)
        target = folder / remote.name
        os.replace(temp_name, target)
        return target
    finally:
        if os.path.exists(temp_name):
            os.remove(temp_name)


def _stream(remote: RemoteFile, out, limits: DownloadLimits, progress: Optional[bool]) -> str:
    """Copy the response for ``remote.url`` into ``out`` within ``limits``; return the md5 of what was read."""
    started = time.monotonic()
    digest, received = hashlib.md5(), 0
    try:
        # The socket timeout bounds connecting and each read: a stall costs stall_s, not the deadline.
        with urlopen(remote.url, timeout=min(limits.stall_s, limits.deadline_s)) as response, \
                tqdm(total=getattr(response, "length", None), unit="B", unit_scale=True, desc=remote.name,
                     disable=_progress_disabled(progress), leave=False) as bar:
            # read1 returns what has arrived (one socket read), so a trickle still reaches the checks below.
            read = getattr(response, "read1", response.read)
            for chunk in iter(lambda: read(_READ_BYTES), b""):
                digest.update(chunk)
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
                _check_pace(remote, limits, received, time.monotonic() - started)
    except (TimeoutError, URLError) as error:
        if isinstance(error, URLError) and not isinstance(error.reason, TimeoutError):
            raise
        raise DownloadTooSlow(f"no data from {remote.url} for {limits.stall_s:g} s after {received} bytes "
                              f"(stalled network or server)") from error
    return digest.hexdigest()


def _check_pace(remote: RemoteFile, limits: DownloadLimits, received: int, elapsed: float) -> None:
    if elapsed > limits.deadline_s:
        raise DownloadTooSlow(f"the deadline of {limits.deadline_s:g} s for {remote.url} passed after "
                              f"{received} bytes (network too slow)")
    if elapsed > limits.grace_s and received / elapsed < limits.min_rate:
        raise DownloadTooSlow(f"{remote.url} came at {received / elapsed:.0f} bytes/s over {elapsed:.1f} s, "
                              f"below the minimum of {limits.min_rate:.0f} bytes/s (network too slow)")


def _progress_disabled(progress: Optional[bool]) -> Optional[bool]:
    # tqdm's disable=None means: shown on a terminal or in a notebook, silent when output goes to a file or pipe.
    return None if progress is None else not progress


def _remove_stale_parts(remote: RemoteFile, folder: Path, limits: DownloadLimits) -> None:
    """Delete temporary files of ``remote`` left by a killed download (older than any live one can be)."""
    oldest_live = time.time() - limits.deadline_s - limits.stall_s
    for part in folder.glob(f".{remote.name}.*.part"):
        try:
            if part.stat().st_mtime < oldest_live:
                part.unlink()
        except OSError:
            pass  # gone meanwhile, or another user's: neither stops this download


class _FetchFailed(Exception):
    """Internal: one file could not be obtained (collected so that the final error lists all of them)."""


@dataclass(frozen=True)
class _Fetcher:
    """Internal: how ``ensure_files`` downloads one file, and whether an earlier download was too slow."""

    limits: DownloadLimits
    progress: Optional[bool]
    skip_after: Optional[str] = None

    def __call__(self, remote: RemoteFile, folder: Path) -> Path:
        if self.skip_after is not None:
            raise DownloadTooSlow(f"not tried, since the download of {self.skip_after} just before was too slow")
        return fetch(remote, folder, self.limits, self.progress)


def _remote(name: str) -> RemoteFile:
    if name not in OMNIGLOT_FILES:
        raise ValueError(f"unknown Omniglot file {name!r}; known files: {', '.join(OMNIGLOT_FILES)}")
    return OMNIGLOT_FILES[name]


def _ensure_one(remote: RemoteFile, folder: Path, download: bool, fetcher: _Fetcher) -> Path:
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
            return fetcher(remote, folder)
        except (URLError, OSError, ChecksumError) as error:
            raise ChecksumError(f"{problem}, and downloading it again failed ({error}). "
                                f"{_fix_hint(remote, folder)}") from error
    if not download:
        raise _FetchFailed("not in the folder and downloads are switched off (download=False)")
    try:
        return fetcher(remote, folder)
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


def safe_extract(zip_path: PathLike, target: PathLike, max_bytes: int = MAX_EXTRACT_BYTES) -> Path:
    """Extract ``zip_path`` into ``target`` once every entry has been checked; return ``target``.

    Refused with ``UnsafeZipError``, before anything is written: an entry whose path leaves ``target``, a symlink
    entry, or a declared total uncompressed size above ``max_bytes`` (a zip bomb).
    """
    if not (isinstance(max_bytes, int) and max_bytes > 0):
        raise ValueError(f"max_bytes must be a positive integer, got {max_bytes!r}")
    target = Path(target).resolve()
    with zipfile.ZipFile(zip_path) as archive:
        safe_member_names(archive)
        for info in archive.infolist():
            _check_entry(info, target, zip_path)
        declared = sum(info.file_size for info in archive.infolist())
        if declared > max_bytes:
            raise UnsafeZipError(f"refusing {zip_path}: its entries declare {declared} bytes uncompressed, more "
                                 f"than max_bytes={max_bytes}")
        archive.extractall(target)
    return target


def _check_entry(info: zipfile.ZipInfo, target: Path, zip_path: PathLike) -> None:
    if stat.S_ISLNK(info.external_attr >> 16):
        raise UnsafeZipError(f"refusing zip entry {info.filename!r} in {zip_path}: it is a symbolic link")
    destination = (target / info.filename).resolve()
    # Second line of defence (e.g. symlinked folders): the resolved path must stay below target.
    if destination != target and target not in destination.parents:
        raise UnsafeZipError(f"refusing zip entry {info.filename!r} in {zip_path}: it resolves to {destination}")
