"""Omniglot for the lessons: verified downloads, a prepared 28x28 cache, alphabet-disjoint splits, a batched
episode sampler, and the original 20-run one-shot challenge.

Where the data lives: ``data_dir=`` arguments, ``set_data_dir``, or the ``METALEARN_DATA`` environment variable
(default ``~/.cache/metalearn_lite/omniglot``). Files found there are verified by md5 and used without any network
access; missing ones are downloaded from Brenden Lake's repository. Prepared arrays go to ``METALEARN_CACHE``
(default ``~/.cache/metalearn_lite/prepared``), so the data directory may be read-only; a teacher's prepared
cache serves every user who can read it, and ``verify_cache`` checks it. Before a workshop:
``python -m metalearn_lite.data download``.

Typical use::

    from metalearn_lite.data import load_omniglot, EpisodeSampler
    train = load_omniglot("train")                       # 5 alphabets x 4 rotations = 544 classes
    batch = EpisodeSampler(train, n_way=5, k_shot=1, k_query=15, meta_batch_size=16, seed=0).sample()
"""

from .challenge import (ChallengeResult, ChallengeRun, evaluate_challenge, hausdorff_classifier,
                        load_challenge_runs, modified_hausdorff_costs, modified_hausdorff_distance,
                        runs_as_task_batch)
from .download import (MINIMAL_FILES, OMNIGLOT_FILES, ChecksumError, MissingDataError, RemoteFile,
                       UnsafeZipError, ensure_file, ensure_files, safe_extract)
from .episodes import EpisodeSampler
from .omniglot import CacheStatus, CharacterSet, load_omniglot, prepare_zip, verify_cache
from .settings import get_cache_dir, get_data_dir, set_cache_dir, set_data_dir

__all__ = [
    "CacheStatus", "CharacterSet", "ChallengeResult", "ChallengeRun", "ChecksumError", "EpisodeSampler", "MINIMAL_FILES",
    "MissingDataError", "OMNIGLOT_FILES", "RemoteFile", "UnsafeZipError", "ensure_file", "ensure_files",
    "evaluate_challenge", "get_cache_dir", "get_data_dir", "hausdorff_classifier", "load_challenge_runs",
    "load_omniglot", "modified_hausdorff_costs", "modified_hausdorff_distance", "prepare_zip",
    "runs_as_task_batch", "safe_extract", "set_cache_dir", "set_data_dir", "verify_cache",
]
