"""Unguarded inputs into the engine (issue 18): each gets a ValueError naming the tensor, what was expected and
what was given, or an unambiguous conversion that gives exactly the numbers of the converted input."""

import warnings

import pytest
import torch

from metalearn_lite import batch_checks, evaluation, maml
from metalearn_lite.few_shot import adapt_tasks
from metalearn_lite.maml import adapt, meta_gradient, parameters_of
from metalearn_lite.models import MLP, Conv4
from metalearn_lite.tasks import SinusoidTasks, Split, TaskBatch


@pytest.fixture
def mlp32():
    torch.manual_seed(0)
    return MLP(hidden=(8, 8))


@pytest.fixture
def sinusoids32():
    return SinusoidTasks().sample(3, k_shot=5, k_query=4, generator=torch.Generator().manual_seed(1))


@pytest.fixture
def conv32():
    torch.manual_seed(0)
    model = Conv4(n_way=3, hidden_channels=4)
    g = torch.Generator().manual_seed(2)
    labels = torch.arange(3).repeat_interleave(2).expand(2, 6)
    batch = TaskBatch(Split(torch.rand(2, 6, 1, 28, 28, generator=g), labels),
                      Split(torch.rand(2, 6, 1, 28, 28, generator=g), labels))
    return model, batch


def with_split(batch, which, X=None, y=None):
    """``batch`` with the support or query tensors replaced."""
    old = getattr(batch, which)
    new = Split(old.X if X is None else X, old.y if y is None else y)
    return batch._replace(**{which: new})


# --- float64 into a float32 model: converted once, with a warning; the numbers of the float32 batch ----------


def test_float64_inputs_are_converted_to_the_weights_dtype_with_a_warning(mlp32, sinusoids32):
    double = TaskBatch(Split(*(t.double() for t in sinusoids32.support)),
                       Split(*(t.double() for t in sinusoids32.query)))
    as_float = TaskBatch(Split(*(t.float() for t in double.support)), Split(*(t.float() for t in double.query)))
    params = parameters_of(mlp32)
    with pytest.warns(UserWarning, match=r"batch.support.X and batch.query.X have dtype torch.float64 but the "
                                         r"weights are torch.float32: converting the inputs to torch.float32") as note:
        converted = meta_gradient(mlp32, params, double)
    assert len(note) == 1
    expected = meta_gradient(mlp32, params, as_float)
    assert converted.loss.dtype == torch.float32 and torch.equal(converted.loss, expected.loss)
    assert all(torch.equal(converted.grads[k], expected.grads[k]) for k in params)
    with pytest.warns(UserWarning, match="float64"):
        curves = adapt(mlp32, params, double, 0.01, 2)
    assert torch.equal(curves.query_losses, adapt(mlp32, params, as_float, 0.01, 2).query_losses)


def test_matching_dtypes_give_no_warning(mlp32, sinusoids32):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        meta_gradient(mlp32, parameters_of(mlp32), sinusoids32)


def test_integer_images_are_refused_not_guessed(conv32):
    model, batch = conv32
    pixels = (batch.support.X * 255).to(torch.uint8)
    with pytest.raises(ValueError, match=r"batch.support.X must hold floating-point numbers of dtype torch.float32 "
                                         r"\(the weights' dtype\), got torch.uint8"):
        meta_gradient(model, parameters_of(model), with_split(batch, "support", X=pixels), loss="cross_entropy")


# --- labels for classification ---------------------------------------------------------------------------------


def test_float_labels_are_refused(conv32):
    model, batch = conv32
    bad = with_split(batch, "query", y=batch.query.y.float())
    with pytest.raises(ValueError, match=r"batch.query.y must hold integer class labels in \[0, 3\) for "
                                         r"loss='cross_entropy', got dtype torch.float32"):
        meta_gradient(model, parameters_of(model), bad, loss="cross_entropy")


