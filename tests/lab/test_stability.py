"""The stability limit eta S < 2, the run verdicts, and the mean-keypoint baseline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mgs_teach.lab.specs import FacesSpec
from mgs_teach.lab.stability import (
    STABILITY_LIMIT,
    baseline_ratios,
    eta_sharpness,
    mean_keypoint_mse,
    run_verdicts,
)


def _gd_residual(x: np.ndarray, y: np.ndarray, eta: float, steps: int) -> float:
    """Full-batch GD on the mean squared error of a linear model f = x W (B samples, C outputs):
    the final residual's norm."""
    w = np.zeros((x.shape[1], y.shape[1]))
    for _ in range(steps):
        r = x @ w - y
        w -= eta * x.T @ (2 * r / r.size)  # gradient of mean((xW - y)^2)
    return float(np.linalg.norm(x @ w - y))


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), below=st.booleans())
def test_gradient_descent_converges_below_the_limit_and_diverges_above(seed, below):
    """For a linear model the kernel is exact: K = (x xᵀ) ⊗ I_C, and eta S = 2 is the edge."""
    rng = np.random.default_rng(seed)
    b, d, c = 6, 10, 3
    x, y = rng.normal(size=(b, d)), rng.normal(size=(b, c))
    lam = np.linalg.eigvalsh(np.kron(x @ x.T, np.eye(c)))[-1]
    s = float(eta_sharpness(1.0, lam, b, c))  # eta = 1: S itself
    eta = (0.9 if below else 1.1) * STABILITY_LIMIT / s
    start = float(np.linalg.norm(y))
    end = _gd_residual(x, y, eta, 400)
    if below:
        assert end < start  # converges (to the least-squares residual, which is below |y|)
    else:
        assert end > 1e3 * start


def _history(final: float, lowest: float, status: str = "finished", lam: float = 1.0):
    loss = [5 * final, lowest, *([final] * 5)]
    return pd.DataFrame(dict(model="fcn", learning_rate=0.01, target_noise=0.0,
                             regulariser="none", strength=0.0, seed=0, step=range(7),
                             lr=0.01, test_loss=loss, lambda_max=lam, batch_size=4,
                             status=status))  # fmt: skip


@pytest.mark.parametrize("final, lowest, status, baseline, verdict", [
    (10.0, 9.0, "finished", 20.0, (False, True, True)),
    (10.0, 5.0, "finished", 20.0, (False, False, True)),  # blew up late: 10 > 1.5 * 5
    (30.0, 29.0, "finished", 20.0, (False, True, False)),  # settled, above the average face
    (101.0, 100.0, "finished", 20.0, (False, False, False)),  # stalled: 5 times the baseline
    (10.0, 9.0, "diverged", 20.0, (True, False, False)),
])  # fmt: skip
def test_the_run_verdicts_follow_their_stated_rule(final, lowest, status, baseline, verdict):
    row = run_verdicts(_history(final, lowest, status), baseline=baseline).iloc[0]
    assert (row["diverged"], row["converged"], row["learned"]) == verdict
    if status == "finished":
        assert row["final"] == pytest.approx(final) and row["lowest"] == pytest.approx(lowest)
    else:
        assert np.isnan(row["final"])


def test_the_verdicts_measure_eta_s_in_pixels_and_on_the_monitoring_batch():
    row = run_verdicts(_history(1.0, 1.0, lam=600.0), mse_unit=4.0).iloc[0]
    assert row["final"] == pytest.approx(4.0)
    assert row["eta_s_max"] == pytest.approx(2 * 0.01 * 600 / (4 * 30))


def test_the_mean_keypoint_baseline_is_the_same_in_both_units():
    scaled = FacesSpec(40, n_test=30, size=16, targets="scaled")
    pixels = FacesSpec(40, n_test=30, size=16, targets="pixels")
    _, y, _, y_test = pixels.load(0)
    assert y_test.max() > 20  # pixels of a 96-pixel image, not [-1, 1]
    expected = float(np.mean((y_test - y.mean(axis=0)) ** 2))
    assert mean_keypoint_mse(pixels) == pytest.approx(expected, rel=1e-5)
    assert mean_keypoint_mse(scaled) == pytest.approx(expected, rel=1e-4)


def test_a_faces_spec_refuses_an_unknown_unit():
    with pytest.raises(ValueError, match="targets"):
        FacesSpec(10, targets="metres")


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), m=st.integers(1, 7))
def test_the_monitoring_kernel_bounds_the_batch_kernel_from_below(seed, m):
    """Cauchy interlacing: a principal submatrix's top eigenvalue is at most the matrix's, so
    eta_sharpness from a monitoring batch inside the training batch is a lower bound of eta S."""
    rng = np.random.default_rng(seed)
    jac = rng.normal(size=(8 * 3, 40))  # 8 samples x 3 outputs, 40 parameters
    k_batch = jac @ jac.T
    k_monitor = k_batch[: m * 3, : m * 3]  # the first m samples
    lower = eta_sharpness(0.1, np.linalg.eigvalsh(k_monitor)[-1], 8, 3)
    exact = eta_sharpness(0.1, np.linalg.eigvalsh(k_batch)[-1], 8, 3)
    assert lower <= exact * (1 + 1e-12)


def test_the_baseline_ratios_leave_out_diverged_entries():
    finals = [(0.0, 17.0), (30.0, 9.0), (30.0, float("nan")), (0.0, float("inf"))]
    assert baseline_ratios(finals, {0.0: 17.0, 30.0: 18.0}) == (0.5, 1.0)
    with pytest.raises(ValueError, match="no finite"):
        baseline_ratios([(0.0, float("nan"))], {0.0: 17.0})
