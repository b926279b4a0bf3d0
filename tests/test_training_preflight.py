"""Both training commands check every flag before their first step, refuse in one line naming the flag, and leave
every file as it was (issues 17 and 18)."""

import hashlib
import os
import subprocess
import sys

import pytest

from metalearn_lite.data.settings import get_data_dir
from metalearn_lite.experiments import omniglot, sinusoid
from metalearn_lite.experiments.preflight import USAGE_ERROR
from metalearn_lite.models import MLP
from metalearn_lite.train import load_checkpoint, save_checkpoint

TINY_OMNIGLOT = ["--meta-steps", "2", "--hidden-channels", "4", "--meta-batch-size", "1", "--k-query", "1",
                 "--quiet"]
COMMANDS = pytest.mark.parametrize("main, tiny", [(sinusoid.main, ["--meta-steps", "2", "--quiet"]),
                                                  (omniglot.main, TINY_OMNIGLOT)], ids=["sinusoid", "omniglot"])


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(folder):
    """Every file under ``folder`` with its hash: nothing may appear, vanish or change."""
    return {str(p.relative_to(folder)): digest(p) if p.is_file() else "dir" for p in sorted(folder.rglob("*"))}


def refusal(capsys, main, argv):
    """Run a command that must refuse; return its one error line."""
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == USAGE_ERROR
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0]
    return err[0]


@pytest.fixture
def user_files(tmp_path):
    """A user's folder with a notes file and a sinusoid checkpoint, and a check that nothing in it changes."""
    (tmp_path / "notes.txt").write_text("my notes, not a checkpoint\n")
    save_checkpoint(tmp_path / "sinusoid.pt", MLP(), {}, task_family="sinusoid")
    before = snapshot(tmp_path)
    yield tmp_path
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("argv, flag, allowed", [
    (["--threads", "-1"], "--threads", "[1, "),
    (["--log-every", "0"], "--log-every", ">= 1"),
    (["--meta-steps", "0"], "--meta-steps", ">= 1"),
    (["--inner-lr", "nan"], "--inner-lr", "positive number"),
    (["--meta-lr", "-1"], "--meta-lr", "positive number"),
    (["--k-shot", "0"], "--k-shot", ">= 1"),
    (["--seed", "-3"], "--seed", "[0, 4294967295]"),
])
def test_sinusoid_ranges(capsys, user_files, argv, flag, allowed):
    line = refusal(capsys, sinusoid.main, ["--out", str(user_files / "new.pt"), *argv])
    assert f"error: {flag} must be" in line and allowed in line


@COMMANDS
def test_an_impossible_folder_fails_at_once_naming_out(capsys, user_files, main, tiny):
    line = refusal(capsys, main, ["--out", "/proc/metalearn-x/y.pt", *tiny])
    assert "error: --out: cannot create the folder /proc/metalearn-x" in line
    line = refusal(capsys, main, ["--out", str(user_files / "notes.txt" / "y.pt"), *tiny])
    assert "--out" in line and "notes.txt is a file, not a folder" in line
    line = refusal(capsys, main, ["--out", str(user_files), *tiny])
    assert "--out" in line and "is a folder" in line


@COMMANDS
def test_a_users_file_is_never_replaced_without_force(capsys, user_files, main, tiny):
    line = refusal(capsys, main, ["--out", str(user_files / "notes.txt"), *tiny])
    assert "--out" in line and "is not a torch file" in line and "--force" in line


def test_a_checkpoint_of_the_other_command_needs_force(capsys, user_files):
    line = refusal(capsys, omniglot.main, ["--out", str(user_files / "sinusoid.pt"), *TINY_OMNIGLOT])
    assert "--out" in line and "is a sinusoid checkpoint" in line and "--force" in line
    line = refusal(capsys, omniglot.main, ["--out", str(user_files / "sinusoid.pt"), "--evaluate", "--quiet"])
    assert "--out (with --evaluate)" in line and "expected an Omniglot checkpoint" in line