@pytest.mark.parametrize("label", [3, -1, -100])  # -100 is cross_entropy's ignore_index: silently dropped
def test_out_of_range_labels_are_refused(conv32, label):
    model, batch = conv32
    y = batch.support.y.clone()
    y[1, 4] = label
    low, high = min(label, 0), max(label, 2)
    with pytest.raises(ValueError, match=rf"batch.support.y must hold class labels in \[0, 2\] \(the model has 3 "
                                         rf"outputs\), got labels from {low} to {high}"):
        meta_gradient(model, parameters_of(model), with_split(batch, "support", y=y), loss="cross_entropy")
    with pytest.raises(ValueError, match=r"batch.support.y must hold class labels in \[0, 2\]"):
        adapt_tasks(model, parameters_of(model), with_split(batch, "support", y=y), 0.4, 1)


def test_label_range_follows_a_resized_zero_head(conv32):
    model, batch = conv32
    params = parameters_of(model)
    params["head.weight"], params["head.bias"] = params["head.weight"][:2], params["head.bias"][:2]
    with pytest.raises(ValueError, match=r"labels in \[0, 1\] \(the model has 2 outputs\), got labels from 0 to 2"):
        adapt_tasks(model, params, batch, 0.4, 1)


def test_other_integer_label_dtypes_are_converted_losslessly(conv32):
    model, batch = conv32
    params = parameters_of(model)
    small = TaskBatch(Split(batch.support.X, batch.support.y.int()), Split(batch.query.X, batch.query.y.short()))
    got = meta_gradient(model, params, small, inner_lr=0.4, loss="cross_entropy", strategy="loop")
    expected = meta_gradient(model, params, batch, inner_lr=0.4, loss="cross_entropy", strategy="loop")
    assert torch.equal(got.loss, expected.loss)


def test_class_labels_need_shape_tasks_by_examples(conv32):
    model, batch = conv32
    bad = with_split(batch, "support", y=batch.support.y.unsqueeze(-1))
    with pytest.raises(ValueError, match=r"batch.support.y must have shape \(n_tasks, n_examples\) of class labels "
                                         r"for loss='cross_entropy', got \(2, 6, 1\)"):
        meta_gradient(model, parameters_of(model), bad, loss="cross_entropy")


# --- shapes: images, the task dimension, regression targets -----------------------------------------------------


@pytest.mark.parametrize("side", [8, 40])
def test_images_of_the_wrong_size_name_the_expected_size(conv32, side):
    model, batch = conv32
    images = torch.rand(2, 6, 1, side, side)
    bad = TaskBatch(Split(images, batch.support.y), Split(images, batch.query.y))
    message = rf"batch.support.X has {side}x{side} images, .*Conv4 expects 28x28 images \(shape \(n_tasks, " \
              rf"n_examples, 1, 28, 28\)\), got \(2, 6, 1, {side}, {side}\)"
    with pytest.raises(ValueError, match=message):
        meta_gradient(model, parameters_of(model), bad, loss="cross_entropy")
    with pytest.raises(ValueError, match=message):
        adapt_tasks(model, parameters_of(model), bad, 0.4, 1)


def test_a_conv_net_without_a_recorded_image_size_names_its_head(conv32):
    _, batch = conv32
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten(), torch.nn.Linear(2 * 26 * 26, 3))
    images = torch.rand(2, 6, 1, 20, 20)
    bad = TaskBatch(Split(images, batch.support.y), Split(images, batch.query.y))
    with pytest.raises(ValueError, match=r"has 20x20 images, but Sequential expects images that give 1352 features "
                                         r"at the linear head"):
        meta_gradient(net, parameters_of(net), bad, loss="cross_entropy")


def test_a_batch_without_the_task_dimension_is_refused(mlp32, sinusoids32, conv32):
    one_task = TaskBatch(Split(sinusoids32.support.X[0], sinusoids32.support.y[0]),
                         Split(sinusoids32.query.X[0], sinusoids32.query.y[0]))
    with pytest.raises(ValueError, match=r"batch.support.X must have shape \(n_tasks, n_examples, \.\.\.\) with a "
                                         r"leading task dimension .*got \(5, 1\)"):
        meta_gradient(mlp32, parameters_of(mlp32), one_task)
    model, batch = conv32
    images = TaskBatch(Split(batch.support.X[0], batch.support.y[0]), Split(batch.query.X[0], batch.query.y[0]))
    with pytest.raises(ValueError, match=r"batch.support.X must have shape \(n_tasks, n_examples, 1, height, width\)"
                                         r" for this model \(a leading task dimension.*got \(6, 1, 28, 28\)"):
        meta_gradient(model, parameters_of(model), images, loss="cross_entropy")


