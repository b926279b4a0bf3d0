"""Command line: ``python -m metalearn_lite.data download [--data-dir DIR] [--full]`` and ``prepare``.

``download`` fetches (or verifies) every file the lessons need, so a workshop runs without a network; ``prepare``
also builds the 28x28 cache (rebuilding a corrupt one), so the first lesson does not pay for it, and reads it back
to verify it; it fails when the cache could not be written.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import List, Optional

from .download import MINIMAL_FILES, MissingDataError, ChecksumError, ensure_files
from .omniglot import SOURCES, load_omniglot, verify_cache
from .settings import get_cache_dir, get_data_dir

FULL_FILES = ("images_background.zip", "images_evaluation.zip")


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    names = MINIMAL_FILES + (FULL_FILES if args.full else ())
    try:
        paths = ensure_files(names, data_dir=args.data_dir)
        for name, path in paths.items():
            print(f"ok  {name}  ({path})")
        if args.command == "prepare" and not _prepare(args):
            return 1
    except (MissingDataError, ChecksumError) as error:
        print(error, file=sys.stderr)
        return 1
    return 0


def _prepare(args) -> bool:
    """Build and verify the cache of every split; return whether every cache file is on disk and sound."""
    sources = ("minimal", "full") if args.full else ("minimal",)
    sound = True
    for source in sources:
        for split in ("train", "test"):
            started = time.perf_counter()
            characters = load_omniglot(split, source=source, data_dir=args.data_dir, cache_dir=args.cache_dir)
            print(f"ok  {source}/{split}: {characters} in {time.perf_counter() - started:.1f} s")
        for zip_name in SOURCES[source].values():
            status = verify_cache(zip_name, data_dir=args.data_dir, cache_dir=args.cache_dir)
            if status.ok:
                print(f"ok  cache {status.path} ({status.detail})")
            else:
                sound = False
                print(f"cache problem: {status.path} is {status.state} ({status.detail}); make "
                      f"{get_cache_dir(args.cache_dir)} writable or choose another with --cache-dir or "
                      f"$METALEARN_CACHE", file=sys.stderr)
    return sound


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m metalearn_lite.data", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("download", "prepare"),
                        help="download: fetch and verify the zips; prepare: also build the 28x28 cache")
    parser.add_argument("--data-dir", default=None,
                        help=f"folder for the zip files (default: {get_data_dir()}, or $METALEARN_DATA)")
    parser.add_argument("--cache-dir", default=None,
                        help=f"folder for prepared arrays (default: {get_cache_dir()}, or $METALEARN_CACHE)")
    parser.add_argument("--full", action="store_true",
                        help="also the papers' full background/evaluation sets (about 15 MB more)")
    return parser


if __name__ == "__main__":
    sys.exit(main())
