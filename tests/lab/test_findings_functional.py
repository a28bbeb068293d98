"""Appendix A.5's functional penalty: the RKHS norm, its timing and the chapter's texts."""

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from flax import nnx
from jax.flatten_util import ravel_pytree

from mgs_teach.kernel import float64
from mgs_teach.lab.findings.functional import (
    PENALTIES,
    functional_findings,
    growth_exponent,
    penalty_seconds,
    rkhs_norm,
)
from mgs_teach.models import FCN, functional


def tiny_apply(params, x):
    """A hand-written two-layer tanh network on a plain pytree: (B, 3) -> (B, 2)."""
    return jnp.tanh(x @ params["w1"] + params["b1"]) @ params["w2"] + params["b2"]


def tiny_params(seed=0):
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    return {
        "w1": jax.random.normal(k1, (3, 7), jnp.float64),
        "b1": 0.1 * jax.random.normal(k2, (7,), jnp.float64),
        "w2": jax.random.normal(k3, (7, 2), jnp.float64) / 3,
        "b2": jnp.zeros(2, jnp.float64),
    }


def brute_force(apply_fn, params, x, jitter):
    """f' (K + jitter I)^-1 f in numpy, K from the Jacobian of all outputs in flat parameters."""
    flat, unravel = ravel_pytree(params)
    jac = np.asarray(jax.jacobian(lambda t: apply_fn(unravel(t), x).reshape(-1))(flat))
    f = np.asarray(apply_fn(params, x)).reshape(-1)
    kernel = jac @ jac.T
    return float(f @ np.linalg.solve(kernel + jitter * np.eye(len(f)), f))


@pytest.mark.parametrize("jitter", [1e-3, 0.5])
def test_rkhs_norm_matches_brute_force_on_a_pytree_model(jitter):
    with float64():
        params = tiny_params()
        x = jax.random.normal(jax.random.key(5), (4, 3), jnp.float64)
        got = float(rkhs_norm(tiny_apply, params, x, jitter=jitter))
        assert got == pytest.approx(brute_force(tiny_apply, params, x, jitter), rel=1e-9)
        assert got > 0


def test_rkhs_norm_matches_brute_force_on_the_structured_path():
    with float64():
        apply_fn, params = functional(FCN(6, 3, depth=2, width=5, rngs=nnx.Rngs(0)))
        params = jax.tree.map(lambda a: a.astype(jnp.float64), params)
        x = jax.random.normal(jax.random.key(1), (3, 6), jnp.float64)
        got = float(jax.jit(lambda p: rkhs_norm(apply_fn, p, x))(params))
        assert got == pytest.approx(brute_force(apply_fn, params, x, 1e-3), rel=1e-8)


def test_rkhs_norm_refuses_a_non_positive_jitter():
    with float64(), pytest.raises(ValueError, match="jitter"):
        rkhs_norm(tiny_apply, tiny_params(), jnp.ones((2, 3)), jitter=0.0)


def test_penalty_seconds_times_every_penalty_at_every_batch():
    apply_fn, params = functional(FCN(4, 3, depth=1, width=8, rngs=nnx.Rngs(0)))
    x = jax.random.normal(jax.random.key(0), (4, 4))
    rows = penalty_seconds(apply_fn, params, x, [2, 4], repeats=1)
    assert set(rows["penalty"]) == set(PENALTIES)
    assert sorted(rows["size"].unique()) == [6, 12]  # B * C
    assert (rows["seconds"] > 0).all() and (rows["seconds"] <= rows["median"]).all()
    with pytest.raises(ValueError, match="inputs"):
        penalty_seconds(apply_fn, params, x, [8])


def test_growth_exponent_reads_power_laws():
    sizes = np.array([10, 20, 40, 80])
    assert growth_exponent(sizes, 2e-9 * sizes**3) == pytest.approx(3.0)
    assert growth_exponent(sizes, 5e-6 * sizes) == pytest.approx(1.0)
    assert growth_exponent(sizes[::-1], 5e-6 * sizes[::-1] ** 2) == pytest.approx(2.0)  # unsorted
    # a fixed overhead hides the cubic term at small sizes; the largest sizes show it
    overhead = 1e-3 + 1e-9 * sizes**3
    assert growth_exponent(sizes, overhead, last=2) > growth_exponent(sizes, overhead, last=4)
    with pytest.raises(ValueError):
        growth_exponent([10], [1.0])


def crafted(rkhs_power, trace_power=1.0, logdet_factor=1.0):
    sizes = [80, 320, 1280]
    rows = []
    for n in sizes:
        rows += [
            {"penalty": "trace", "size": n, "seconds": 1e-6 * n**trace_power},
            {"penalty": "logdet", "size": n, "seconds": logdet_factor * 1e-10 * n**3},
            {"penalty": "rkhs", "size": n, "seconds": 1e-10 * n**rkhs_power},
        ]
    return pd.DataFrame(rows)


def test_texts_of_a_cubic_solve():
    found = functional_findings(crafted(3.0))
    texts = found.texts()
    assert texts["sizes"] == "80, 320 and 1,280"
    assert texts["largest"] == "1,280" and texts["size_step"] == "4"
    assert texts["rkhs_growth"] == "64×" and texts["trace_growth"] == "4×"
    assert texts["rkhs_exponent"] == "3" and texts["trace_exponent"] == "1"
    assert texts["rkhs_grows"].startswith("about cubically")
    assert texts["trace_grows"].startswith("about linearly")
    assert texts["rkhs_ms"] == "210"  # 1e-10 * 1280**3 s = 209.7 ms
    assert texts["rkhs_over_trace"] == "164×"  # 209.7 ms / 1.28 ms
    assert texts["rkhs_vs_logdet"].startswith("about as long as the log-det")
    assert texts["verdict"].startswith("the measurement bears the paper out")
    assert "as the log-det's does" in texts["verdict"] and "linearly" in texts["verdict"]
    table = found.table()
    assert list(table.index) == [80, 320, 1280] and table.shape == (3, 3)


def test_texts_when_the_solve_does_not_show():
    texts = functional_findings(crafted(2.0, logdet_factor=10.0)).texts()
    assert texts["rkhs_grows"].startswith("about quadratically")
    assert texts["verdict"].startswith("at these sizes the solve does not dominate yet")
    assert "quadratically" in texts["verdict"] and "linearly" in texts["verdict"]
    assert not texts["rkhs_vs_logdet"].startswith("about as long")


def test_texts_when_the_trace_grows_too_or_the_logdet_does_not():
    texts = functional_findings(crafted(4.0, trace_power=2.0)).texts()
    assert texts["rkhs_grows"].startswith("faster than cubically")
    assert "but here the trace's too grows about quadratically" in texts["verdict"]
    rows = crafted(3.0)
    rows.loc[rows.penalty == "logdet", "seconds"] = 1e-6 * rows["size"] ** 2
    verdict = functional_findings(rows).texts()["verdict"]
    assert verdict.startswith("the measurement bears the paper out")
    assert "the log-det's about quadratically" in verdict


def test_findings_refuse_ragged_timings():
    rows = crafted(3.0)
    with pytest.raises(ValueError, match="same"):
        functional_findings(rows[~((rows.penalty == "rkhs") & (rows["size"] == 80))])
    with pytest.raises(ValueError, match="same"):
        functional_findings(rows[rows["size"] == 80])
