"""Ctrl-C during a real training run: the checkpoint already at --out keeps its bytes, and with --save-on-interrupt
the progress is saved under a clear name and loads (issue 17). Timeouts only guard against hangs."""

import hashlib
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from metalearn_lite.experiments import sinusoid
from metalearn_lite.experiments.stopping import INTERRUPTED, interrupted_path
from metalearn_lite.models import Conv4, MLP
from metalearn_lite.train import load_checkpoint, save_checkpoint

HANG_GUARD_S = 240


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Run:
    """A training command as a subprocess whose stdout and stderr are collected by threads (tqdm writes '\\r',
    not lines, so the output is read as it comes)."""

    def __init__(self, module, argv):
        env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen([sys.executable, "-m", module, *argv], stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, env=env)
        self.output = {"out": "", "err": ""}
        self.readers = [threading.Thread(target=self._read, args=(stream, key), daemon=True)
                        for stream, key in ((self.process.stdout, "out"), (self.process.stderr, "err"))]
        for reader in self.readers:
            reader.start()

    def _read(self, stream, key):
        for chunk in iter(lambda: stream.read1(256), b""):
            self.output[key] += chunk.decode(errors="replace")

    def wait_for(self, pattern):
        """Wait until ``pattern`` appears in the output (training has started), or fail after the hang guard."""
        deadline = time.monotonic() + HANG_GUARD_S
        while not re.search(pattern, self.output["out"] + self.output["err"]):
            assert self.process.poll() is None, f"the run ended before training started: {self.output}"
            if time.monotonic() > deadline:  # a hang guard, not a speed claim: the run never got going
                pytest.fail(f"no {pattern!r} in the output after {HANG_GUARD_S} s: {self.output}")
            time.sleep(0.05)

    def interrupt(self):
        self.process.send_signal(signal.SIGINT)
        try:
            code = self.process.wait(timeout=HANG_GUARD_S)
        finally:
            self.process.kill()
        for reader in self.readers:
            reader.join(timeout=10)
        return code


@pytest.fixture
def good_sinusoid(tmp_path):
    path = save_checkpoint(tmp_path / "model.pt", MLP(), {}, task_family="sinusoid", note="the previous good run")
    return path, digest(path)


def interrupted_files(folder, stem):
    return sorted(folder.glob(f"{stem}.interrupted-step*.pt"))


def test_ctrl_c_keeps_the_previous_checkpoint_and_saves_the_progress(tmp_path, good_sinusoid):
    out, before = good_sinusoid
    run = Run("metalearn_lite.experiments.sinusoid", ["--meta-steps", "1000000", "--out", str(out),
                                                      "--save-on-interrupt"])
    run.wait_for(r"\|\s*[1-9]\d*/1000000")   # the progress bar shows completed steps
    code = run.interrupt()
    err = run.output["err"]
    assert code == INTERRUPTED, run.output
    assert digest(out) == before
    saved = interrupted_files(tmp_path, "model")
    assert len(saved) == 1, err
    step = int(re.search(r"step(\d+)", saved[0].name).group(1))
    assert saved[0] == interrupted_path(out, step) and step >= 1
    assert f"interrupted after step {step}; {out} was not touched" in err
    assert f"saved the progress so far ({step} steps) to {saved[0]}" in err and "Traceback" not in err
    model, payload = load_checkpoint(saved[0], task_family="sinusoid")
    assert payload["metadata"]["steps"] == step and payload["metadata"]["interrupted"] is True
    assert payload["history"]["steps"][-1] == step


def test_ctrl_c_without_the_flag_saves_nothing_and_says_how(tmp_path, good_sinusoid):
    out, before = good_sinusoid
    run = Run("metalearn_lite.experiments.sinusoid", ["--meta-steps", "1000000", "--out", str(out)])
    run.wait_for(r"\|\s*[1-9]\d*/1000000")
    code = run.interrupt()
    assert code == INTERRUPTED, run.output
    assert digest(out) == before and interrupted_files(tmp_path, "model") == []
    assert "--save-on-interrupt" in run.output["err"] and "Traceback" not in run.output["err"]


def test_ctrl_c_during_omniglot_training(tmp_path):
    out = save_checkpoint(tmp_path / "conv.pt", Conv4(n_way=5, hidden_channels=4), {"n_way": 5,
                          "hidden_channels": 4}, task_family="omniglot")
    before = digest(out)
    run = Run("metalearn_lite.experiments.omniglot",
              ["--out", str(out), "--meta-steps", "100000", "--hidden-channels", "4", "--meta-batch-size", "1",
               "--k-query", "1", "--log-every", "1", "--save-on-interrupt"])
    run.wait_for(r"step\s+2\s")
    code = run.interrupt()
    assert code == INTERRUPTED, run.output
    assert digest(out) == before
    saved = interrupted_files(tmp_path, "conv")
    assert len(saved) == 1, run.output
    model, payload = load_checkpoint(saved[0], task_family="omniglot")
    step = payload["metadata"]["steps"]
    assert saved[0].name == f"conv.interrupted-step{step}.pt" and step >= 2
    assert payload["metadata"]["interrupted"] is True and payload["history"]["steps"][-1] == step


def test_pretrained_baseline_stops_between_steps_and_saves(tmp_path, monkeypatch, capsys):
    """In process: the SIGINT is raised from inside the 5th step's task sampling, so the stop lands mid-step."""
    calls = []
    real = sinusoid.SinusoidTasks

    class SignallingTasks(real):
        def sample(self, *args, **kwargs):
            calls.append(1)
            if len(calls) == 5:
                signal.raise_signal(signal.SIGINT)
            return super().sample(*args, **kwargs)

    monkeypatch.setattr(sinusoid, "SinusoidTasks", SignallingTasks)
    out = tmp_path / "pre.pt"
    with pytest.raises(SystemExit) as caught:
        sinusoid.main(["--method", "pretrained", "--meta-steps", "1000", "--out", str(out), "--quiet",
                       "--save-on-interrupt"])
    assert caught.value.code == INTERRUPTED
    assert not out.exists() and len(calls) == 5   # step 5 finished; step 6 saw the request before sampling
    payload = load_checkpoint(interrupted_path(out, 5), task_family="sinusoid")[1]
    assert payload["metadata"]["steps"] == 5 and payload["metadata"]["method"] == "pretrained"
    assert "saved the progress so far (5 steps)" in capsys.readouterr().err
