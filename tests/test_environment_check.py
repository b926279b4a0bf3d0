"""The workshop environment check: each problem is reported with its fix, and the command exits non-zero."""

import os
import shutil
import subprocess
import sys

import pytest

from metalearn_lite import environment
from metalearn_lite.data import MINIMAL_FILES
from metalearn_lite.data.settings import get_data_dir

# Found only through the package's data-folder setting (METALEARN_DATA, else its default folder);
# conftest.py makes sure the files are there, once, before the first test that needs them.
DATA_DIR = get_data_dir()
pytestmark = pytest.mark.omniglot


def test_missing_data_folder_is_a_problem_naming_the_files_and_the_fix(tmp_path):
    missing = tmp_path / "no-such-folder"
    result = environment.check_data(missing)
    assert not result.ok
    for name in MINIMAL_FILES:
        assert f"{name} missing" in result.detail
    assert str(missing) in result.detail
    assert f"python -m metalearn_lite.data download --data-dir {missing}" in result.fix
    assert not missing.exists(), "the check must not create or download anything"


def test_corrupted_data_file_is_a_problem(tmp_path):
    for name in MINIMAL_FILES:
        shutil.copy(DATA_DIR / name, tmp_path / name)
    (tmp_path / "all_runs.zip").write_bytes(b"<html>quota exceeded</html>")
    result = environment.check_data(tmp_path)
    assert not result.ok
    assert "all_runs.zip has the wrong md5" in result.detail
    assert "images_background_small1.zip" not in result.detail


def test_verified_data_folder_is_ok():
    result = environment.check_data(DATA_DIR)
    assert result.ok, result.detail
    assert f"{len(MINIMAL_FILES)} files verified" in result.detail


def test_ipywidgets_absent_is_a_problem_with_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # makes `import ipywidgets` raise ImportError
    result = environment.check_ipywidgets()
    assert not result.ok
    assert "not installed" in result.detail
    assert "pip install" in result.fix and "ipywidgets" in result.fix


def test_widgets_extension_absent_is_a_problem(monkeypatch):
    monkeypatch.setitem(sys.modules, "jupyterlab_widgets", None)
    monkeypatch.setitem(sys.modules, "widgetsnbextension", None)
    result = environment.check_widgets_frontend()
    assert not result.ok
    assert "jupyterlab_widgets" in result.fix


def test_old_python_and_device_report():
    assert not environment.check_python((3, 8, 10)).ok
    assert environment.check_python((3, 11, 0)).ok
    assert environment.check_device().ok  # informational only


def test_report_lists_problems_with_fixes_and_main_exits_non_zero(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)
    status = environment.main(["--data-dir", str(tmp_path / "empty")])
    out = capsys.readouterr().out
    assert status == 1
    rows = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "PROBLEM" in rows["ipywidgets"]
    assert "PROBLEM" in next(line for line in out.splitlines() if line.startswith("Omniglot data"))
    assert "3 problem(s). How to fix:" in out
    assert "  - ipywidgets: pip install" in out
    assert "  - Omniglot data: python -m metalearn_lite.data download" in out
    assert "  - Omniglot cache: fix the Omniglot data first" in out


def test_everything_ok_exits_zero(capsys, tmp_path):
    status = environment.main(["--data-dir", str(DATA_DIR), "--cache-dir", str(tmp_path / "cache")])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "PROBLEM" not in out
    assert "All checks passed" in out


def test_runs_as_a_module_and_survives_a_bogus_matplotlib_backend(tmp_path):
    done = subprocess.run([sys.executable, "-m", "metalearn_lite.check", "--data-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "MPLBACKEND": "bogus"})
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert "Omniglot data" in done.stdout and "PROBLEM" in done.stdout
    matplotlib_row = next(line for line in done.stdout.splitlines() if line.startswith("matplotlib"))
    assert "PROBLEM" in matplotlib_row and "'bogus' is not a valid value for backend" in matplotlib_row
    assert "  - matplotlib: unset MPLBACKEND" in done.stdout


def test_a_check_that_raises_is_a_problem_and_the_others_still_run(monkeypatch, tmp_path):
    def broken():
        raise RuntimeError("boom")

    monkeypatch.setattr(environment, "check_torch", broken)
    results = {result.name: result for result in environment.run_checks(DATA_DIR, tmp_path / "cache")}
    assert not results["torch"].ok
    assert results["torch"].detail == "not verified: the check itself failed (RuntimeError: boom)"
    assert results["Omniglot data"].ok and len(results) == 8


def test_a_data_file_that_cannot_be_read_is_a_problem_not_a_crash(tmp_path):
    for name in MINIMAL_FILES:
        shutil.copy(DATA_DIR / name, tmp_path / name)
    before = {name: (tmp_path / name).read_bytes() for name in MINIMAL_FILES if name != "all_runs.zip"}
    (tmp_path / "all_runs.zip").unlink()
    (tmp_path / "all_runs.zip").mkdir()  # unreadable as a file, even for root
    result = environment.check_data(tmp_path)
    assert not result.ok
    assert result.detail == f"in {tmp_path}: all_runs.zip cannot be read (IsADirectoryError: Is a directory)"
    assert all((tmp_path / name).read_bytes() == data for name, data in before.items())


def test_device_is_not_ok_when_torch_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    result = environment.check_device()
    assert not result.ok and "torch is missing" in result.detail
