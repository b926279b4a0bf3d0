"""Omniglot as in-memory arrays: one-time preparation into a cache, alphabet-disjoint splits, rotated classes.

Splits (``source="minimal"``, the default; about 3 MB, works offline with the course folder):
  - ``"train"``: the alphabets of images_background_small1 (Balinese, Early_Aramaic, Greek, Korean, Latin),
    minus any ``validation_alphabets``;
  - ``"val"``: the ``validation_alphabets`` carved from those training alphabets;
  - ``"test"``: the alphabets of images_background_small2 that are not in small1 (Japanese_(katakana), Sanskrit,
    Tagalog), so test characters come from alphabets never seen in training.
``source="full"`` uses the papers' split instead: images_background (30 alphabets) / images_evaluation (20).
Rotations by 90, 180 and 270 degrees make new classes (on by default for training, as in Santoro et al. 2016 and
Finn et al. 2017).

The prepared cache serves a class: its files are readable by everyone who can read the folder (0644), each holds
a checksum of its arrays so that a truncated or damaged file is named and rebuilt, and a folder that cannot be
written gives a one-line warning and an in-memory cache for this process instead of an error.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ..validation import require_choice, require_int
from .download import SHARED_FILE_MODE, ensure_file, md5_of, safe_member_names
from .images import IMAGE_SIZE, RESIZE_FILTER_NAME, open_png, to_small_image
from .settings import CACHE_DIR_ENV, PathLike, get_cache_dir

# Bump when the preparation or the cache format changes, so that an old cache is never used.
# (2: each cache file holds a sha256 of its arrays.)
PREPROCESS_VERSION = 2

SOURCES = {
    "minimal": {"train": "images_background_small1.zip", "test": "images_background_small2.zip"},
    "full": {"train": "images_background.zip", "test": "images_evaluation.zip"},
}
SPLITS = ("train", "val", "test")
ROTATIONS_DEGREES = (0, 90, 180, 270)


@dataclass(frozen=True)
class PreparedZip:
    """All characters of one Omniglot zip as 28x28 uint8 images (strokes 255), one row per character."""

    images: np.ndarray            # (n_characters, n_drawers, 28, 28) uint8
    alphabets: Tuple[str, ...]    # alphabet of each character
    characters: Tuple[str, ...]   # "Alphabet/characterNN" of each character


@dataclass(frozen=True)
class CacheStatus:
    """What is known about one prepared cache file: ``state`` is "ok", "missing", "corrupt" or "unreadable"."""

    path: Path
    state: str
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.state == "ok"


class CorruptCacheError(ValueError):
    """A prepared cache file cannot be read back or its checksum does not match; it is rebuilt, never used."""


# Prepared arrays of this process whose cache folder could not be written, by the path they would have had.
_MEMORY_CACHE: Dict[Path, PreparedZip] = {}


@dataclass(frozen=True)
class CharacterSet:
    """The classes of one split: ``images[c, d]`` is drawer ``d``'s drawing of class ``c`` (uint8, strokes 255)."""

    images: torch.Tensor          # (n_classes, n_per_class, 28, 28) uint8
    alphabets: Tuple[str, ...]    # per class
    characters: Tuple[str, ...]   # per class, "Alphabet/characterNN"
    rotations: Tuple[int, ...]    # per class, degrees counter-clockwise

    @property
    def n_classes(self) -> int:
        return self.images.shape[0]

    @property
    def n_per_class(self) -> int:
        return self.images.shape[1]

    @property
    def alphabet_names(self) -> Tuple[str, ...]:
        """The distinct alphabets, sorted."""
        return tuple(sorted(set(self.alphabets)))

    def __repr__(self) -> str:
        return (f"CharacterSet({len(self.alphabet_names)} alphabets, {len(set(self.characters))} characters, "
                f"{self.n_classes} classes x {self.n_per_class} images)")


def load_omniglot(split: str = "train", *, source: str = "minimal", rotations: Optional[bool] = None,
                  validation_alphabets: Union[int, Sequence[str]] = 0, data_dir: Optional[PathLike] = None,
                  cache_dir: Optional[PathLike] = None, download: bool = True) -> CharacterSet:
    """Return one alphabet-disjoint split of Omniglot as an in-memory ``CharacterSet``.

    Parameters
    ----------
    split: ``"train"``, ``"val"`` or ``"test"``.
    source: ``"minimal"`` (small1/small2, default) or ``"full"`` (background/evaluation of the papers).
    rotations: add 90/180/270-degree rotations as new classes; default True for train, False otherwise.
    validation_alphabets: alphabet names, or a count of alphabets (the last ones in sorted order), held out of
        the training alphabets to form ``"val"``.
    data_dir, cache_dir, download: see ``metalearn_lite.data.settings`` and ``ensure_files``.
    """
    require_choice("split", split, SPLITS)
    require_choice("source", source, tuple(SOURCES))
    rotations = (split == "train") if rotations is None else bool(rotations)
    zip_name = SOURCES[source]["test" if split == "test" else "train"]
    prepared = prepare_zip(zip_name, data_dir=data_dir, cache_dir=cache_dir, download=download)
    keep = _alphabets_of_split(split, source, prepared, validation_alphabets, data_dir, cache_dir, download)
    rows = [i for i, alphabet in enumerate(prepared.alphabets) if alphabet in keep]
    return _character_set(prepared, rows, rotations)


