"""The documented Omniglot training command: a tiny run end to end, its checkpoint, augmentation and schedule."""


import pytest
import torch

from metalearn_lite import train
from metalearn_lite.experiments import omniglot
from metalearn_lite.train import load_checkpoint
from metalearn_lite.data.settings import get_data_dir

# Found only through the package's data-folder setting (METALEARN_DATA, else its default folder);
# conftest.py makes sure the files are there, once, before the first test that needs them.
DATA_DIR = get_data_dir()
pytestmark = pytest.mark.omniglot


@pytest.fixture(autouse=True)
def omniglot_data(monkeypatch):
    monkeypatch.setenv("METALEARN_DATA", str(DATA_DIR))


def tiny(tmp_path, *extra):
    return ["--out", str(tmp_path / "tiny.pt"), "--meta-steps", "3", "--hidden-channels", "8",
            "--meta-batch-size", "2", "--k-query", "2", "--log-every", "1", "--quiet", *extra]


def test_tiny_run_writes_a_weights_only_checkpoint_with_metadata(tmp_path):
    path = omniglot.main(tiny(tmp_path))
    payload = torch.load(path, map_location="cpu", weights_only=True)
    meta = payload["metadata"]
    assert meta["steps"] == 3 and meta["seed"] == 0 and meta["task_family"] == "omniglot"
    assert meta["command"].startswith("python -m metalearn_lite.experiments.omniglot --out")
    assert meta["torch_version"] == str(torch.__version__) and "batch" in meta["batch_norm"]
    assert meta["settings"]["zero_head"] is True and meta["settings"]["hidden_channels"] == 8
    assert payload["history"]["steps"] == [1, 2, 3]
    model, _ = load_checkpoint(path)
    assert torch.count_nonzero(model.head.weight) == 0 and torch.count_nonzero(model.head.bias) == 0
    assert path.stat().st_size < 2 * 1024 * 1024


def test_same_seed_same_weights(tmp_path):
    first, _ = load_checkpoint(omniglot.main(tiny(tmp_path / "a")))
    second, _ = load_checkpoint(omniglot.main(tiny(tmp_path / "b")))
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values()):
        assert torch.equal(a, b), name


def test_trained_head_and_validation_keep_the_best_weights(tmp_path):
    path = omniglot.main(tiny(tmp_path, "--no-zero-head", "--validation-alphabets", "1", "--val-every", "2",
                              "--val-episodes", "4", "--eval-inner-steps", "1"))
    meta = torch.load(path, weights_only=True)["metadata"]
    assert [step for step, _ in meta["validation"]] == [2, 3]
    best = max(meta["validation"], key=lambda item: item[1])
    assert meta["best_step"] == best[0]
    model, _ = load_checkpoint(path)
    assert torch.count_nonzero(model.head.weight) > 0


def test_minutes_budget_stops_the_run(tmp_path):
    args = ["--out", str(tmp_path / "timed.pt"), "--minutes", "0.002", "--hidden-channels", "4",
            "--meta-batch-size", "1", "--k-query", "1", "--quiet"]
    meta = torch.load(omniglot.main(args), weights_only=True)["metadata"]
    assert meta["steps"] >= 1 and meta["wall_time_s"] < 30


def test_shifts_move_images_without_changing_them():
    generator = torch.Generator().manual_seed(0)
    X = torch.zeros(2, 3, 1, 28, 28)
    X[..., 10:14, 12:15] = 1.0
    shifted = omniglot.shift_images(X, 2, generator)
    assert shifted.shape == X.shape
    assert torch.equal(shifted.sum(dim=(-1, -2)), X.sum(dim=(-1, -2)))  # ink far from the border is kept
    assert not torch.equal(shifted, X)
    assert torch.equal(omniglot.shift_images(X, 0, generator), X)


def test_cosine_schedule():
    assert train.meta_lr_at(0.0, 1e-3, "cosine") == pytest.approx(1e-3)
    assert train.meta_lr_at(0.5, 1e-3, "cosine") == pytest.approx(5e-4)
    assert train.meta_lr_at(1.5, 1e-3, "cosine") == pytest.approx(0.0)
    assert train.meta_lr_at(0.7, 1e-3, "constant") == 1e-3


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(SystemExit):
        omniglot.parse_args(["--out", str(tmp_path / "x.pt"), "--minutes", "0"])
    with pytest.raises(SystemExit):
        omniglot.parse_args(["--out", str(tmp_path / "x.pt"), "--meta-steps", "0"])
    with pytest.raises(SystemExit):
        omniglot.parse_args(["--out", str(tmp_path / "x.pt"), "--same-alphabet", "2"])
    with pytest.raises(SystemExit):
        omniglot.parse_args(["--out", str(tmp_path / "x.pt"), "--device", "tpu"])


