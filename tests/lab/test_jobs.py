"""A group of runs is checked before it trains: one program, one data shape."""

import jax
import numpy as np
import pytest

from mgs_teach import train as T
from mgs_teach.data import two_circles_task
from mgs_teach.lab import engine, jobs

from .helpers import CFG, jobs_for, make_model


def test_runs_of_one_group_must_share_a_program():
    group = jobs_for("none")
    other = T.Config(**{**CFG.__dict__, "batch_size": 8})
    with pytest.raises(ValueError, match="share everything but the strength"):
        jobs.check_jobs([group[0], group[0]._replace(config=other)])
    with pytest.raises(ValueError, match="share data shapes"):
        jobs.check_jobs([group[0], group[0]._replace(data=two_circles_task(80, 32))])
    with pytest.raises(ValueError, match="at least one job"):
        jobs.check_jobs([])
    with pytest.raises(ValueError, match="share everything but the strength"):  # the engine
        engine.train_runs(make_model, [group[0], group[0]._replace(config=other)],
                          progress=False)  # fmt: skip


def test_a_group_knows_whether_its_runs_share_a_test_set():
    """Strengths, seeds and learning rates differ within a group; the program key does not."""
    group = jobs_for("weight_decay")
    reg, config, shared = jobs.check_jobs(group)
    assert (reg, config) == T.program_key(group[0].reg, group[0].config)
    assert not shared  # each run its own two circles
    same = [j._replace(data=group[0].data) for j in group]
    assert jobs.check_jobs(same)[2]


def test_the_group_arrays_stack_the_runs_and_their_numbers():
    group = jobs_for("weight_decay")
    x_tr, y_tr, x_te, y_te, monitor, hypers = jobs.group_arrays(group, [0, 2], CFG, False, None)
    assert x_tr.shape == (2, 64, 2) and x_te.shape == (2, 32, 2)
    np.testing.assert_array_equal(x_tr[1], group[2].data[0])
    assert monitor.shape == (2, CFG.monitor_size, 2)
    np.testing.assert_allclose(hypers.strength, [j.reg.strength for j in (group[0], group[2])])
    np.testing.assert_allclose(hypers.learning_rate, [0.2, 0.1])
    assert jobs.mesh_of(jax.devices()[:1]) is None  # one device: nothing to shard
