"""Specs say which network and which data, validate themselves, and build or load them."""

import dataclasses
import json

import jax
import numpy as np
import pytest

from mgs_teach.config import Config
from mgs_teach.lab import specs as S
from mgs_teach.lab.experiment import Experiment
from mgs_teach.lab.specs import TASKS, DataSpec, FacesSpec, ModelSpec
from mgs_teach.penalties import regulariser


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: ModelSpec("resnet"), "unknown model"),
        (lambda: ModelSpec("fcn", activation="swish"), "unknown activation"),
        (lambda: DataSpec("cifar", 10), "unknown task"),
        (lambda: DataSpec("mnist", 10, label_noise=1.5), r"\[0, 1\]"),
        (lambda: DataSpec("mnist", 10, noise="sometimes"), "convention"),
    ],
)
def test_bad_specs_are_rejected(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_a_model_spec_builds_its_network_with_the_named_activation():
    assert S.ACTIVATIONS["tanh"] is jax.nn.tanh and set(S.ACTIVATIONS) == {"relu", "gelu", "tanh"}
    assert set(S.NETWORKS) == {"fcn", "lenet5", "alexnet"}
    spec = ModelSpec("fcn", d_in=2, d_out=3, depth=1, width=4, activation="tanh")
    x = np.ones((5, 2), np.float32)
    assert spec()(x).shape == (5, 3)
    assert spec.name == "fcn-1x4-tanh" and ModelSpec("lenet5").name == "lenet5"


def test_every_task_of_the_registry_draws_its_data():
    """A task's name picks its loader in TASKS, the registry, and nowhere else."""
    assert set(TASKS) == {"mnist", "two_circles"}
    x_tr, y_tr, x_te, y_te = DataSpec("mnist", 20, source="offline").load(0)
    assert x_tr.shape[0] == 20 and x_tr.shape[1:] == x_te.shape[1:] and y_te.ndim == 1
    x_tr, y_tr, x_te, y_te = DataSpec("two_circles", 20, n_test=7).load(0)
    assert x_tr.shape == (20, 2) and x_te.shape == (7, 2)
    with pytest.raises(ValueError, match="choose one of two_circles, mnist"):
        DataSpec("cifar", 10)


def test_validation_data_come_from_the_noisy_source_never_the_test_set():
    spec = DataSpec("two_circles", 40, label_noise=0.3, noise="other", n_val=30, n_test=50)
    x_tr, y_tr, x_val, y_val = spec.load(0)
    assert len(x_tr) == 40 and len(x_val) == 30
    x_te = dataclasses.replace(spec, n_val=0).load(0)[2]
    rows = {r.tobytes() for r in x_tr} | {r.tobytes() for r in x_val}
    assert not rows & {r.tobytes() for r in x_te}  # disjoint from the test set
    assert len({r.tobytes() for r in x_tr} & {r.tobytes() for r in x_val}) == 0


def test_mnist_runs_share_one_test_set_and_draw_their_own_subsets():
    spec = DataSpec("mnist", 200, label_noise=0.5)
    a, b = spec.load(0), spec.load(1)
    assert a[2] is b[2] and a[3] is b[3]  # the same test arrays: batched runs share them
    assert not np.array_equal(a[1], b[1])
    val = dataclasses.replace(spec, n_val=100).load(0)
    assert len(val[0]) == 200 and len(val[2]) == 100 and val[2] is not a[2]
    assert S.mnist_pool("offline") is S.mnist_pool("offline")  # loaded once per source
    assert S.mnist_pool.cache_info().maxsize == 3  # an explicit, bounded cache


def test_a_faces_experiment_is_a_regression_with_the_target_noise_as_data():
    data = FacesSpec(120, target_noise=30.0, n_test=40, size=32)
    x_tr, y_tr, x_te, y_te = data.load(0)
    assert x_tr.shape == (120, 32, 32) and y_tr.shape == (120, 30) and y_te.shape == (40, 30)
    assert np.abs(y_te).max() <= 1.0 and y_tr.dtype == np.float32  # scaled to [-1, 1]
    clean = FacesSpec(120, n_test=40, size=32).load(0)[1]
    # 30 pixels of a 96-pixel image, in units of half the image
    assert (y_tr - clean).std() == pytest.approx(30 / 48, rel=0.05)
    assert data.loss == "mse" and DataSpec("mnist", 10).loss == "cross_entropy"
    model = ModelSpec("lenet5", d_in=32 * 32, d_out=30)
    e = Experiment(model, data, regulariser("none"), Config(epochs=1))
    assert e.program == e.replace(target_noise=10.0).program  # the noise is data
    assert "faces-n120-noise30" in e.key
    again = Experiment.from_json(json.loads(json.dumps(e.to_json())))
    assert again == e and again.key == e.key
    with pytest.raises(ValueError, match="target_noise"):
        FacesSpec(10, target_noise=-1.0)
    with pytest.raises(ValueError, match="d_in = side"):
        _ = ModelSpec("lenet5", d_in=1000).side


def test_a_data_spec_has_no_class_count():
    """The number of classes is the model's ``d_out``; the data spec does not repeat it."""
    assert "n_classes" not in {f.name for f in dataclasses.fields(DataSpec)}