def prepare_zip(zip_name: str, data_dir: Optional[PathLike] = None, cache_dir: Optional[PathLike] = None,
                download: bool = True) -> PreparedZip:
    """Return the prepared arrays of one zip, from the cache when it is there, else by reading the PNGs once.

    The cache file name holds the zip's md5, the preparation version and the resize filter, so a cache made from
    another file or by another version of this code is never used. A corrupt or unreadable cache file is named in
    a warning and rebuilt; an unwritable cache folder gives a warning and an in-memory cache for this process.
    """
    zip_path = ensure_file(zip_name, data_dir=data_dir, download=download)
    cache_path = _cache_path(zip_name, md5_of(zip_path), cache_dir)
    if cache_path in _MEMORY_CACHE:
        return _MEMORY_CACHE[cache_path]
    status, prepared = _try_read_cache(cache_path)
    if prepared is not None:
        return prepared
    if status.state != "missing":
        warnings.warn(f"prepared cache {cache_path} is {status.state} ({status.detail}); rebuilding it from "
                      f"{zip_path}", stacklevel=2)
    prepared = _prepare_from_zip(zip_path)
    _store(cache_path, prepared)
    return prepared


def cache_file(zip_name: str, data_dir: Optional[PathLike] = None, cache_dir: Optional[PathLike] = None) -> Path:
    """Return the path the prepared cache of ``zip_name`` has (the zip must be in the data folder; no network)."""
    zip_path = ensure_file(zip_name, data_dir=data_dir, download=False)
    return _cache_path(zip_name, md5_of(zip_path), cache_dir)


def verify_cache(zip_name: str, data_dir: Optional[PathLike] = None,
                 cache_dir: Optional[PathLike] = None) -> CacheStatus:
    """Read the prepared cache of ``zip_name`` back and check its checksum; nothing is written or downloaded."""
    return _try_read_cache(cache_file(zip_name, data_dir, cache_dir))[0]


def _cache_path(zip_name: str, md5: str, cache_dir: Optional[PathLike]) -> Path:
    stem = zip_name[: -len(".zip")]
    return get_cache_dir(cache_dir) / (f"{stem}-{md5}-v{PREPROCESS_VERSION}-{RESIZE_FILTER_NAME}"
                                       f"{IMAGE_SIZE}.npz")


def _prepare_from_zip(zip_path: Path) -> PreparedZip:
    drawings: Dict[Tuple[str, str], list] = {}
    with zipfile.ZipFile(zip_path) as archive:
        for name in sorted(safe_member_names(archive)):
            if not name.endswith(".png"):
                continue
            # <root>/<alphabet>/<characterNN>/<drawing>.png
            _, alphabet, character, _ = PurePosixPath(name).parts
            drawings.setdefault((alphabet, character), []).append(to_small_image(open_png(archive.read(name))))
    counts = {len(images) for images in drawings.values()}
    if len(counts) != 1:
        raise ValueError(f"{zip_path}: characters have different numbers of drawings {sorted(counts)}")
    keys = sorted(drawings)
    images = np.stack([np.stack(drawings[key]) for key in keys])
    return PreparedZip(images, tuple(a for a, _ in keys), tuple(f"{a}/{c}" for a, c in keys))


def _checksum(prepared: PreparedZip) -> str:
    digest = hashlib.sha256(f"{prepared.images.dtype}{prepared.images.shape}".encode())
    digest.update(np.ascontiguousarray(prepared.images).tobytes())
    digest.update("\n".join(prepared.alphabets + ("",) + prepared.characters).encode())
    return digest.hexdigest()


def _store(cache_path: Path, prepared: PreparedZip) -> None:
    """Write the cache file; when the folder cannot be written, keep the arrays in memory and say so once."""
    try:
        _write_cache_atomically(cache_path, prepared)
    except OSError as error:
        _MEMORY_CACHE[cache_path] = prepared
        warnings.warn(f"cannot write the prepared cache in {cache_path.parent} ({type(error).__name__}: "
                      f"{error.strerror or error}); keeping it in memory for this session (set {CACHE_DIR_ENV} "
                      f"to a writable folder to keep it)", stacklevel=3)


