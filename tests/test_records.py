import jax.numpy as jnp
import numpy as np
import pytest

from mgs_teach import records as R
from mgs_teach import train as T
from mgs_teach.penalties import regulariser
from tests.helpers import circles, make_model

data = pytest.fixture(scope="module", name="data")(circles)


def test_evaluate_in_chunks_equals_one_pass(data):
    apply_fn, _, params = T.build(make_model, regulariser("none"), 0)
    x, y = jnp.asarray(data[2]), jnp.asarray(data[3])
    whole = R.evaluate(apply_fn, params, x, y, chunk=len(x))
    chunked = R.evaluate(apply_fn, params, x, y, chunk=7)  # 32 = 4 x 7 + 4: padding masked
    np.testing.assert_allclose(whole, chunked, rtol=1e-6)
    logits = apply_fn(params, x)
    assert float(whole[1]) == pytest.approx(float(jnp.mean(jnp.argmax(logits, -1) == y)))


def test_record_steps_are_evenly_spaced_and_end_at_the_total():
    assert R.record_steps(16, 5).tolist() == [0, 4, 8, 12, 16]
    assert R.record_steps(3, 10).tolist() == [0, 1, 2, 3]  # fewer steps than records
    steps = R.record_steps(3255, 35)
    assert steps[0] == 0 and steps[-1] == 3255 and len(steps) == 35
    assert np.ptp(np.diff(steps)) <= 1
