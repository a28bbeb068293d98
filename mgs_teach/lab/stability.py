r"""Whether a regression run converged, and the stability limit of its steps.

One GD step moves the outputs by :math:`-\eta K \nabla_f L` (the gd_step chapter). With the
MSE averaged over a batch of :math:`B` samples and :math:`C` outputs,
:math:`\nabla_f L = \tfrac{2}{BC}(f - y)`, so near a fixed kernel the residual follows
:math:`r \leftarrow (I - \eta \tfrac{2}{BC} K) r`. It shrinks along every eigenvector of
:math:`K` only while :math:`\eta S < 2`, with the sharpness :math:`S = 2\lambda_{\max}(K)/(BC)`
(the NTK chapter's kernel gradient descent). Each run records
:math:`\lambda_{\max}` of the kernel of its fixed monitoring batch of :math:`M \le B`
samples. The monitoring kernel is a principal submatrix of the kernel of any training batch
that contains those samples, so by Cauchy's interlacing theorem
:math:`\lambda_{\max}(K_B) \ge \lambda_{\max}(K_M)`, and :func:`eta_sharpness`'s
:math:`2\eta\lambda_{\max}(K_M)/(BC)` is a lower bound of :math:`\eta S` (for other
batches of the same data, approximately): where it passes 2, the step is unstable. Since
:math:`\operatorname{tr} K \ge \lambda_{\max}(K)`, a penalty on the trace also bounds
:math:`S`.

:func:`run_verdicts` gives one row per run: whether it diverged (non-finite loss or
parameters), whether it converged by the rule stated there, its final and lowest test MSE, and
its largest :math:`\eta S`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "RUN_KEYS",
    "STABILITY_LIMIT",
    "baseline_ratios",
    "baselines",
    "eta_sharpness",
    "mean_keypoint_mse",
    "run_verdicts",
]

#: Gradient descent on a quadratic diverges once eta S passes 2.
STABILITY_LIMIT = 2.0
#: The columns that name one run in a grid's histories.
RUN_KEYS = ("model", "learning_rate", "target_noise", "regulariser", "strength", "seed")


def eta_sharpness(lr: np.ndarray, lambda_max: np.ndarray, batch_size: int,
                  n_outputs: int) -> np.ndarray:  # fmt: skip
    r"""The lower bound :math:`2\eta\lambda_{\max}(K_M)/(BC) \le \eta S` for the mean squared
    error (exact when the monitoring batch is the training batch).

    Parameters
    ----------
    lr, lambda_max : arrays, shape ``(n,)``
        The learning rate and the monitoring kernel's largest eigenvalue at each record.
    batch_size, n_outputs : int
        The training batch :math:`B` and the outputs :math:`C`.
    """
    return 2.0 * np.asarray(lr, float) * np.asarray(lambda_max, float) / (batch_size * n_outputs)


def run_verdicts(runs: pd.DataFrame, mse_unit: float = 1.0,
                 baseline: float | Mapping[float, float] = np.inf,
                 rise: float = 1.5, ceiling: float = 5.0, n_outputs: int = 30,
                 last: int = 5) -> pd.DataFrame:  # fmt: skip
    """One row per run: ``diverged``, ``converged``, ``learned``, ``final``, ``lowest``,
    ``eta_s_max``.

    The rule: a run **converged** when it did not diverge, its final test MSE is at most
    ``rise`` times its lowest (it did not blow up late), and at most ``ceiling`` times
    ``baseline``, the MSE of predicting every face's mean keypoints (a run that stalls near
    its initial error, about a hundred times the baseline in pixel units, has not
    converged). It **learned** the faces beyond their average, the satisfactory level, when
    its final MSE is below ``baseline``.

    Parameters
    ----------
    runs : pandas.DataFrame
        Histories with :data:`RUN_KEYS`, ``step, lr, test_loss, lambda_max, batch_size,
        status``.
    mse_unit : float
        Squared pixels in one unit of ``test_loss``.
    baseline : float or mapping
        The mean-keypoint predictor's test MSE, px² (:func:`mean_keypoint_mse`), or one per
        target noise (:func:`baselines`; a noise it lacks has no ceiling).
    rise, ceiling : float
    n_outputs : int
    last : int
        The final MSE is the mean of the last ``last`` records (the paper's tables' final).

    Returns
    -------
    pandas.DataFrame
        :data:`RUN_KEYS` plus the six columns above, MSEs in px² (NaN for a diverged run).
    """
    keys = [k for k in RUN_KEYS if k in runs.columns]
    rows = []
    for key, g in runs.groupby(keys, sort=False):
        g = g.sort_values("step")
        loss = g["test_loss"].to_numpy(float) * mse_unit
        diverged = bool(g["status"].iloc[-1] != "finished") or not np.isfinite(loss).all()
        final = float(np.mean(loss[-last:])) if not diverged else np.nan
        lowest = float(np.min(loss)) if not diverged else np.nan
        lam = g["lambda_max"] if "lambda_max" in g else pd.Series(np.nan, index=g.index)
        eta_s = eta_sharpness(g["lr"], lam, int(g["batch_size"].iloc[0]), n_outputs)
        base = (baseline.get(float(g["target_noise"].iloc[0]), np.inf)
                if isinstance(baseline, Mapping) else baseline)  # fmt: skip
        converged = not diverged and final <= rise * lowest and final <= ceiling * base
        rows.append(dict(zip(keys, key), diverged=diverged, converged=converged,
                         learned=not diverged and final < base, final=final, lowest=lowest,
                         eta_s_max=float(np.nanmax(eta_s)) if np.isfinite(eta_s).any()
                         else np.nan))  # fmt: skip
    return pd.DataFrame(rows)


def mean_keypoint_mse(data: Any, seed: int = 0) -> float:
    """The test MSE (px²) of predicting, for every face, the training targets' mean: what a
    network achieves that learned only the average face.

    Parameters
    ----------
    data : mgs_teach.lab.specs.FacesSpec
    seed : int
    """
    _, y_train, _, y_test = data.load(seed)
    guess = np.asarray(y_train, float).mean(axis=0)
    return float(np.mean((np.asarray(y_test, float) - guess) ** 2) * data.mse_unit)


def baselines(plan: Any, n_train: int, noises: Any) -> dict[float, float]:
    """``{target noise: mean_keypoint_mse}`` on the data of a regression plan (seed 0).

    Parameters
    ----------
    plan : mgs_teach.lab.plan.MNISTPlan
        A regression plan (``task="faces"``).
    n_train : int
    noises : iterable of float
    """
    model = plan.tables[0].model
    return {float(p): mean_keypoint_mse(plan.base(model, n_train, p, 1).data) for p in noises}


def baseline_ratios(finals: Any, baselines: dict[float, float]) -> tuple[float, float]:
    """The smallest and largest ratio of a final test MSE to the mean-keypoint baseline of its
    noise scale: below 1, a network learned more than the average face.

    Parameters
    ----------
    finals : iterable of (noise, final MSE in px²)
        Diverged entries (NaN or infinite finals) are left out.
    baselines : dict
        :func:`baselines`.
    """
    ratios = [f / baselines[float(p)] for p, f in finals if np.isfinite(f)]
    if not ratios:
        raise ValueError("no finite final MSE to compare with the baseline")
    return float(min(ratios)), float(max(ratios))