def _write_cache_atomically(cache_path: Path, prepared: PreparedZip) -> None:
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{cache_path.name}.", suffix=".part", dir=cache_path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            np.savez(out, images=prepared.images, alphabets=np.array(prepared.alphabets),
                     characters=np.array(prepared.characters), checksum=np.array(_checksum(prepared)))
        os.chmod(temp_name, SHARED_FILE_MODE)  # one person prepares, the whole class reads
        os.replace(temp_name, cache_path)
    finally:
        if os.path.exists(temp_name):
            os.remove(temp_name)


def _try_read_cache(cache_path: Path) -> Tuple[CacheStatus, Optional[PreparedZip]]:
    """The cache file's status, and its arrays when it is sound."""
    try:
        cache_path.stat()
        prepared = _read_cache(cache_path)
    except (FileNotFoundError, NotADirectoryError):
        return CacheStatus(cache_path, "missing", "not prepared yet"), None
    except PermissionError as error:
        return CacheStatus(cache_path, "unreadable", f"{type(error).__name__}: {error.strerror}"), None
    except CorruptCacheError as error:
        return CacheStatus(cache_path, "corrupt", str(error)), None
    return CacheStatus(cache_path, "ok", f"{prepared.images.shape[0]} characters, checksum verified"), prepared


def _read_cache(cache_path: Path) -> PreparedZip:
    try:
        with np.load(cache_path, allow_pickle=False) as cached:
            prepared = PreparedZip(cached["images"], tuple(cached["alphabets"].tolist()),
                                   tuple(cached["characters"].tolist()))
            stored = str(cached["checksum"])
    except PermissionError:
        raise
    # What numpy and zipfile raise on a truncated, empty or damaged file (or one missing an array).
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as error:
        raise CorruptCacheError(f"cannot be read back: {type(error).__name__}: {error}") from error
    if stored != _checksum(prepared):
        raise CorruptCacheError("its checksum does not match its contents")
    return prepared


def _alphabets_of_split(split, source, prepared, validation_alphabets, data_dir, cache_dir, download):
    own = sorted(set(prepared.alphabets))
    if split == "test":
        if source == "minimal":
            # small2 shares Greek and Latin with small1: drop them so the test alphabets are never trained on.
            train_zip = prepare_zip(SOURCES["minimal"]["train"], data_dir, cache_dir, download)
            return set(own) - set(train_zip.alphabets)
        return set(own)
    held_out = _validation_names(validation_alphabets, own)
    if split == "val":
        if not held_out:
            raise ValueError("split='val' needs validation_alphabets (a count >= 1 or alphabet names) "
                             f"carved from the training alphabets: {', '.join(own)}")
        return held_out
    return set(own) - held_out


def _validation_names(validation_alphabets, training_alphabets) -> set:
    if isinstance(validation_alphabets, str):
        validation_alphabets = [validation_alphabets]
    if isinstance(validation_alphabets, (int, np.integer)) and not isinstance(validation_alphabets, bool):
        count = require_int("validation_alphabets", validation_alphabets, 0, len(training_alphabets) - 1)
        return set(training_alphabets[len(training_alphabets) - count:])
    names = set(validation_alphabets)
    unknown = names - set(training_alphabets)
    if unknown:
        raise ValueError(f"validation_alphabets must be among the training alphabets "
                         f"({', '.join(training_alphabets)}), got {sorted(unknown)}")
    if len(names) >= len(training_alphabets):
        raise ValueError("validation_alphabets must leave at least one training alphabet")
    return names


def _character_set(prepared: PreparedZip, rows: Sequence[int], rotations: bool) -> CharacterSet:
    images = prepared.images[rows]
    alphabets = tuple(prepared.alphabets[i] for i in rows)
    characters = tuple(prepared.characters[i] for i in rows)
    if not rotations:
        return CharacterSet(torch.from_numpy(np.ascontiguousarray(images)), alphabets, characters,
                            (0,) * len(rows))
    # Class order: character-major, so the four rotations of a character are neighbours.
    rotated = np.stack([np.rot90(images, k=degrees // 90, axes=(-2, -1)) for degrees in ROTATIONS_DEGREES], 1)
    n_rot = len(ROTATIONS_DEGREES)
    return CharacterSet(torch.from_numpy(np.ascontiguousarray(rotated.reshape(-1, *images.shape[1:]))),
                        tuple(a for a in alphabets for _ in range(n_rot)),
                        tuple(c for c in characters for _ in range(n_rot)),
                        ROTATIONS_DEGREES * len(rows))