def test_regression_targets_without_the_output_dimension_are_refused(mlp32, sinusoids32):
    flat = with_split(sinusoids32, "support", y=sinusoids32.support.y[..., 0])
    message = r"batch.support.y must have shape \(3, 5, 1\) like the model's predictions for loss='mse', got \(3, 5\)"
    with pytest.raises(ValueError, match=message):
        meta_gradient(mlp32, parameters_of(mlp32), flat)
    with pytest.raises(ValueError, match=message):
        adapt(mlp32, parameters_of(mlp32), flat, 0.01, 1)


def test_support_and_query_examples_must_have_the_same_shape(mlp32, sinusoids32):
    linear = torch.nn.Linear(2, 1)
    two = TaskBatch(Split(torch.zeros(3, 5, 2), torch.zeros(3, 5, 1)), Split(torch.zeros(3, 4, 2, 1),
                                                                             torch.zeros(3, 4, 1)))
    with pytest.raises(ValueError, match=r"batch.query.X must have shape \(n_tasks, n_examples, 2\) for this model, "
                                         r"got \(3, 4, 2, 1\)"):
        meta_gradient(linear, parameters_of(linear), two)


# --- parameter dicts: exactly the model's keys --------------------------------------------------------------------


def test_a_params_dict_missing_a_key_is_refused(mlp32, sinusoids32):
    params = parameters_of(mlp32)
    del params["4.bias"]
    message = r"params is missing key '4.bias': expected the keys of MLP.named_parameters\(\)"
    with pytest.raises(ValueError, match=message):
        meta_gradient(mlp32, params, sinusoids32)
    with pytest.raises(ValueError, match=message):
        adapt(mlp32, params, sinusoids32, 0.01, 1)


def test_a_params_dict_with_an_unknown_key_is_refused(mlp32, sinusoids32):
    params = {**parameters_of(mlp32), "0.weigth": torch.zeros(8, 1)}
    with pytest.raises(ValueError, match=r"params has unknown key '0.weigth', not a parameter of MLP "
                                         r"\(expected keys '0.weight', '0.bias'"):
        meta_gradient(mlp32, params, sinusoids32)


def test_params_in_another_order_are_accepted(mlp32, sinusoids32):
    params = parameters_of(mlp32)
    reordered = dict(reversed(list(params.items())))
    assert torch.equal(meta_gradient(mlp32, reordered, sinusoids32).loss, meta_gradient(mlp32, params,
                                                                                        sinusoids32).loss)


def test_params_must_be_a_dict(mlp32, sinusoids32):
    with pytest.raises(ValueError, match=r"params must be a dict of parameter name -> tensor .*got list"):
        meta_gradient(mlp32, list(parameters_of(mlp32).values()), sinusoids32)


def test_the_explorer_engine_names_the_start_with_a_wrong_dict(mlp32, sinusoids32):
    good = parameters_of(mlp32)
    bad = {k: v for k, v in good.items() if k != "2.weight"}
    with pytest.raises(ValueError, match=r"starts\['pretrained'\] is missing key '2.weight'"):
        evaluation.adapt_starts(mlp32, {"maml": good, "pretrained": bad}, sinusoids32, 0.01, 1)


def test_few_shot_adaptation_checks_the_params_dict(conv32):
    model, batch = conv32
    params = {k: v for k, v in parameters_of(model).items() if k != "head.bias"}
    with pytest.raises(ValueError, match="params is missing key 'head.bias'"):
        adapt_tasks(model, params, batch, 0.4, 1)


def test_maml_check_batch_returns_the_same_batch_when_nothing_needs_converting(mlp32, sinusoids32):
    assert batch_checks.check_batch(sinusoids32, mlp32, parameters_of(mlp32), "mse") is sinusoids32
