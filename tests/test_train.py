import hashlib
import signal

import pytest
import torch

from metalearn_lite.maml import MAML
from metalearn_lite.models import MLP, Conv4
from metalearn_lite.tasks import SinusoidTasks
from metalearn_lite.train import (CheckpointError, NonFiniteLossError, TrainingInterrupted, load_checkpoint,
                                  meta_train, save_checkpoint, stop_requests)


def test_meta_training_lowers_the_loss_and_records_history():
    torch.manual_seed(0)
    model = MLP(hidden=(20, 20))
    family = SinusoidTasks()
    seen = []
    history = meta_train(MAML(model), lambda g: family.sample(8, 5, generator=g), meta_steps=60, meta_lr=1e-2,
                         log_every=20, callback=lambda h: seen.append(len(h.losses)), callback_every=30,
                         progress=False)
    assert history.steps == [20, 40, 60] and seen == [1, 3]  # called at steps 30 and 60
    assert history.losses[-1] < history.losses[0]


def test_same_seed_gives_the_same_training_run():
    def run():
        torch.manual_seed(0)
        model = MLP(hidden=(8,))
        meta_train(MAML(model), lambda g: SinusoidTasks().sample(4, 5, generator=g), 10, progress=False, seed=3)
        return torch.cat([p.flatten() for p in model.parameters()])
    assert torch.equal(run(), run())


def test_checkpoint_round_trip_restores_the_model(tmp_path):
    model = Conv4(n_way=5, hidden_channels=8)
    path = save_checkpoint(tmp_path / "ckpt" / "conv.pt", model, {"n_way": 5, "hidden_channels": 8},
                           meta_steps=0, note="untrained")
    restored, payload = load_checkpoint(path)
    x = torch.randn(4, 1, 28, 28)
    assert torch.equal(restored(x), model(x))
    assert payload["metadata"] == {"meta_steps": 0, "note": "untrained"}
    assert not list(tmp_path.glob("ckpt/*.tmp"))  # the atomic write leaves no temporary file behind


def test_checkpoint_refuses_metadata_that_could_not_be_loaded_safely(tmp_path):
    with pytest.raises(ValueError, match="torch_version"):
        save_checkpoint(tmp_path / "bad.pt", MLP(), {}, torch_version=torch.__version__)
    assert not list(tmp_path.iterdir())


def test_checkpoint_is_readable_by_others(tmp_path):
    path = save_checkpoint(tmp_path / "shared.pt", MLP(), {}, torch_version=str(torch.__version__))
    assert path.stat().st_mode & 0o044 == 0o044
    assert load_checkpoint(path)[1]["metadata"]["torch_version"] == str(torch.__version__)


def test_loading_refuses_missing_or_foreign_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "absent.pt")
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(ValueError, match="not a metalearn-lite checkpoint"):
        load_checkpoint(foreign)


def test_bad_training_settings_name_the_parameter():
    with pytest.raises(ValueError, match="meta_lr"):
        meta_train(MAML(MLP()), lambda g: None, meta_steps=1, meta_lr=-1.0, progress=False)
    with pytest.raises(ValueError, match="meta_steps"):
        meta_train(MAML(MLP()), lambda g: None, meta_steps=-5, progress=False)


# --- NaN never passes silently; Ctrl-C stops between steps; the loader says what a file is (issues 17 and 18) ---

def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_diverging_run_stops_at_once_naming_the_step_and_the_learning_rates():
    torch.manual_seed(0)
    model = MLP()
    family = SinusoidTasks()
    steps = []

    def sample(g):
        steps.append(len(steps) + 1)
        return family.sample(4, 5, generator=g)

    with pytest.raises(NonFiniteLossError, match=r"step 1\b.*inner_lr=1e\+06.*meta_lr=0.001") as caught:
        meta_train(MAML(model, inner_lr=1e6), sample, meta_steps=50, progress=False)
    assert caught.value.step == 1 and steps == [1]


def test_save_checkpoint_refuses_non_finite_weights_and_writes_nothing(tmp_path):
    model = MLP(hidden=(8,))
    with torch.no_grad():
        model[2].bias[0] = float("nan")
        model[0].weight[3, 0] = float("inf")
    with pytest.raises(ValueError, match=r"refusing to write .*tensors 0.weight, 2.bias hold NaN or infinite"):
        save_checkpoint(tmp_path / "nan.pt", model, {"hidden": [8]})
    assert not list(tmp_path.iterdir())