def test_device_names_are_resolved_with_clear_errors():
    from metalearn_lite.utils import resolve_device
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(ValueError, match="device must be 'auto', 'cpu' or 'cuda'"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="sees no GPU"):
            resolve_device("cuda")


def test_evaluate_stores_the_held_out_results_in_the_checkpoint(tmp_path):
    path = omniglot.main(tiny(tmp_path, "--eval-inner-steps", "1"))
    omniglot.main(["--out", str(path), "--evaluate", "--eval-episodes", "3", "--quiet"])
    payload = torch.load(path, weights_only=True)
    evaluation = payload["metadata"]["evaluation"]
    assert ([(e["n_way"], e["k_shot"], e["bn"], e["adaptation"]) for e in evaluation["episodes"]]
            == omniglot.EVALUATION_SETTINGS)
    assert all(e["n_episodes"] == 3 and 0 <= e["accuracy"] <= 1 for e in evaluation["episodes"])
    many_way = [e for e in evaluation["episodes"] if e["adaptation"] == "many-way"]
    assert many_way and all((e["inner_lr"], e["inner_steps"]) == (0.1, 5) for e in many_way)
    assert len(evaluation["challenge"]["errors_per_run"]) == 20
    assert evaluation["challenge"]["inner_steps"] == omniglot.MANY_WAY_ADAPTATION["inner_steps"]
    assert evaluation["challenge_trained"]["inner_steps"] == 1
    assert payload["metadata"]["steps"] == 3 and payload["history"]["steps"] == [1, 2, 3]


@pytest.mark.parametrize("method", ["fomaml", "reptile", "anil", "meta_sgd", "protonet"])
def test_every_method_trains_validates_and_can_be_rebuilt(tmp_path, method):
    from metalearn_lite.methods import learner_from_checkpoint, method_of
    path = omniglot.main(tiny(tmp_path, "--method", method, "--validation-alphabets", "1", "--val-every", "2",
                              "--val-episodes", "2"))
    model, payload = load_checkpoint(path)
    meta = payload["metadata"]
    assert meta["method"] == method and meta["steps"] == 3 and [s for s, _ in meta["validation"]] == [2, 3]
    assert torch.count_nonzero(model.head.weight) == 0   # the zero head (protonet: an unused head)
    assert method_of(learner_from_checkpoint(model, payload)) == method
    assert meta["settings"]["first_order"] is (method == "fomaml")


def test_first_order_flag_is_fomaml_and_contradictions_are_refused(tmp_path, capsys):
    meta = torch.load(omniglot.main(tiny(tmp_path, "--first-order")), weights_only=True)["metadata"]
    assert meta["method"] == "fomaml" and meta["settings"]["first_order"] is True
    with pytest.raises(SystemExit):
        omniglot.parse_args(["--out", str(tmp_path / "x.pt"), "--method", "protonet", "--first-order"])
    with pytest.raises(SystemExit):
        omniglot.parse_args(["--out", str(tmp_path / "x.pt"), "--method", "reptile", "--inner-steps", "0"])
    assert "--method reptile" in capsys.readouterr().err
    assert omniglot.training_settings(method="reptile").inner_steps == omniglot.INNER_STEPS["reptile"]
    with pytest.raises(SystemExit):
        omniglot.training_settings(method="nope")


@pytest.mark.parametrize("method", ["anil", "protonet"])
def test_evaluate_scores_a_relative_with_its_own_adaptation(tmp_path, method):
    path = omniglot.main(tiny(tmp_path, "--method", method))
    omniglot.main(["--out", str(path), "--evaluate", "--eval-episodes", "2", "--quiet"])
    evaluation = torch.load(path, weights_only=True)["metadata"]["evaluation"]
    scored = [e for e in evaluation["episodes"] if "accuracy" in e]
    assert scored and all(0 <= e["accuracy"] <= 1 for e in scored)
    assert any(e["bn"] == "support" and "skipped" in e for e in evaluation["episodes"])
    challenge = evaluation["challenge_trained"]   # scored the method's own way, as every relative now is
    assert 0 <= challenge["error"] <= 1 and len(challenge["errors_per_run"]) == 20
    assert ("challenge" in evaluation) == (method != "protonet")   # no inner loop: no many-way adaptation to set


def test_a_learned_head_is_evaluated_only_where_it_fits(tmp_path):
    path = omniglot.main(tiny(tmp_path, "--no-zero-head", "--n-way", "5"))
    omniglot.main(["--out", str(path), "--evaluate", "--eval-episodes", "2", "--quiet"])
    evaluation = torch.load(path, weights_only=True)["metadata"]["evaluation"]
    assert {e["n_way"] for e in evaluation["episodes"] if "accuracy" in e} == {5}
    assert all("5-way head" in e["skipped"] for e in evaluation["episodes"] if e["n_way"] == 20)
    assert "challenge" not in evaluation
