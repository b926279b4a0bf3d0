import numpy as np
import pytest

from metalearn_lite import descent, divergence
from metalearn_lite.descent import gradient_descent, steps_to_tolerance


@pytest.mark.parametrize("name", descent.OBJECTIVE_NAMES)
def test_gradients_match_finite_differences(name):
    objective = descent.get_objective(name)
    rng = np.random.default_rng(0)
    for _ in range(5):
        theta = rng.uniform(-1.5, 1.5, size=objective.dim)
        numeric = np.array([(objective.value(theta + e) - objective.value(theta - e)) / 2e-6
                            for e in 1e-6 * np.eye(objective.dim)])
        np.testing.assert_allclose(objective.gradient(theta), numeric, rtol=1e-5, atol=1e-6)


def test_update_is_theta_minus_lr_times_gradient():
    path = gradient_descent("ill_conditioned", lr=0.05, steps=2)
    h = np.array([1.0, 20.0])
    first = np.array([-4.0, 2.5]) * (1 - 0.05 * h)
    np.testing.assert_allclose(path.points[1], first)
    np.testing.assert_allclose(path.points[2], first * (1 - 0.05 * h))
    assert path.points.shape == (3, 2) and path.losses.shape == (3,) and not path.diverged


def test_ill_conditioned_needs_more_steps_than_well_conditioned():
    # each at its best learning rate 2 / (h_min + h_max)
    well = gradient_descent("well_conditioned", 2 / 3, 500)
    ill = gradient_descent("ill_conditioned", 2 / 21, 500)
    assert steps_to_tolerance(well) < 20 < 80 < steps_to_tolerance(ill)


@pytest.mark.parametrize("name", ["parabola_1d", "well_conditioned", "ill_conditioned"])
def test_divergence_exactly_above_the_critical_learning_rate(name):
    critical = descent.critical_learning_rate(name)
    below = gradient_descent(name, 0.95 * critical, 2000)
    above = gradient_descent(name, 1.3 * critical, 2000)
    assert not below.diverged and below.final_loss < 1e-6
    assert above.diverged and above.diverged_at is not None
    # truncated at the blow-up: the data stop before it and are all finite
    assert len(above.losses) == above.diverged_at and np.isfinite(above.points).all()
    assert above.losses.max() <= divergence.BLOWUP * max(above.losses[0], 1.0)


def test_huge_learning_rate_diverges_at_once_without_warnings():
    with np.errstate(all="raise"):  # nothing overflows silently inside
        path = gradient_descent("non_convex", 10.0, 200)
    assert path.diverged and path.diverged_at <= 3 and np.isfinite(path.losses).all()


def test_non_convex_start_decides_the_valley():
    right = gradient_descent("non_convex", 0.05, 300)
    left = gradient_descent("non_convex", 0.05, 300, start=(-0.3, 1.0))
    assert right.points[-1][0] > 0.9 and left.points[-1][0] < -1.0
    assert left.final_loss < right.final_loss
    assert abs(left.final_loss - descent.get_objective("non_convex").min_value) < 1e-8


def test_first_divergence_rule():
    assert divergence.first_divergence([1.0, 2.0, 3.0]) is None
    assert divergence.first_divergence([1.0, np.nan, 3.0]) == 1
    assert divergence.first_divergence([1.0, 10.0, 150.0]) == 2
    assert divergence.first_divergence([0.0, 0.5, 99.0]) is None  # the reference counts as at least 1
    assert divergence.first_divergence([0.0, 0.5, 101.0]) == 2


def test_one_rule_for_numpy_curves_and_torch_losses():
    import torch
    losses, start = [3.0, 299.0, 301.0, float("inf")], 3.0
    expected = [False, False, True, True]
    assert divergence.blew_up(np.array(losses), start).tolist() == expected
    assert divergence.blew_up(torch.tensor(losses), torch.tensor(start)).tolist() == expected
    curves = np.array([[2.0, 1.0, 0.5], [2.0, 50.0, 250.0], [0.1, 0.2, np.nan]])
    assert divergence.diverged_tasks(curves).tolist() == [False, True, True]


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="lr"):
        gradient_descent("parabola_1d", -0.1, 10)
    with pytest.raises(ValueError, match="objective"):
        gradient_descent("rosenbrock", 0.1, 10)
    with pytest.raises(ValueError, match="not a quadratic"):
        descent.critical_learning_rate("non_convex")
