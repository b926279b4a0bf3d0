"""Failure paths of the data layer: corrupted files, no network, unsafe zips, atomic downloads. Never online."""

import hashlib
import io
import os
import re
import shutil
import stat
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.error import URLError

import pytest

from metalearn_lite.data import (OMNIGLOT_FILES, ChecksumError, MissingDataError, RemoteFile, UnsafeZipError,
                                 ensure_files, load_omniglot, safe_extract)
from metalearn_lite.data.download import DownloadLimits, DownloadTooSlow, fetch
from metalearn_lite.data import download as download_module
from metalearn_lite.data.__main__ import main as cli_main
from metalearn_lite.data.settings import get_data_dir

# Found only through the package's data-folder setting (METALEARN_DATA, else its default folder);
# conftest.py makes sure the files are there, once, before the first test that needs them.
DATA_DIR = get_data_dir()
pytestmark = pytest.mark.omniglot
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
    paths = ensure_files(data_dir=DATA_DIR)
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
    data = bytearray((DATA_DIR / SMALL1).read_bytes())
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
    serve["body"] = (DATA_DIR / SMALL1).read_bytes()
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
    serve["body"] = (DATA_DIR / "all_runs.zip").read_bytes()
    path = ensure_files(["all_runs.zip"], data_dir=tmp_path)["all_runs.zip"]
    assert path.read_bytes() == serve["body"]
    assert [p.name for p in tmp_path.iterdir()] == ["all_runs.zip"]


def test_cli_download_reports_success_and_failure(tmp_path, offline, capsys):
    assert cli_main(["download", "--data-dir", str(DATA_DIR)]) == 0
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
        ensure_files(["images_backgrund.zip"], data_dir=DATA_DIR)


def test_full_split_offline_names_the_full_zip(tmp_path, offline):
    shutil.copy(DATA_DIR / SMALL1, tmp_path / SMALL1)
    with pytest.raises(MissingDataError, match=r"images_background\.zip"):
        load_omniglot("train", source="full", data_dir=tmp_path, cache_dir=tmp_path / "cache")


def test_safe_extract_refuses_a_symlink_entry_mid_archive_and_writes_nothing(tmp_path):
    archive = tmp_path / "links.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("images/first.png", b"x")
        link = zipfile.ZipInfo("images/link.png")
        link.create_system = 3  # Unix, so that the mode bits below are read
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        out.writestr(link, "/etc/passwd")
        out.writestr("images/last.png", b"x")
    target = tmp_path / "out"
    with pytest.raises(UnsafeZipError, match=r"'images/link\.png' .* symbolic link"):
        safe_extract(archive, target)
    assert not target.exists()


def test_safe_extract_refuses_a_declared_size_above_the_bound_and_writes_nothing(tmp_path):
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as out:
        out.writestr("images/small.png", b"x")
        out.writestr("images/zeros.png", bytes(2 << 20))  # 2 MiB of zeros: a few kB compressed
    assert archive.stat().st_size < 20_000
    target = tmp_path / "out"
    with pytest.raises(UnsafeZipError, match=rf"declare {(2 << 20) + 1} bytes .* max_bytes={1 << 20}"):
        safe_extract(archive, target, max_bytes=1 << 20)
    assert not target.exists()
    assert (safe_extract(archive, target, max_bytes=4 << 20) / "images" / "zeros.png").stat().st_size == 2 << 20
    with pytest.raises(ValueError, match="max_bytes"):
        safe_extract(archive, target, max_bytes=0)


# ---------------------------------------------------------------- slow and stalled servers (loopback only)

# Small limits so that every case ends within a few seconds; the hang guard below is far more generous.
FAST_LIMITS = DownloadLimits(deadline_s=1.5, min_rate=1_000, grace_s=0.5, stall_s=0.5)
HANG_GUARD_S = 20


class _Server:
    """A loopback HTTP server serving ``body`` in one of the modes: fast, trickle, slow_steady, stall, mute."""

    def __init__(self, body: bytes, mode: str):
        self.body, self.mode, self.requests, self.stop = body, mode, [], threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                server.respond(self)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def respond(self, handler) -> None:
        if self.mode == "mute":  # connection accepted, no status line ever
            self.stop.wait(HANG_GUARD_S)
            return
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(self.body)))
        handler.end_headers()
        handler.wfile.flush()
        pieces = {"fast": (len(self.body), 0), "trickle": (1, 0.02), "slow_steady": (2_000, 0.02)}
        if self.mode == "stall":
            self.stop.wait(HANG_GUARD_S)
            return
        size, pause = pieces[self.mode]
        try:
            for start in range(0, len(self.body), size):
                if self.stop.wait(pause):
                    return
                handler.wfile.write(self.body[start:start + size])
                handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up, as it should

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def loopback(monkeypatch):
    """Start a loopback server in a mode and point the minimal Omniglot files' addresses at it."""
    servers = []

    def start(mode: str) -> _Server:
        server = _Server((DATA_DIR / SMALL1).read_bytes(), mode).__enter__()
        servers.append(server)
        for name in download_module.MINIMAL_FILES:
            remote = OMNIGLOT_FILES[name]
            monkeypatch.setitem(OMNIGLOT_FILES, name, RemoteFile(name, remote.md5, server.url(name)))
        return server

    yield start
    for server in servers:
        server.__exit__(None, None, None)


