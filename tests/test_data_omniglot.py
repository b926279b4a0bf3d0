"""Omniglot data layer, offline against the files in the data folder (METALEARN_DATA): splits, cache, episodes."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from metalearn_lite.data import EpisodeSampler, load_omniglot, prepare_zip, set_cache_dir, set_data_dir
from metalearn_lite.data import omniglot as omniglot_module
from metalearn_lite.data import settings
from metalearn_lite.tasks import TaskBatch
from metalearn_lite.data.settings import get_data_dir

# Found only through the package's data-folder setting (METALEARN_DATA, else its default folder);
# conftest.py makes sure the files are there, once, before the first test that needs them.
DATA_DIR = get_data_dir()
pytestmark = pytest.mark.omniglot
SMALL1_ALPHABETS = {"Balinese", "Early_Aramaic", "Greek", "Korean", "Latin"}
TEST_ALPHABETS = {"Japanese_(katakana)", "Sanskrit", "Tagalog"}


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    """One cold cache for the whole session, prepared once by ``prepared_splits``."""
    return tmp_path_factory.mktemp("omniglot_cache")


@pytest.fixture(scope="session")
def prepared_splits(cache_dir):
    train = load_omniglot("train", data_dir=DATA_DIR, cache_dir=cache_dir, download=False)
    test = load_omniglot("test", data_dir=DATA_DIR, cache_dir=cache_dir, download=False)
    return train, test


@pytest.fixture
def train(prepared_splits):
    return prepared_splits[0]


@pytest.fixture
def test_split(prepared_splits):
    return prepared_splits[1]


def test_train_split_counts_with_rotations(train):
    assert set(train.alphabets) == SMALL1_ALPHABETS
    assert len(set(train.characters)) == 136
    assert train.n_classes == 136 * 4 and train.n_per_class == 20
    assert tuple(train.images.shape) == (544, 20, 28, 28) and train.images.dtype == torch.uint8
    assert set(train.rotations) == {0, 90, 180, 270}


def test_test_split_counts_and_alphabet_disjointness(train, test_split):
    assert set(test_split.alphabets) == TEST_ALPHABETS
    assert test_split.n_classes == 47 + 42 + 17 and set(test_split.rotations) == {0}
    assert test_split.n_classes * test_split.n_per_class == 2120
    assert not set(train.alphabets) & set(test_split.alphabets)
    assert not set(train.characters) & set(test_split.characters)


def test_images_have_bright_strokes_on_dark_background(train):
    images = train.images.float() / 255
    assert images.max() == 1.0 and images.min() == 0.0
    assert 0.03 < images.mean() < 0.2  # strokes are a small part of each image


def test_rotated_classes_are_rotations_of_the_character(train):
    upright, quarter = train.images[0].numpy(), train.images[1].numpy()
    assert train.characters[0] == train.characters[1] and train.rotations[:2] == (0, 90)
    np.testing.assert_array_equal(quarter, np.rot90(upright, 1, axes=(-2, -1)))


def test_validation_split_is_carved_from_training_alphabets(cache_dir):
    val = load_omniglot("val", validation_alphabets=["Korean"], data_dir=DATA_DIR, cache_dir=cache_dir)
    rest = load_omniglot("train", validation_alphabets=["Korean"], rotations=False, data_dir=DATA_DIR,
                         cache_dir=cache_dir)
    assert set(val.alphabets) == {"Korean"} and val.n_classes == 40
    assert set(rest.alphabets) == SMALL1_ALPHABETS - {"Korean"} and rest.n_classes == 136 - 40
    by_count = load_omniglot("val", validation_alphabets=1, data_dir=DATA_DIR, cache_dir=cache_dir)
    assert set(by_count.alphabets) == {"Latin"}


def test_bad_split_arguments_are_named(cache_dir):
    with pytest.raises(ValueError, match="split"):
        load_omniglot("validation", data_dir=DATA_DIR, cache_dir=cache_dir)
    with pytest.raises(ValueError, match="validation_alphabets"):
        load_omniglot("val", data_dir=DATA_DIR, cache_dir=cache_dir)
    with pytest.raises(ValueError, match="Klingon"):
        load_omniglot("val", validation_alphabets=["Klingon"], data_dir=DATA_DIR, cache_dir=cache_dir)


def test_cold_prepare_fills_the_cache_and_warm_load_reads_only_the_cache(prepared_splits, cache_dir, monkeypatch):
    cached = sorted(path.name for path in cache_dir.glob("*.npz"))
    assert len(cached) == 2 and all("-v2-lanczos28" in name for name in cached)

    def no_png_decoding(zip_path):  # a warm load must never read the PNGs again
        raise AssertionError(f"{zip_path} was prepared again although its cache exists")

    monkeypatch.setattr(omniglot_module, "_prepare_from_zip", no_png_decoding)
    warm_train = load_omniglot("train", data_dir=DATA_DIR, cache_dir=cache_dir, download=False)
    warm_test = load_omniglot("test", data_dir=DATA_DIR, cache_dir=cache_dir, download=False)
    assert torch.equal(warm_train.images, prepared_splits[0].images)
    assert torch.equal(warm_test.images, prepared_splits[1].images)


def test_cache_is_keyed_by_the_zip_md5(cache_dir):
    name = next(cache_dir.glob("images_background_small1-*.npz")).name
    assert "e704a628b5459e08445c13499850abc4" in name


def test_settings_and_environment_choose_the_folders(monkeypatch, tmp_path, cache_dir):
    monkeypatch.setenv("METALEARN_DATA", str(DATA_DIR))
    monkeypatch.setenv("METALEARN_CACHE", str(cache_dir))
    assert settings.get_data_dir() == DATA_DIR and settings.get_cache_dir() == cache_dir
    assert prepare_zip("images_background_small1.zip", download=False).images.shape == (136, 20, 28, 28)
    set_data_dir(tmp_path / "elsewhere")
    set_cache_dir(tmp_path / "cache")
    try:
        assert settings.get_data_dir() == tmp_path / "elsewhere"
        assert settings.get_cache_dir() == tmp_path / "cache"
        assert settings.get_data_dir("explicit") == Path("explicit")
    finally:
        set_data_dir(None)
        set_cache_dir(None)
    monkeypatch.delenv("METALEARN_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert settings.get_data_dir() == tmp_path / "xdg" / "metalearn_lite" / "omniglot"


def test_stale_cache_from_another_version_is_not_used(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    shutil.copytree(DATA_DIR, tmp_path / "data")
    prepare_zip("images_background_small1.zip", data_dir=tmp_path / "data", cache_dir=cache)
    monkeypatch.setattr("metalearn_lite.data.omniglot.PREPROCESS_VERSION", 999)
    prepare_zip("images_background_small1.zip", data_dir=tmp_path / "data", cache_dir=cache)
    assert sorted(path.name.split("-")[2] for path in cache.glob("*.npz")) == ["v2", "v999"]


# ---------------------------------------------------------------- episodes

def test_episode_shapes_labels_and_types(train):
    batch = EpisodeSampler(train, n_way=5, k_shot=1, k_query=15, meta_batch_size=16, seed=0).sample()
    assert isinstance(batch, TaskBatch)
    assert tuple(batch.support.X.shape) == (16, 5, 1, 28, 28) and tuple(batch.query.X.shape) == (16, 75, 1, 28, 28)
    assert tuple(batch.support.y.shape) == (16, 5) and tuple(batch.query.y.shape) == (16, 75)
    assert batch.support.X.dtype == torch.float32 and batch.support.y.dtype == torch.int64
    for labels in (batch.support.y, batch.query.y):
        assert labels.min() == 0 and labels.max() == 4
        assert all(torch.bincount(row, minlength=5).unique().numel() == 1 for row in labels)
    assert 0.0 <= batch.query.X.min() and batch.query.X.max() <= 1.0


def test_support_and_query_never_share_an_image(train):
    batch = EpisodeSampler(train, n_way=20, k_shot=5, k_query=15, meta_batch_size=8, seed=3).sample()
    classes = batch.info["classes"]
    assert all(row.unique().numel() == 20 for row in classes)
    drawers = torch.cat([batch.info["support_drawers"], batch.info["query_drawers"]], dim=-1)
    assert all(cell.unique().numel() == 20 for cell in drawers.reshape(-1, 20))
    # and the pixels agree: each support image of a task differs from every query image of that task
    support = batch.support.X.reshape(8, -1, 784)
    query = batch.query.X.reshape(8, -1, 784)
    assert (torch.cdist(support, query) > 0).all()


def test_episode_images_come_from_the_chosen_classes(train):
    batch = EpisodeSampler(train, n_way=3, k_shot=2, k_query=4, meta_batch_size=2, seed=5).sample()
    task, label = 1, 2
    class_index = batch.info["classes"][task, label]
    drawer = batch.info["query_drawers"][task, label, 0]
    expected = train.images[class_index, drawer].float() / 255
    position = (batch.query.y[task] == label).nonzero()[0, 0]
    torch.testing.assert_close(batch.query.X[task, position, 0], expected)


def test_sampler_is_deterministic_under_a_seed(train):
    first = EpisodeSampler(train, seed=11).sample()
    again = EpisodeSampler(train, seed=11).sample()
    other = EpisodeSampler(train, seed=12).sample()
    assert torch.equal(first.support.X, again.support.X) and torch.equal(first.query.X, again.query.X)
    assert not torch.equal(first.info["classes"], other.info["classes"])
    generator = torch.Generator().manual_seed(11)
    assert torch.equal(EpisodeSampler(train, generator=generator).sample().query.X, first.query.X)


@pytest.mark.parametrize("arguments, name", [
    (dict(n_way=107), "n_way"), (dict(n_way=1), "n_way"), (dict(k_shot=0), "k_shot"),
    (dict(k_shot=5, k_query=16), "k_query"), (dict(meta_batch_size=0), "meta_batch_size"),
    (dict(k_shot=1.5), "k_shot"),
])
def test_sampler_rejects_impossible_episodes_with_a_named_parameter(test_split, arguments, name):
    with pytest.raises(ValueError, match=name):
        EpisodeSampler(test_split, **arguments)


def test_n_way_larger_than_the_split_names_the_class_count(test_split):
    with pytest.raises(ValueError, match=r"n_way must be an integer in \[2, 106\], got 200"):
        EpisodeSampler(test_split, n_way=200)


def test_plot_episode_draws_support_and_query_with_predictions(train):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from metalearn_lite.plots.episodes import RIGHT_COLOR, WRONG_COLOR, plot_episode

    batch = EpisodeSampler(train, n_way=5, k_shot=1, k_query=15, meta_batch_size=2, seed=0).sample()
    predictions = batch.query.y[1].clone()
    predictions[0] = (predictions[0] + 1) % 5
    fig = plot_episode(batch, task=1, predictions=predictions, max_query_per_class=2)
    axes = np.array(fig.axes).reshape(3, 5)
    assert axes[1, 0].spines["left"].get_edgecolor() == matplotlib.colors.to_rgba(WRONG_COLOR)
    assert axes[2, 0].spines["left"].get_edgecolor() == matplotlib.colors.to_rgba(RIGHT_COLOR)
    shown = axes[0, 3].images[0].get_array()
    np.testing.assert_allclose(shown, batch.support.X[1, 3, 0].numpy())
    plt.close(fig)
    with pytest.raises(ValueError, match="predictions"):
        plot_episode(batch, predictions=[0, 1])


def test_same_alphabet_episodes_share_one_alphabet_and_rotation(train):
    sampler = EpisodeSampler(train, n_way=20, k_shot=1, k_query=1, meta_batch_size=64, seed=3, same_alphabet=0.5)
    classes = sampler.sample().info["classes"]
    within = [len({(train.alphabets[c], train.rotations[c]) for c in task.tolist()}) == 1 for task in classes]
    assert 16 < sum(within) < 48                             # about half of the 64 tasks
    assert all(len(set(task.tolist())) == 20 for task in classes)   # still 20 distinct classes per task
    everywhere = EpisodeSampler(train, n_way=5, k_shot=1, k_query=1, meta_batch_size=64, seed=3, same_alphabet=1.0)
    assert all(len({(train.alphabets[c], train.rotations[c]) for c in task.tolist()}) == 1
               for task in everywhere.sample().info["classes"])


def test_same_alphabet_zero_keeps_the_default_episode_stream(train):
    default = EpisodeSampler(train, 5, 1, 5, 8, seed=0).sample()
    explicit = EpisodeSampler(train, 5, 1, 5, 8, seed=0, same_alphabet=0.0).sample()
    assert torch.equal(default.info["classes"], explicit.info["classes"])
    assert torch.equal(default.support.X, explicit.support.X)


def test_same_alphabet_is_checked(train):
    with pytest.raises(ValueError, match="same_alphabet"):
        EpisodeSampler(train, 5, 1, 5, 8, same_alphabet=1.5)
    with pytest.raises(ValueError, match="at least n_way=60 characters; the largest here has 40"):
        EpisodeSampler(train, 60, 1, 1, 2, same_alphabet=0.5)
