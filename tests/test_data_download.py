"""Failure paths of the data layer: corrupted files, no network, unsafe zips, atomic downloads. Never online."""

import io
import shutil
import zipfile
from pathlib import Path
from urllib.error import URLError

import pytest

from metalearn_lite.data import (OMNIGLOT_FILES, ChecksumError, MissingDataError, UnsafeZipError, ensure_files,
                                 load_omniglot, safe_extract)
from metalearn_lite.data import download as download_module
from metalearn_lite.data.__main__ import main as cli_main

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "omniglot"
SMALL1 = "images_background_small1.zip"


@pytest.fixture
def offline(monkeypatch):
    """Simulate a machine without network: any download attempt fails like a DNS failure, and is counted."""
    attempts = []

    def no_network(url, timeout=None):
        attempts.append(url)
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(download_module, "urlopen", no_network)
    return attempts


@pytest.fixture
def serve(monkeypatch):
    """Simulate a server answering every address with the given bytes."""
    served = {}

    def fake_urlopen(url, timeout=None):
        served.setdefault("urls", []).append(url)
        return io.BytesIO(served["body"])

    monkeypatch.setattr(download_module, "urlopen", fake_urlopen)
    return served


def test_present_files_are_used_without_touching_the_network(offline):
    paths = ensure_files(data_dir=SHARED_DATA)
    assert sorted(paths) == sorted(["all_runs.zip", SMALL1, "images_background_small2.zip"])
    assert offline == []


def test_missing_files_without_network_name_files_addresses_and_folder(tmp_path, offline):
    with pytest.raises(MissingDataError) as error:
        ensure_files(data_dir=tmp_path)
    message = str(error.value)
    for remote in (OMNIGLOT_FILES[name] for name in download_module.MINIMAL_FILES):
        assert remote.name in message and remote.url in message
        assert str(tmp_path / remote.name) in message
    assert str(tmp_path) in message and "METALEARN_DATA" in message
    assert len(offline) == 3
    assert list(tmp_path.iterdir()) == []  # nothing half-written left behind


def test_loading_a_split_offline_reports_the_missing_zip(tmp_path, offline):
    with pytest.raises(MissingDataError, match=r"images_background_small1\.zip"):
        load_omniglot("train", data_dir=tmp_path / "empty", cache_dir=tmp_path / "cache")


def test_download_false_never_calls_the_network(tmp_path, offline):
    with pytest.raises(MissingDataError, match="download=False"):
        ensure_files([SMALL1], data_dir=tmp_path, download=False)
    assert offline == []


def _corrupted_copy(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / SMALL1
    data = bytearray((SHARED_DATA / SMALL1).read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    return target


def test_corrupted_zip_is_detected_and_not_used_offline(tmp_path, offline):
    corrupted = _corrupted_copy(tmp_path)
    with pytest.warns(UserWarning, match="expected e704a628"), pytest.raises(ChecksumError) as error:
        load_omniglot("train", data_dir=tmp_path, cache_dir=tmp_path / "cache")
    message = str(error.value)
    assert str(corrupted) in message and OMNIGLOT_FILES[SMALL1].url in message and "Delete it" in message
    assert not (tmp_path / "cache").exists()  # nothing was prepared from the bad file


def test_corrupted_zip_is_reported_without_download_too(tmp_path, offline):
    _corrupted_copy(tmp_path)
    with pytest.raises(ChecksumError, match="corrupted or partial"):
        ensure_files([SMALL1], data_dir=tmp_path, download=False)
    assert offline == []


def test_corrupted_zip_is_replaced_by_a_verified_download(tmp_path, serve):
    corrupted = _corrupted_copy(tmp_path)
    serve["body"] = (SHARED_DATA / SMALL1).read_bytes()
    with pytest.warns(UserWarning, match="downloading it again"):
        path = ensure_files([SMALL1], data_dir=tmp_path)[SMALL1]
    assert path == corrupted and path.read_bytes() == serve["body"]
    assert serve["urls"] == [OMNIGLOT_FILES[SMALL1].url]


def test_a_wrong_download_is_discarded_and_never_written(tmp_path, serve):
    serve["body"] = b"<html>Quota exceeded</html>"
    with pytest.raises(MissingDataError, match="md5") as error:
        ensure_files([SMALL1], data_dir=tmp_path)
    assert "discarded" in str(error.value)
    assert list(tmp_path.iterdir()) == []


def test_a_good_download_lands_atomically(tmp_path, serve):
    serve["body"] = (SHARED_DATA / "all_runs.zip").read_bytes()
    path = ensure_files(["all_runs.zip"], data_dir=tmp_path)["all_runs.zip"]
    assert path.read_bytes() == serve["body"]
    assert [p.name for p in tmp_path.iterdir()] == ["all_runs.zip"]


def test_cli_download_reports_success_and_failure(tmp_path, offline, capsys):
    assert cli_main(["download", "--data-dir", str(SHARED_DATA)]) == 0
    assert "ok  all_runs.zip" in capsys.readouterr().out
    assert cli_main(["download", "--data-dir", str(tmp_path)]) == 1
    assert OMNIGLOT_FILES["all_runs.zip"].url in capsys.readouterr().err


def _zip_with(path: Path, entries) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name in entries:
            archive.writestr(name, b"x")
    return path


@pytest.mark.parametrize("evil", ["../escape.png", "images/../../escape.png", "/abs/escape.png",
                                  "C:/windows/escape.png", "..\\escape.png"])
def test_zip_entries_outside_the_target_folder_are_refused(tmp_path, evil):
    archive = _zip_with(tmp_path / "evil.zip", ["images/ok.png", evil])
    target = tmp_path / "out"
    with pytest.raises(UnsafeZipError, match="escape"):
        safe_extract(archive, target)
    assert not (tmp_path / "escape.png").exists() and not target.exists()


def test_safe_extract_extracts_a_normal_zip(tmp_path):
    archive = _zip_with(tmp_path / "fine.zip", ["images/a/ok.png"])
    assert (safe_extract(archive, tmp_path / "out") / "images" / "a" / "ok.png").read_bytes() == b"x"


def test_preparation_refuses_a_zip_with_an_escaping_entry(tmp_path, monkeypatch):
    from metalearn_lite.data import omniglot
    archive = _zip_with(tmp_path / SMALL1, ["images_background_small1/Greek/character01/../../../../x.png"])
    with pytest.raises(UnsafeZipError):
        omniglot._prepare_from_zip(archive)


def test_unknown_file_names_are_rejected():
    with pytest.raises(ValueError, match="unknown Omniglot file"):
        ensure_files(["images_backgrund.zip"], data_dir=SHARED_DATA)


def test_full_split_offline_names_the_full_zip(tmp_path, offline):
    shutil.copy(SHARED_DATA / SMALL1, tmp_path / SMALL1)
    with pytest.raises(MissingDataError, match=r"images_background\.zip"):
        load_omniglot("train", source="full", data_dir=tmp_path, cache_dir=tmp_path / "cache")
