"""What the paper reports, as data: Tables 1, 2 and D.2 (Szolnoky et al., 2022).

Each entry is ``(final, sd, max)`` in percent, as the paper prints "final ± sd (max)":
*final* is the mean over runs of each run's last five records, *max* the maximum of the
run-averaged curve (Appendix D.1). The regression tables (:data:`REGRESSION_TABLES`) give
the test MSE, and their parenthesised number is the *lowest* point of the curve.

::

    from mgs_teach import paper
    paper.TABLES["table1"][0.6]["MGS"]     # (88.4, 1.4, 89.1)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["METHODS", "NOISES", "REGRESSION_NOISES", "REGRESSION_TABLES", "TABLES", "frame",
           "noise_fit"]  # fmt: skip

#: The columns of both tables, in the paper's order.
METHODS = ("Unregularised", "Dropout", "Weight", "Loss grad.", "MGS")
#: Their noise levels (fractions of labels "randomly flipped").
NOISES = (0.0, 0.3, 0.6, 0.8)

_TABLE1 = """
89.6 1.3 90.2 | 95.8 0.5 95.9 | 83.1 9.6 87.1 | 95.1 0.5 95.1 | 95.2 0.3 95.2
62.0 2.5 85.2 | 80.9 2.9 92.0 | 72.2 4.2 79.2 | 88.7 2.0 92.0 | 93.1 0.7 93.4
37.3 2.9 73.7 | 59.2 4.1 83.7 | 10.0 0.4 62.3 | 80.7 5.9 81.4 | 88.4 1.4 89.1
23.9 2.4 62.4 | 39.5 4.7 56.6 | 10.1 0.5 23.5 | 15.1 5.4 17.2 | 74.5 4.0 75.1
"""
_TABLE_D2 = """
82.1 1.9 82.3 | 79.5 1.2 80.0 | 72.8 9.7 79.6 | 74.9 22.0 79.8 | 84.6 1.2 84.8
59.5 3.7 75.3 | 73.7 2.5 75.5 | 58.7 4.0 74.6 | 70.3 4.3 77.4 | 77.7 1.8 79.4
36.9 2.8 65.6 | 55.6 4.8 57.1 | 10.0 0.5 63.1 | 41.2 6.4 43.4 | 67.8 3.4 70.0
24.8 2.7 53.0 | 26.5 3.7 29.6 | 10.1 0.6 41.3 | 12.1 2.5 14.8 | 51.4 3.8 55.0
"""


_TABLE2 = """
68.2 36.7 54.2 | 14.9 2.2 13.9 | 113.2 53.2 90.3 | 212.4 174.1 104.0 | 14.1 1.0 13.8
54.8 24.0 45.2 | 15.4 2.2 14.4 | 92.6 46.5 69.0 | 235.2 188.6 140.5 | 14.3 1.1 13.6
102.0 116.2 48.2 | 16.6 2.2 15.3 | 83.8 52.7 49.3 | 266.1 233.1 115.9 | 15.3 1.3 14.7
94.8 131.5 39.0 | 19.7 2.8 17.7 | 70.6 58.0 41.9 | 229.4 225.7 151.5 | 17.8 2.0 16.9
"""
_TABLE_D2_REGRESSION = """
281.1 264.6 181.5 | 208.2 220.9 74.3 | 276.4 262.3 180.2 | 337.9 303.8 184.7 | 10.6 0.3 10.5
305.7 344.7 176.8 | 240.2 291.1 191.7 | 305.2 342.2 175.0 | 335.3 332.1 208.2 | 11.0 0.5 10.7
325.2 371.7 158.6 | 287.1 321.9 88.0 | 328.5 379.4 157.7 | 353.1 382.7 174.2 | 13.6 1.3 12.8
390.8 453.2 162.6 | 210.4 270.9 91.7 | 393.0 454.2 162.2 | 411.8 442.8 175.6 | 22.4 2.7 20.9
"""
#: The regression tables' noise scales (the standard deviation of the target noise).
REGRESSION_NOISES = (0.0, 10.0, 20.0, 30.0)


def _parse(text: str, noises: tuple = NOISES) -> dict[float, dict[str, tuple[float, float, float]]]:
    rows = [line for line in text.strip().splitlines()]
    return {p: {m: tuple(float(v) for v in cell.split())
                for m, cell in zip(METHODS, row.split("|"))}
            for p, row in zip(noises, rows)}  # fmt: skip


#: ``TABLES[name][noise][method] = (final, sd, max)``: ``"table1"`` is the paper's Table 1
#: (LeNet-5), ``"fcn_table"`` its Table D.2 (FCN 6 x 300); 3,000 training samples, 400
#: epochs, 10 runs.
TABLES = {"table1": _parse(_TABLE1), "fcn_table": _parse(_TABLE_D2)}
#: ``REGRESSION_TABLES[name][noise][method] = (final, sd, lowest)``, test MSE on the Facial
#: Keypoints: ``"table2"`` is Table 2 (LeNet-5, 50 epochs), ``"fcn_regression"`` the
#: regression half of Table D.2 (FCN 6 x 300, 400 epochs).
REGRESSION_TABLES = {"table2": _parse(_TABLE2, REGRESSION_NOISES),
                     "fcn_regression": _parse(_TABLE_D2_REGRESSION, REGRESSION_NOISES)}  # fmt: skip


def frame(name: str) -> pd.DataFrame:
    """One table as a tidy frame: ``label_noise, method, final, sd, max`` (for a regression
    table ``target_noise`` and ``lowest`` instead of ``label_noise`` and ``max``)."""
    if name in REGRESSION_TABLES:
        return pd.DataFrame([dict(target_noise=p, method=m, final=f, sd=s, lowest=x)
                             for p, row in REGRESSION_TABLES[name].items()
                             for m, (f, s, x) in row.items()])  # fmt: skip
    return pd.DataFrame([dict(label_noise=p, method=m, final=f, sd=s, max=x)
                         for p, row in TABLES[name].items()
                         for m, (f, s, x) in row.items()])  # fmt: skip


def noise_fit(n_classes: int = 10) -> pd.DataFrame:
    """Which reading of "randomly flipped" the paper's unregularised numbers fit.

    A network trained long enough without regularisation ends near a memoriser of its
    training labels: its accuracy at noise ``p`` is about its clean accuracy times the chance
    that a label is still right. That chance is ``1 - p`` if a flipped label always goes to
    another class (``"other"``), and ``1 - p + p / C`` if it is redrawn over all ``C``
    classes, the true one included (``"uniform"``). This compares both with the paper's
    unregularised finals, as fractions of their clean (0 % noise) final, in both tables.

    Returns
    -------
    pandas.DataFrame
        One row per table and noise level: the paper's ratio, each convention's prediction
        and its error.
    """
    rows = []
    for name, table in TABLES.items():
        clean = table[0.0]["Unregularised"][0]
        for p in NOISES[1:]:
            ratio = table[p]["Unregularised"][0] / clean
            rows.append(dict(table=name, label_noise=p, paper=ratio, other=1 - p,
                             uniform=1 - p + p / n_classes))  # fmt: skip
    out = pd.DataFrame(rows)
    for c in ("other", "uniform"):
        out[f"error_{c}"] = out[c] - out["paper"]
    return out


def squared_error(fit: pd.DataFrame) -> dict[str, float]:
    """Sum of squared errors of each convention in :func:`noise_fit`'s table."""
    return {c: float(np.sum(fit[f"error_{c}"] ** 2)) for c in ("other", "uniform")}


__all__ += ["squared_error"]
