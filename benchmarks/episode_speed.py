"""Episode sampling speed: the in-memory cache sampler vs a naive per-image PIL loader, in the same run.

Usage: ``python benchmarks/episode_speed.py [--data-dir DIR] [--seconds S]``. Prints cold preparation and warm
load times of the two minimal splits, then episodes/s (tasks/s) for 5-way 1-shot 15-query sampling with a
meta-batch of 16, for both loaders, and their ratio. Target: at least 5,000 episodes/s from the cache.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import torch

from metalearn_lite.data import EpisodeSampler, ensure_file, load_omniglot
from metalearn_lite.data.images import open_png, to_small_image

N_WAY, K_SHOT, K_QUERY, META_BATCH_SIZE = 5, 1, 15, 16
TARGET_EPISODES_PER_S = 5000


def time_preparation(data_dir, cache_dir):
    """Return (cold seconds, warm seconds) for preparing/loading the train and test splits."""
    timings = []
    for _ in range(2):
        started = time.perf_counter()
        load_omniglot("train", data_dir=data_dir, cache_dir=cache_dir)
        load_omniglot("test", data_dir=data_dir, cache_dir=cache_dir)
        timings.append(time.perf_counter() - started)
    return timings[0], timings[1]


def cache_episodes_per_second(characters, seconds: float) -> float:
    sampler = EpisodeSampler(characters, N_WAY, K_SHOT, K_QUERY, META_BATCH_SIZE, seed=0)
    return _episodes_per_second(sampler.sample, seconds)


class NaivePilLoader:
    """What a first attempt looks like: per episode, open each PNG from the zip with PIL and resize it."""

    def __init__(self, zip_path: Path, seed: int = 0):
        self.archive = zipfile.ZipFile(zip_path)
        by_character = {}
        for name in sorted(self.archive.namelist()):
            if name.endswith(".png"):
                by_character.setdefault(name.rsplit("/", 1)[0], []).append(name)
        self.characters = list(by_character.values())
        self.rng = np.random.default_rng(seed)

    def sample(self):
        tasks = []
        for _ in range(META_BATCH_SIZE):
            classes = self.rng.choice(len(self.characters), N_WAY, replace=False)
            support, query = [], []
            for index in classes:
                files = self.rng.choice(self.characters[index], K_SHOT + K_QUERY, replace=False)
                images = [to_small_image(open_png(self.archive.read(name))) for name in files]
                support += images[:K_SHOT]
                query += images[K_SHOT:]
            tasks.append((np.stack(support), np.stack(query)))
        support_X = torch.from_numpy(np.stack([s for s, _ in tasks]).astype(np.float32) / 255).unsqueeze(2)
        query_X = torch.from_numpy(np.stack([q for _, q in tasks]).astype(np.float32) / 255).unsqueeze(2)
        return support_X, query_X


def _episodes_per_second(sample, seconds: float) -> float:
    sample()  # warm-up
    batches, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        sample()
        batches += 1
    return batches * META_BATCH_SIZE / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="data directory (default: $METALEARN_DATA or the cache)")
    parser.add_argument("--seconds", type=float, default=2.0, help="measuring time per loader")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache_dir:
        cold, warm = time_preparation(args.data_dir, cache_dir)
        train = load_omniglot("train", data_dir=args.data_dir, cache_dir=cache_dir)
    print(f"prepare train+test splits: cold {cold:.2f} s, warm load {warm:.3f} s")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{N_WAY}-way {K_SHOT}-shot {K_QUERY}-query, meta-batch {META_BATCH_SIZE}")
    cached = cache_episodes_per_second(train, args.seconds)
    naive = _episodes_per_second(NaivePilLoader(ensure_file("images_background_small1.zip", args.data_dir)).sample,
                                 args.seconds)
    print(f"cache sampler : {cached:10.0f} episodes/s ({cached / META_BATCH_SIZE:.0f} meta-batches/s)")
    print(f"naive PIL     : {naive:10.0f} episodes/s ({naive / META_BATCH_SIZE:.1f} meta-batches/s)")
    print(f"ratio         : {cached / naive:10.0f}x   target >= {TARGET_EPISODES_PER_S} episodes/s: "
          f"{'met' if cached >= TARGET_EPISODES_PER_S else 'NOT met'}")


if __name__ == "__main__":
    main()
