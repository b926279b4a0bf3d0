import numpy as np
import pytest
import torch

from metalearn_lite import closed_form, landscape


@pytest.mark.parametrize("inner_lr, inner_steps", [(0.2, 3), (0.05, 0), (1.0, 10), (3.0, 10)])
def test_grid_matches_closed_form_meta_loss(inner_lr, inner_steps):
    # also where the inner loop diverges (losses up to ~1e21): the grid's QR form keeps its relative digits there
    batch = landscape.teaching_batch(n_tasks=6, seed=1)
    w1, w2 = np.array([-1.0, 0.5, 2.0]), np.array([-2.0, 1.0])
    grid = landscape.meta_loss_grid(batch, inner_lr, inner_steps, w1, w2)
    for i, b in enumerate(w2):
        for j, a in enumerate(w1):
            exact = closed_form.meta_loss(torch.tensor([a, b], dtype=torch.float64), batch, inner_lr, inner_steps)
            assert abs(grid[i, j] - float(exact)) <= 1e-10 * max(1.0, abs(float(exact)))


def test_maml_optimum_is_the_grid_minimum_and_beats_other_starts():
    view = landscape.objective_data(0.1, 3, resolution=81)
    i, j = np.unravel_index(np.argmin(view.meta_loss), view.meta_loss.shape)
    step = view.w1[1] - view.w1[0]
    assert np.abs(view.starts["MAML w*"] - [view.w1[j], view.w2[i]]).max() <= step
    at_step = {name: curve[3] for name, curve in view.curves.items()}
    assert at_step["MAML w*"] <= at_step["pretrained"] + 1e-12 and at_step["MAML w*"] < at_step["zero"]
    assert not view.diverged and view.spectral_radius < 1


def test_spectral_radius_decides_divergence():
    batch = landscape.teaching_batch()
    A, _ = closed_form.quadratic_form(batch.support)
    critical = 2.0 / float(torch.linalg.eigvalsh(A).max())
    assert not landscape.objective_data(0.95 * critical, 1).diverged
    assert landscape.objective_data(1.05 * critical, 1).diverged
