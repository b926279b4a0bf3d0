"""The prepared cache serves a class: shareable files, checksums that catch damage, fallbacks for unwritable
folders, and a check that verifies it. Cases about other users run in a forked child with nobody's uid, since
the tests run as root (who may read and write anything)."""

import hashlib
import json
import os
import pwd
import select
import shutil
import signal
import stat
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from metalearn_lite import environment
from metalearn_lite.data import omniglot as omniglot_module
from metalearn_lite.data import prepare_zip, verify_cache
from metalearn_lite.data.__main__ import main as cli_main
from metalearn_lite.data.settings import get_data_dir

pytestmark = pytest.mark.omniglot
SMALL1, SMALL2 = "images_background_small1.zip", "images_background_small2.zip"
NOBODY = pwd.getpwnam("nobody")
CHILD_TIMEOUT_S = 60


# ---------------------------------------------------------------- fixtures and helpers

@pytest.fixture(scope="module")
def shared_root():
    """A folder every user may enter (pytest's tmp_path is root's alone); removed at the end."""
    root = Path(tempfile.mkdtemp(prefix="metalearn-cache-test-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root)


@pytest.fixture(scope="module")
def teacher_cache(shared_root):
    """The cache a teacher prepares (as root, in a folder of root's): both minimal zips, read back once."""
    folder = shared_root / "teacher"
    for name in (SMALL1, SMALL2):
        prepare_zip(name, data_dir=get_data_dir(), cache_dir=folder, download=False)
        assert verify_cache(name, cache_dir=folder).ok
    return folder


@pytest.fixture
def prepared(teacher_cache, monkeypatch):
    """Count rebuilds; a rebuild returns the teacher's arrays instead of decoding the PNGs again (seconds each)."""
    rebuilt = []
    arrays = {name: omniglot_module._read_cache(verify_cache(name, cache_dir=teacher_cache).path)
              for name in (SMALL1, SMALL2)}

    def rebuild(zip_path):
        rebuilt.append(Path(zip_path).name)
        return arrays[Path(zip_path).name]

    monkeypatch.setattr(omniglot_module, "_prepare_from_zip", rebuild)
    monkeypatch.setattr(omniglot_module, "_MEMORY_CACHE", {})
    return rebuilt, arrays


def _copy_cache(teacher_cache: Path, folder: Path) -> Path:
    shutil.copytree(teacher_cache, folder)
    return folder


def _hashes(folder: Path) -> dict:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in folder.iterdir() if path.is_file()}


def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "empty":
        path.write_bytes(b"")
    elif how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    else:  # one flipped byte among the images
        damaged = bytearray(data)
        damaged[len(data) // 3] ^= 0xFF
        path.write_bytes(bytes(damaged))


def run_as_nobody(function, env=None):
    """Run ``function()`` in a forked child as the user nobody; return its repr'd value and warning messages.

    A fork (not a new interpreter) because this interpreter lives under /root, where nobody may not enter.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(NOBODY.pw_gid)
            os.setuid(NOBODY.pw_uid)
            os.environ.update(env or {})
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    outcome = {"value": repr(function()), "error": None}
                except BaseException as error:
                    outcome = {"value": None, "error": f"{type(error).__name__}: {error}"}
            outcome.update(uid=os.getuid(), warnings=[str(w.message) for w in caught])
            os.write(write_end, json.dumps(outcome).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    return _collect(pid, read_end)


def _collect(pid: int, read_end: int) -> dict:
    chunks, deadline = [], time.monotonic() + CHILD_TIMEOUT_S
    try:
        while True:
            ready, _, _ = select.select([read_end], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                os.kill(pid, signal.SIGKILL)
                pytest.fail(f"the child running as nobody hung for {CHILD_TIMEOUT_S} s")
            chunk = os.read(read_end, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)
    outcome = json.loads(b"".join(chunks))
    assert outcome["uid"] == NOBODY.pw_uid
    return outcome


# ---------------------------------------------------------------- as the teacher (root)

def test_cache_files_are_readable_by_group_and_others(teacher_cache):
    for path in teacher_cache.glob("*.npz"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    assert not list(teacher_cache.glob(".*.part"))


@pytest.mark.parametrize("how", ["empty", "truncated", "flipped"])
def test_a_damaged_cache_file_is_named_and_rebuilt(teacher_cache, tmp_path, prepared, how):
    rebuilt, arrays = prepared
    folder = _copy_cache(teacher_cache, tmp_path / "cache")
    (folder / "notes.txt").write_text("not a cache file")
    target = verify_cache(SMALL1, cache_dir=folder).path
    _damage(target, how)
    status = verify_cache(SMALL1, cache_dir=folder)
    assert status.state == "corrupt" and status.path == target
    before = _hashes(folder)
    with pytest.warns(UserWarning, match=rf"prepared cache {target} is corrupt \(.*\); rebuilding it from "):
        again = prepare_zip(SMALL1, cache_dir=folder, download=False)
    assert rebuilt == [SMALL1]
    np.testing.assert_array_equal(again.images, arrays[SMALL1].images)
    assert verify_cache(SMALL1, cache_dir=folder).ok
    after = _hashes(folder)
    assert after.pop(target.name) != before.pop(target.name) and after == before  # only the damaged file changed


def test_a_cache_whose_checksum_does_not_match_is_rebuilt(teacher_cache, tmp_path, prepared):
    rebuilt, arrays = prepared
    folder = _copy_cache(teacher_cache, tmp_path / "cache")
    target = verify_cache(SMALL1, cache_dir=folder).path
    sound = arrays[SMALL1]
    altered = sound.images.copy()
    altered[0, 0] = 255 - altered[0, 0]  # a consistent zip (CRCs fine) whose arrays are not what was stored
    np.savez(target, images=altered, alphabets=np.array(sound.alphabets), characters=np.array(sound.characters),
             checksum=np.array(omniglot_module._checksum(sound)))
    assert verify_cache(SMALL1, cache_dir=folder).detail == "its checksum does not match its contents"
    with pytest.warns(UserWarning, match=f"{target} is corrupt"):
        np.testing.assert_array_equal(prepare_zip(SMALL1, cache_dir=folder, download=False).images, sound.images)
    assert rebuilt == [SMALL1] and verify_cache(SMALL1, cache_dir=folder).ok


def test_the_prepare_command_rebuilds_a_corrupt_cache(teacher_cache, tmp_path, prepared, capsys):
    rebuilt, _ = prepared
    folder = _copy_cache(teacher_cache, tmp_path / "cache")
    _damage(verify_cache(SMALL1, cache_dir=folder).path, "truncated")
    with pytest.warns(UserWarning, match="is corrupt"):
        assert cli_main(["prepare", "--data-dir", str(get_data_dir()), "--cache-dir", str(folder)]) == 0
    assert rebuilt == [SMALL1]
    out = capsys.readouterr().out
    assert out.count("checksum verified") == 2
    assert verify_cache(SMALL1, cache_dir=folder).ok and verify_cache(SMALL2, cache_dir=folder).ok


def test_a_cache_folder_under_a_regular_file_falls_back_to_memory(tmp_path, prepared, monkeypatch):
    # Root cannot create a folder below a regular file either, so this case needs no other user.
    rebuilt, arrays = prepared
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a user's file")
    monkeypatch.setenv("METALEARN_CACHE", str(blocker / "cache"))
    with pytest.warns(UserWarning) as caught:
        first = prepare_zip(SMALL1, download=False)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "\n" not in message and f"cannot write the prepared cache in {blocker / 'cache'}" in message
    assert "keeping it in memory" in message and "METALEARN_CACHE" in message
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert prepare_zip(SMALL1, download=False) is first  # served from memory: no second warning or rebuild
    assert rebuilt == [SMALL1]
    assert blocker.read_text() == "a user's file"


def test_the_prepare_command_fails_when_the_cache_cannot_be_written(tmp_path, prepared, capsys):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with pytest.warns(UserWarning, match="cannot write the prepared cache"):
        status = cli_main(["prepare", "--data-dir", str(get_data_dir()), "--cache-dir", str(blocker / "cache")])
    assert status == 1
    err = capsys.readouterr().err
    assert f"cache problem: {blocker / 'cache'}" in err and "is missing (not prepared yet)" in err
    assert "--cache-dir or $METALEARN_CACHE" in err


def test_check_verifies_the_cache_and_reports_a_corrupt_file(teacher_cache, tmp_path):
    assert environment.check_cache(cache_dir=teacher_cache).ok
    assert "2 files verified (checksums)" in environment.check_cache(cache_dir=teacher_cache).detail
    folder = _copy_cache(teacher_cache, tmp_path / "cache")
    target = verify_cache(SMALL2, cache_dir=folder).path
    _damage(target, "empty")
    before = _hashes(folder)
    result = environment.check_cache(cache_dir=folder)
    assert not result.ok and f"{target} is corrupt" in result.detail
    assert "python -m metalearn_lite.data prepare" in result.fix and str(folder) in result.fix
    assert _hashes(folder) == before  # the check wrote nothing
    report = environment.format_report(environment.run_checks(cache_dir=folder))
    assert "All checks passed" not in report and "Omniglot cache" in report


def test_check_of_an_empty_cache_depends_on_whether_it_can_be_written(tmp_path):
    fresh = environment.check_cache(cache_dir=tmp_path / "new")
    assert fresh.ok and "not prepared yet" in fresh.detail and "writable" in fresh.detail
    assert not (tmp_path / "new").exists()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    blocked = environment.check_cache(cache_dir=blocker / "cache")
    assert not blocked.ok and "not prepared" in blocked.detail and f"{blocker} is not a folder" in blocked.detail
    assert "METALEARN_CACHE" in blocked.fix


def test_check_does_not_vouch_for_a_cache_without_data(tmp_path):
    result = environment.check_cache(data_dir=tmp_path / "no-data", cache_dir=tmp_path / "cache")
    assert not result.ok and result.detail.startswith("not verified")


# ---------------------------------------------------------------- as a student (nobody)

def test_a_student_reads_the_teachers_cache_without_rebuilding(teacher_cache, prepared):
    rebuilt, _ = prepared
    before = _hashes(teacher_cache)
    outcome = run_as_nobody(lambda: prepare_zip(SMALL1, cache_dir=teacher_cache, download=False).images.shape)
    assert outcome == {"value": "(136, 20, 28, 28)", "error": None, "uid": NOBODY.pw_uid, "warnings": []}
    assert rebuilt == [] and _hashes(teacher_cache) == before


def test_a_read_only_cache_folder_falls_back_with_a_one_line_warning(shared_root, prepared):
    folder = shared_root / "read-only"
    folder.mkdir(mode=0o755)  # root's: nobody may read, not write
    outcome = run_as_nobody(lambda: prepare_zip(SMALL1, download=False).images.shape,
                            env={"METALEARN_CACHE": str(folder)})
    assert outcome["error"] is None and outcome["value"] == "(136, 20, 28, 28)"
    [message] = outcome["warnings"]
    assert f"cannot write the prepared cache in {folder} (PermissionError: Permission denied)" in message
    assert "\n" not in message
    assert list(folder.iterdir()) == []


def test_an_unwritable_home_falls_back_too(shared_root, prepared, monkeypatch):
    home = shared_root / "home"
    home.mkdir(mode=0o755)
    monkeypatch.delenv("METALEARN_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    outcome = run_as_nobody(lambda: prepare_zip(SMALL1, download=False).images.shape, env={"HOME": str(home)})
    assert outcome["error"] is None
    [message] = outcome["warnings"]
    assert f"cannot write the prepared cache in {home / '.cache' / 'metalearn_lite' / 'prepared'}" in message
    assert list(home.iterdir()) == []


def test_another_users_private_cache_file_is_named_and_not_used(teacher_cache, shared_root, prepared):
    folder = _copy_cache(teacher_cache, shared_root / "private")
    target = verify_cache(SMALL1, cache_dir=folder).path
    target.chmod(0o600)  # as an older version wrote it
    before = _hashes(folder)
    outcome = run_as_nobody(lambda: prepare_zip(SMALL1, cache_dir=folder, download=False).images.shape)
    assert outcome["error"] is None and outcome["value"] == "(136, 20, 28, 28)"
    unreadable, unwritable = outcome["warnings"]
    assert f"prepared cache {target} is unreadable (PermissionError: Permission denied)" in unreadable
    assert f"cannot write the prepared cache in {folder}" in unwritable
    assert _hashes(folder) == before
    check = run_as_nobody(lambda: environment.check_cache(cache_dir=folder))
    assert "ok=False" in check["value"] and f"{target} is unreadable" in check["value"]


def test_check_reports_an_unreadable_data_file_as_a_student(shared_root):
    data = shared_root / "data"
    shutil.copytree(get_data_dir(), data)
    data.chmod(0o755)
    (data / "all_runs.zip").chmod(0o600)
    outcome = run_as_nobody(lambda: environment.check_data(data))
    assert outcome["error"] is None and "ok=False" in outcome["value"]
    assert "all_runs.zip cannot be read (PermissionError: Permission denied)" in outcome["value"]
    assert "images_background_small1.zip" not in outcome["value"].split("fix=")[0]
