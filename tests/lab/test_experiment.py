"""Experiments are composed values; their keys hash a canonical, versioned JSON."""

import hashlib
import json

import pytest

from mgs_teach.lab import experiment as X
from mgs_teach.lab.experiment import Experiment
from mgs_teach.lab.specs import DataSpec, ModelSpec
from mgs_teach.penalties import Regulariser, regulariser

from .helpers import BASE, grid


def test_replace_routes_each_field_to_its_part():
    e = BASE.replace(label_noise=0.6, epochs=5, width=16, regulariser="mgs_trace", strength=1e-3,
                     method="hutchinson")  # fmt: skip
    assert e.data.label_noise == 0.6 and e.config.epochs == 5 and e.model.width == 16
    assert e.regulariser == regulariser("mgs_trace", 1e-3, method="hutchinson")
    kept = BASE.replace(regulariser=regulariser("cyclical_lr", 0.5, cycle_steps=7))
    assert kept.replace(regulariser="cyclical_lr", strength=0.9).regulariser.cycle_steps == 7
    with pytest.raises(ValueError, match="no part of an Experiment has"):
        BASE.replace(colour="red")


def test_keys_are_stable_and_distinct():
    a, b = grid()[0], grid()[1]
    assert a.key == BASE.replace().key and a.key != b.key
    assert a.key.startswith("fcn-1x8-two_circles-n48-noise0.2-none")
    assert Experiment.from_json(json.loads(json.dumps(b.to_json()))) == b


def test_the_key_hashes_the_canonical_versioned_json():
    canonical = json.loads(BASE.canonical_json())
    assert canonical["key_version"] == X.KEY_VERSION
    assert canonical == X.canonical({"key_version": X.KEY_VERSION, **BASE.to_json()})
    digest = hashlib.sha1(BASE.canonical_json().encode()).hexdigest()[:10]
    assert BASE.key.endswith("-" + digest)
    assert X.canonical({"a": (1, 2.5, True, None, "s")}) == {"a": [1.0, 2.5, True, None, "s"]}


def test_equal_experiments_with_int_or_float_numbers_have_equal_keys():
    as_int = BASE.replace(label_noise=0, learning_rate=1, strength=0, circle_noise=0)
    as_float = BASE.replace(label_noise=0.0, learning_rate=1.0, strength=0.0, circle_noise=0.0)
    assert as_int == as_float
    assert as_int.canonical_json() == as_float.canonical_json()
    assert as_int.key == as_float.key


def test_integer_fields_given_as_floats_keep_the_key():
    """``DataSpec(n_train=48.0) == DataSpec(n_train=48)``: equal experiments, one key (the
    canonical JSON already agrees; the readable prefix must too)."""
    floats = BASE.replace(n_train=48.0, width=8.0, depth=1.0, epochs=2.0)
    assert floats == BASE and floats.canonical_json() == BASE.canonical_json()
    assert floats.key == BASE.key


@pytest.mark.parametrize("change", [
    dict(label_noise=0.3), dict(n_train=50), dict(n_val=8), dict(circle_noise=0.2),
    dict(noise="uniform"), dict(width=9), dict(depth=2), dict(activation="tanh"),
    dict(regulariser="weight_decay"), dict(strength=0.5), dict(jitter=1e-2),
    dict(epochs=3), dict(batch_size=8), dict(learning_rate=0.2), dict(monitor_size=4),
])  # fmt: skip
def test_a_changed_field_changes_the_key(change):
    changed = BASE.replace(**change)
    assert changed != BASE and changed.key != BASE.key
    assert changed.key.rsplit("-", 1)[1] != BASE.key.rsplit("-", 1)[1]  # the hash, not the prefix


def test_a_new_key_version_changes_every_key(monkeypatch):
    key = BASE.key
    monkeypatch.setattr(X, "KEY_VERSION", X.KEY_VERSION + 1)
    assert BASE.key != key and BASE.key.rsplit("-", 1)[0] == key.rsplit("-", 1)[0]


def test_the_key_does_not_depend_on_how_the_parts_print(monkeypatch):
    key, program = BASE.key, BASE.program
    for part in (ModelSpec, DataSpec, Regulariser, type(BASE.config), Experiment):
        monkeypatch.setattr(part, "__repr__", lambda self: "<printed otherwise>")
    assert repr(BASE.model) == "<printed otherwise>"
    assert BASE.key == key and BASE.program == program


def test_runs_that_differ_only_in_numbers_share_a_program():
    """Strength, learning rate and label noise are data; epochs and batch size are not."""
    a = BASE.replace(regulariser="weight_decay", strength=0.1)
    assert a.program == a.replace(strength=0.3, learning_rate=0.01, label_noise=0.5).program
    assert a.program != a.replace(epochs=3).program != a.replace(batch_size=8).program
    assert a.program != a.replace(regulariser="dropout", strength=0.3).program


def test_an_experiment_needs_a_valid_regulariser():
    with pytest.raises(ValueError, match="adam needs"):
        BASE.replace(regulariser="adam")


def test_fields_are_the_columns_of_every_part():
    fields = grid()[1].fields()
    assert fields["model"] == "fcn-1x8" and fields["regulariser"] == "weight_decay"
    assert fields["strength"] == 0.1 and fields["data_task"] == "two_circles"
    assert fields["n_train"] == 48 and fields["epochs"] == 2 and fields["label_noise"] == 0.2
