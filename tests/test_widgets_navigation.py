"""Notebook 7's goal explorer: the compute function and the widget callbacks, without a browser."""

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

from metalearn_lite import meta_rl  # noqa: E402
from metalearn_lite.plots.navigation import NavigationExplorerFigure, return_floor, trajectories_figure  # noqa: E402
from metalearn_lite.widgets.navigation import navigation_explorer  # noqa: E402


@pytest.fixture(scope="module")
def starts():
    return {"maml": meta_rl.random_policy(1), "random": meta_rl.random_policy(2)}


def test_explorer_data_shapes_and_zero_steps(starts):
    view = meta_rl.explorer_data(starts, (0.2, 0.1), 0.5, 2, n_trajectories=4, horizon=10)
    assert set(view.returns) == {"maml", "random"}
    assert view.returns["maml"].shape == (3,)
    positions, mask = view.after["random"]
    assert positions.shape == (4, 11, 2) and mask.shape == (4, 11)
    assert torch.equal(positions[:, 0], torch.zeros(4, 2))
    still = meta_rl.explorer_data(starts, (0.2, 0.1), 0.5, 0, n_trajectories=4, horizon=10)
    assert still.returns["maml"].shape == (1,)
    assert torch.equal(still.before["maml"][0], still.after["maml"][0])


def test_each_start_adapts_as_if_alone(starts):
    both = meta_rl.explorer_data(starts, (0.2, 0.1), 0.5, 1, n_trajectories=4, horizon=10)
    alone = meta_rl.explorer_data({"random": starts["random"]}, (0.2, 0.1), 0.5, 1, n_trajectories=4, horizon=10)
    # the same noise per start is not guaranteed (the noise tensor is drawn for all starts); the start's step-0
    # episodes of the first start are, so compare the first start alone
    first = meta_rl.explorer_data({"maml": starts["maml"]}, (0.2, 0.1), 0.5, 1, n_trajectories=4, horizon=10)
    assert torch.allclose(both.returns["maml"][0], first.returns["maml"][0])
    assert alone.returns["random"].shape == (2,)


def test_first_step_matches_the_package_inner_update(starts):
    policy = starts["maml"]
    goal = torch.tensor([[0.2, 0.1]])
    params = {k: v[None].requires_grad_(True) for k, v in meta_rl.policy_params(policy).items()}
    from metalearn_lite.navigation import rollout
    traj = rollout(policy, params, goal, 4, torch.Generator().manual_seed(0), 10)
    adapted = meta_rl.inner_update(policy, params, traj, 0.5)
    after = rollout(policy, {k: v.detach() for k, v in adapted.items()}, goal, 4, torch.Generator().manual_seed(1), 10)
    view = meta_rl.explorer_data({"maml": policy}, (0.2, 0.1), 0.5, 1, n_trajectories=4, horizon=10)
    assert torch.allclose(view.returns["maml"][1], after.returns().mean(), atol=1e-4)


def test_cache_gives_the_same_numbers(starts):
    cache = {}
    a = meta_rl.explorer_data(starts, (0.1, -0.3), 0.5, 2, n_trajectories=4, horizon=10, cache=cache)
    b = meta_rl.explorer_data(starts, (0.1, -0.3), 0.5, 2, n_trajectories=4, horizon=10, cache=cache)
    assert len(cache) == 1
    assert torch.equal(a.returns["maml"], b.returns["maml"])


def test_explorer_callbacks_redraw(starts):
    explorer = navigation_explorer(starts, inner_steps=1)
    assert explorer.last_error is None
    view = explorer.set(goal_x=-0.4, inner_steps=2)
    assert explorer.last_error is None
    assert abs(float(view.goal[0]) + 0.4) < 1e-6 and view.returns["maml"].shape == (3,)
    view = explorer.set(inner_lr=0.1)
    assert view.inner_lr == pytest.approx(0.1)


def test_figures_draw(starts):
    view = meta_rl.explorer_data(starts, (0.2, 0.1), 0.5, 1, n_trajectories=3, horizon=10)
    fig = trajectories_figure([view, view], names=("maml", "random"))
    assert fig.axes
    matplotlib.pyplot.close(fig)


def test_live_figure_shows_the_view_and_reuses_its_background(starts):
    figure = NavigationExplorerFigure(list(starts), n_show=2)
    view = meta_rl.explorer_data(starts, (0.2, 0.1), 0.5, 2, n_trajectories=3, horizon=10)
    png = figure.render(view)
    assert png.startswith(b"\x89PNG")
    x, y = figure.after["maml"].get_data()
    assert len(x) == 2 * (10 + 2)    # two episodes of 11 positions, each followed by a NaN gap
    assert list(figure.curves["random"].get_ydata()) == pytest.approx(view.returns["random"].tolist())
    assert figure.goal.get_data() == ([pytest.approx(0.2)], [pytest.approx(0.1)])
    assert not figure.diverged.get_visible() and "after 2 steps" in figure.left.title.get_text()
    other = meta_rl.explorer_data(starts, (-0.3, 0.4), 0.2, 1, n_trajectories=3, horizon=10)
    figure.render(other)
    assert figure.n_full_draws == 1     # a new goal, step size or step count redraws only what moved


def test_live_figure_marks_divergence_and_extends_its_axis(starts):
    figure = NavigationExplorerFigure(list(starts))
    view = meta_rl.explorer_data(starts, (0.2, 0.1), 0.5, 1, n_trajectories=3, horizon=10)
    blown = view._replace(returns={**view.returns, "maml": torch.tensor([-5.0, float("nan")])})
    figure.render(blown)
    assert figure.diverged.get_visible() and "MAML" in figure.diverged.get_text()
    assert return_floor([[-50.0, -300.0], [float("nan")]]) == -550.0
    assert return_floor([[-3.0, -109.0]]) == -110.0
    assert return_floor([[-5000.0]]) == -1100.0


def test_bad_settings_are_named(starts):
    with pytest.raises(ValueError, match="inner_lr"):
        meta_rl.explorer_data(starts, (0.0, 0.0), -1.0, 1)
    with pytest.raises(ValueError, match="policies"):
        meta_rl.stack_params({})