def _folder_with_a_user_file(tmp_path: Path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "notes.txt").write_text("a student's notes")
    return folder, _hashes(folder)


def _hashes(folder: Path) -> dict:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in folder.iterdir()}


def _download_failure(folder, names=(SMALL1,), limits=FAST_LIMITS):
    # The limits under test end the download; were they broken, the servers' own stop after HANG_GUARD_S would.
    with pytest.raises(MissingDataError) as error:
        ensure_files(names, data_dir=folder, limits=limits, progress=False)
    return str(error.value)


@pytest.mark.parametrize("mode, reason", [
    ("trickle", r"bytes/s over .* below the minimum of 1000 bytes/s \(network too slow\)"),
    ("slow_steady", r"the deadline of 1\.5 s for .* passed after \d+ bytes \(network too slow\)"),
    ("stall", r"no data from .* for 0\.5 s after 0 bytes \(stalled network or server\)"),
    ("mute", r"no data from .* for 0\.5 s after 0 bytes \(stalled network or server\)"),
])
def test_slow_or_stalled_server_ends_in_the_missing_data_message(tmp_path, loopback, mode, reason):
    server = loopback(mode)
    folder, before = _folder_with_a_user_file(tmp_path)
    message = _download_failure(folder)
    assert re.search(reason, message), message
    assert f"{SMALL1}: download failed" in message and server.url(SMALL1) in message
    assert str(folder / SMALL1) in message and f"data directory {folder}" in message
    assert _hashes(folder) == before  # no partial file, the user's file untouched


def test_after_one_stalled_download_the_others_are_not_tried(tmp_path, loopback):
    server = loopback("stall")
    folder, before = _folder_with_a_user_file(tmp_path)
    message = _download_failure(folder, names=download_module.MINIMAL_FILES)
    assert server.requests == [f"/{SMALL1}"]
    for name in download_module.MINIMAL_FILES[1:]:
        assert f"{name}: download failed: not tried, since the download of {SMALL1} just before was too slow" \
            in message
        assert server.url(name) in message
    assert _hashes(folder) == before


def test_the_download_command_reports_a_stall_with_the_module_limits(tmp_path, loopback, monkeypatch, capsys):
    server = loopback("stall")
    monkeypatch.setattr(download_module, "DOWNLOAD_LIMITS", FAST_LIMITS)
    assert cli_main(["download", "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "for 0.5 s after 0 bytes" in err and server.url(SMALL1) in err and str(tmp_path) in err
    assert list(tmp_path.iterdir()) == []


def test_a_loopback_download_lands_shareable_with_progress_and_cleans_stale_parts(tmp_path, loopback, capsys):
    server = loopback("fast")
    folder, before = _folder_with_a_user_file(tmp_path)
    stale, live = folder / f".{SMALL1}.killed.part", folder / f".{SMALL1}.running.part"
    stale.write_bytes(b"half")
    live.write_bytes(b"half")
    old = time.time() - FAST_LIMITS.deadline_s - FAST_LIMITS.stall_s - 60
    os.utime(stale, (old, old))
    path = fetch(OMNIGLOT_FILES[SMALL1], folder, FAST_LIMITS, progress=True)
    assert path.read_bytes() == (DATA_DIR / SMALL1).read_bytes()
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # readable by the class, not 0600
    assert not stale.exists() and live.exists()  # a download still running elsewhere keeps its file
    assert "images_background_small1.zip" in capsys.readouterr().err  # the tqdm bar
    live.unlink()
    after = _hashes(folder)
    assert after.pop(SMALL1) and after == before
    assert server.requests == [f"/{SMALL1}"]


def test_download_limits_are_checked():
    with pytest.raises(ValueError, match=r"DownloadLimits\.stall_s must be a positive number, got 0"):
        DownloadLimits(stall_s=0)
    assert issubclass(DownloadTooSlow, OSError)