def test_force_replaces_and_a_checkpoint_of_the_same_command_is_replaced(tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("replace me\n")
    sinusoid.main(["--out", str(notes), "--meta-steps", "2", "--quiet", "--force"])
    assert load_checkpoint(notes, task_family="sinusoid")[1]["metadata"]["steps"] == 2
    sinusoid.main(["--out", str(notes), "--meta-steps", "3", "--quiet"])   # its own checkpoint: no --force needed
    assert load_checkpoint(notes)[1]["metadata"]["steps"] == 3


def test_checks_leave_no_folder_behind(tmp_path, capsys):
    refusal(capsys, sinusoid.main, ["--out", str(tmp_path / "a" / "b" / "c.pt"), "--threads", "0"])
    (tmp_path / "notes.txt").write_text("x")
    refusal(capsys, sinusoid.main, ["--out", str(tmp_path / "a" / "b" / "notes.pt"), "--log-every", "0"])
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize("argv, flag, allowed", [
    (["--shift-pixels", "40"], "--shift-pixels", "in [0, 7]"),
    (["--val-every", "0"], "--val-every", ">= 1"),
    (["--log-every", "0"], "--log-every", ">= 1"),
    (["--threads", "-1"], "--threads", "[1, "),
    (["--minutes", "nan"], "--minutes", "positive number"),
    (["--same-alphabet", "2"], "--same-alphabet", "in [0.0, 1.0]"),
    (["--n-way", "1"], "--n-way", ">= 2"),
    (["--device", "tpu"], "--device", "'auto', 'cpu' or 'cuda'"),
])
def test_omniglot_ranges(capsys, user_files, argv, flag, allowed):
    line = refusal(capsys, omniglot.main, ["--out", str(user_files / "new.pt"), *TINY_OMNIGLOT, *argv])
    assert f"error: {flag}" in line and allowed in line


@pytest.mark.parametrize("argv, flag", [
    (["--n-way", "10000"], "--n-way"),
    (["--k-shot", "15", "--k-query", "10"], "--k-query"),
    (["--validation-alphabets", "50"], "--validation-alphabets"),
])
def test_omniglot_episode_shapes_the_data_cannot_serve(capsys, user_files, argv, flag):
    assert (get_data_dir() / "images_background_small1.zip").is_file()   # the test is about shapes, not files
    line = refusal(capsys, omniglot.main, ["--out", str(user_files / "new.pt"), *TINY_OMNIGLOT, *argv])
    assert f"error: {flag}" in line


def test_missing_omniglot_data_is_named_before_training(tmp_path, capsys):
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("no_proxy", "https_proxy", "http_proxy")}
    # No network in tests: a proxy on a closed loopback port makes any download attempt fail at once.
    env.update(OMP_WAIT_POLICY="PASSIVE", METALEARN_DATA=str(tmp_path / "empty"),
               https_proxy="http://127.0.0.1:9", http_proxy="http://127.0.0.1:9")
    (tmp_path / "empty").mkdir()
    done = subprocess.run([sys.executable, "-m", "metalearn_lite.experiments.omniglot", "--out",
                           str(tmp_path / "out.pt"), *TINY_OMNIGLOT], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == USAGE_ERROR
    assert "error: Omniglot data (--source minimal)" in done.stderr and "images_background_small1.zip" in done.stderr
    assert "Traceback" not in done.stderr and "Omniglot MAML" not in done.stdout   # refused before training
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["empty"]


def test_inner_lr_1e6_exits_non_zero_naming_the_step_and_writes_nothing(user_files, capsys):
    out = user_files / "sinusoid.pt"
    with pytest.raises(SystemExit) as caught:
        sinusoid.main(["--out", str(out), "--meta-steps", "50", "--inner-lr", "1e6", "--quiet"])
    assert caught.value.code == 1
    err = capsys.readouterr().err
    assert "training diverged at step 1" in err and "--inner-lr 1e+06" in err and "--meta-lr" in err
    assert "Nothing was written" in err and "Traceback" not in err


def test_omniglot_divergence_names_the_learning_rates(tmp_path, capsys):
    with pytest.raises(SystemExit) as caught:
        omniglot.main(["--out", str(tmp_path / "x.pt"), *TINY_OMNIGLOT, "--inner-lr", "1e30", "--meta-lr", "1e30",
                       "--no-zero-head"])
    assert caught.value.code == 1
    err = capsys.readouterr().err
    assert "training diverged at step" in err and "--inner-lr 1e+30" in err and "--meta-lr 1e+30" in err
    assert list(tmp_path.iterdir()) == []


def test_pretrained_divergence_names_the_meta_lr(tmp_path, capsys):
    with pytest.raises(SystemExit) as caught:
        sinusoid.main(["--method", "pretrained", "--out", str(tmp_path / "p.pt"), "--meta-steps", "20",
                       "--meta-lr", "1e30", "--quiet"])
    assert caught.value.code == 1
    err = capsys.readouterr().err
    assert "training diverged at step" in err and "--meta-lr 1e+30" in err and "--inner-lr" not in err
    assert list(tmp_path.iterdir()) == []
