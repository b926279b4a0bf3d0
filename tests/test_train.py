import pytest
import torch

from metalearn_lite.maml import MAML
from metalearn_lite.models import MLP, Conv4
from metalearn_lite.tasks import SinusoidTasks
from metalearn_lite.train import load_checkpoint, meta_train, save_checkpoint


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