def test_ctrl_c_stops_training_after_the_step_in_progress():
    model = MLP(hidden=(8,))
    family = SinusoidTasks()
    calls = []

    def sample(g):
        calls.append(1)
        if len(calls) == 3:
            signal.raise_signal(signal.SIGINT)   # lands inside step 3; the loop stops once step 3 is done
        return family.sample(4, 5, generator=g)

    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(TrainingInterrupted) as caught:
        meta_train(MAML(model), sample, meta_steps=100, log_every=10, progress=False)
    assert caught.value.step == 3 and len(calls) == 3
    assert caught.value.history.steps == [3]   # the partial window is logged, not lost
    assert isinstance(caught.value, KeyboardInterrupt)
    assert signal.getsignal(signal.SIGINT) is before


def test_a_second_ctrl_c_interrupts_at_once():
    with pytest.raises(KeyboardInterrupt) as caught:
        with stop_requests() as requested:
            signal.raise_signal(signal.SIGINT)
            assert requested()
            signal.raise_signal(signal.SIGINT)
    assert not isinstance(caught.value, TrainingInterrupted)


def sinusoid_checkpoint(path):
    return save_checkpoint(path, MLP(), {}, task_family="sinusoid")


def omniglot_checkpoint(path):
    return save_checkpoint(path, Conv4(n_way=5, hidden_channels=4), {"n_way": 5, "hidden_channels": 4},
                           task_family="omniglot")


def broken_files(tmp_path):
    """(file, what the message must say) for each kind of file that is not a checkpoint."""
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    good = sinusoid_checkpoint(tmp_path / "good.pt")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    listed = tmp_path / "list.pt"
    torch.save([1, 2, 3], listed)
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    pickled = tmp_path / "pickled.pt"
    torch.save({"format": 1, "model_class": "MLP", "extra": Exception("any object")}, pickled)
    return [(empty, "empty (0 bytes)"), (truncated, "truncated or damaged torch file"),
            (listed, "holding a list, not a checkpoint dict"), (notes, "not a torch file"),
            (pickled, "pickled Python objects")]


def test_loading_says_what_the_file_is_and_what_was_expected(tmp_path):
    for path, what in broken_files(tmp_path):
        before = digest(path)
        with pytest.raises(CheckpointError) as caught:
            load_checkpoint(path)
        message = str(caught.value)
        assert what in message and str(path) in message and "expected a metalearn-lite checkpoint" in message
        assert "\n" not in message and "weights_only=False" not in message
        error = caught.value   # torch's own message (and its advice) is not chained to ours
        assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)
        assert digest(path) == before


def test_loading_refuses_the_other_task_family(tmp_path):
    sinusoid = sinusoid_checkpoint(tmp_path / "sinusoid.pt")
    omniglot = omniglot_checkpoint(tmp_path / "omniglot.pt")
    with pytest.raises(CheckpointError, match="is a sinusoid checkpoint \\(an MLP\\); expected an Omniglot "
                                              "checkpoint of metalearn-lite \\(a Conv4\\)"):
        load_checkpoint(sinusoid, task_family="omniglot")
    with pytest.raises(CheckpointError, match="is an Omniglot checkpoint \\(a Conv4\\); expected a sinusoid "
                                              "checkpoint of metalearn-lite \\(an MLP\\)"):
        load_checkpoint(omniglot, task_family="sinusoid")
    assert isinstance(load_checkpoint(omniglot, task_family="omniglot")[0], Conv4)
    unlabelled = save_checkpoint(tmp_path / "unlabelled.pt", MLP(), {})   # no task_family: judged by model class
    with pytest.raises(CheckpointError, match="is a checkpoint of an MLP; expected"):
        load_checkpoint(unlabelled, task_family="omniglot")


def test_few_shot_loader_refuses_a_sinusoid_checkpoint(tmp_path):
    from metalearn_lite.few_shot import load_initialisation
    with pytest.raises(CheckpointError, match="sinusoid checkpoint.*expected an Omniglot checkpoint"):
        load_initialisation(sinusoid_checkpoint(tmp_path / "sinusoid.pt"))


def test_loading_a_checkpoint_whose_weights_do_not_fit_its_model(tmp_path):
    path = tmp_path / "mismatch.pt"
    payload = torch.load(sinusoid_checkpoint(tmp_path / "ok.pt"), weights_only=True)
    payload["model_config"] = {"hidden": [3]}
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="weights do not fit its MLP description"):
        load_checkpoint(path)
