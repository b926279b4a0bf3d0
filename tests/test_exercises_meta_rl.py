"""Notebook 7's checkers accept the right answers and diagnose the usual slips."""

import pytest
import torch

from metalearn_lite.exercises.meta_rl import (BANDIT, bandit_sample, check_score_function, check_why_baseline,
                                              reference_gradient)


def right(actions, rewards, mu, sigma, baseline):
    return ((rewards - baseline) * (actions - mu) / sigma ** 2).mean()


def test_the_reference_estimator_is_close_to_the_exact_gradient():
    actions, rewards = bandit_sample(n=200_000)
    exact = -2 * (BANDIT["mu"] - BANDIT["goal"])
    assert abs(reference_gradient(actions, rewards, BANDIT["mu"], BANDIT["sigma"], float(rewards.mean())) - exact) < 0.05


def test_right_answer_passes(capsys):
    assert check_score_function(right)
    assert "Correct!" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, words", [
    (lambda a, r, mu, s, b: ((r - b) * (a - mu)).mean(), "sigma^2"),
    (lambda a, r, mu, s, b: ((r - b) * (a - mu) / s).mean(), "not sigma"),
    (lambda a, r, mu, s, b: ((r - b) * (a - mu) / s ** 2).sum(), "mean"),
    (lambda a, r, mu, s, b: ((r - b) * (mu - a) / s ** 2).mean(), "sign"),
    (lambda a, r, mu, s, b: (r * (a - mu) / s ** 2).mean(), "baseline is ignored"),
    (lambda a, r, mu, s, b: ((r + b) * (a - mu) / s ** 2).mean(), "do not add"),
    (lambda a, r, mu, s, b: (-2 * (a - BANDIT["goal"])).mean(), "pathwise"),
])
def test_typical_mistakes_are_diagnosed(wrong, words, capsys):
    assert not check_score_function(wrong)
    assert words in capsys.readouterr().out


def test_unanswered_crashing_and_wrong_type(capsys):
    assert not check_score_function(None)
    assert "hint" in capsys.readouterr().out
    assert not check_score_function(lambda *args: 1 / 0)
    assert "ZeroDivisionError" in capsys.readouterr().out
    with pytest.raises(ValueError):
        check_score_function(3.0)


def test_why_baseline(capsys):
    assert check_why_baseline("b")
    for wrong in "acd":
        assert not check_why_baseline(wrong)
    assert not check_why_baseline(None)
    with pytest.raises(ValueError):
        check_why_baseline("z")
