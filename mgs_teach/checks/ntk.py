"""Self-checks for the chapter \\"MGS as the empirical NTK\\".

Every check is data for :func:`mgs_teach.checks._common.check`: fixed cases, the expected
answers computed here, and hints for the usual mistakes. The hints never contain the
expected numbers.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.linalg import expm

from mgs_teach.checks._common import Case, _number, _shape, check

__all__ = ["half_life", "kernel_gd_residual", "linear_kernel", "predicted_loss"]


def _psd(n: int, rng: np.random.Generator) -> np.ndarray:
    g = rng.standard_normal((n, n + 2))
    return g @ g.T / n


def _power(
    kernel: np.ndarray, r0: np.ndarray, eta: float, t: int, sign: float = -1.0
) -> np.ndarray:
    return np.linalg.matrix_power(np.eye(len(kernel)) + sign * eta * kernel, t) @ r0


def kernel_gd_residual(fn: Callable[..., Any]) -> bool:
    """Check ``fn(K, r0, eta, t) -> r_t``, the residual after ``t`` steps of kernel gradient
    descent, ``r_{s+1} = (I - eta K) r_s``; shape ``(n,)``. Cases include ``t = 0``."""
    rng = np.random.default_rng(41)
    cases = []
    for n, t in ((5, 3), (8, 20), (4, 0), (6, 1)):
        kernel, r0 = _psd(n, rng), rng.standard_normal(n)
        eta = 0.5 / np.linalg.eigvalsh(kernel)[-1]
        cases.append(Case((kernel, r0, eta, t), _power(kernel, r0, eta, t)))
    return check(
        "kernel gradient descent", fn, cases,
        shape_hint="return the residual, a vector with one entry per row of K.",
        diagnoses=[
            (lambda k, r, eta, t: _power(k, r, eta, t, sign=1.0) if t else None,
             "the residual shrinks: each step subtracts eta K r."),
            (lambda k, r, eta, t: _power(k, r, eta, t - 1) if t else None,
             "count the steps again: after t steps the factor (I - eta K) appears t times."),
            (lambda k, r, eta, t: expm(-eta * t * k) @ r if t else None,
             "that is gradient flow, the continuous-time limit; gradient descent takes t "
             "discrete steps."),
        ],
        hint="apply r -> (I - eta K) r t times, or diagonalise K once and raise each "
             "eigenvalue's factor 1 - eta lambda to the power t.",
        rtol=1e-6, atol=1e-9,
    )  # fmt: skip


def _half_life(lam: float, eta: float) -> int:
    factor = abs(1.0 - eta * lam)
    return 1 if factor == 0.0 else math.ceil(math.log(0.5) / math.log(factor))


def half_life(fn: Callable[[float, float], Any]) -> bool:
    """Check ``fn(lam, eta) -> t``, the fewest steps after which a mode's amplitude
    ``|1 - eta lam|^t`` is at most half its start, for ``0 < eta lam < 2``."""
    cases = [Case((lam, eta), _half_life(lam, eta))
             for lam, eta in ((1.0, 1e-3), (50.0, 1e-2), (2.0, 0.5), (3.0, 0.5), (10.0, 0.19),
                              (0.3, 0.1))]  # fmt: skip

    def whole(got: Any) -> bool:
        integral = isinstance(got, numbers.Integral) and not isinstance(got, bool)
        return integral or (isinstance(got, np.ndarray) and got.shape == ()
                            and np.issubdtype(got.dtype, np.integer))  # fmt: skip

    def exact_int(got: Any, case: Case) -> bool:
        return whole(got) and int(got) == case.expected

    return check(
        "half-life of a mode", fn, cases,
        compare=exact_int,
        symptoms=[
            (lambda got, lam, eta: eta * lam == 1 and not exact_int(got, Case((), 1)),
             "when eta lam = 1 the factor is 0: one step removes the mode (and log 0 is "
             "undefined, so treat this case on its own)."),
            (lambda got, lam, eta: _number(got) is not None and _number(got) != round(_number(got)),
             "a number of steps is a whole number: round up."),
            (lambda got, lam, eta: not whole(got) and _number(got) == _half_life(lam, eta),
             "right value, but return an int (math.ceil gives one; np.ceil returns a float)."),
            (lambda got, lam, eta: _number(got) == math.floor(math.log(0.5) / math.log(
                abs(1 - eta * lam))), "after floor(...) steps the amplitude is still above "
                                      "one half: round up."),
            (lambda got, lam, eta: eta * lam > 1,
             "when eta lam > 1 the factor 1 - eta lam is negative: the sign alternates, the "
             "size is |1 - eta lam|^t."),
        ],
        hint="solve |1 - eta lam|^t <= 1/2 for t with logarithms, and take the smallest "
             "whole t; ln 2 / (eta lam) is only the small-step approximation.",
    )  # fmt: skip


def _linear_kernel(x: np.ndarray, c: int) -> np.ndarray:
    return np.kron(x @ x.T + 1.0, np.eye(c))


def linear_kernel(fn: Callable[[np.ndarray, int], Any]) -> bool:
    """Check ``fn(x, n_outputs) -> K`` of the linear model ``f(x) = W x + b``, sample-major;
    ``x`` is ``(B, d)`` and ``K`` is ``(B * C, B * C)``."""
    rng = np.random.default_rng(42)
    cases = [Case((x, c), _linear_kernel(x, c))
             for x, c in ((rng.standard_normal((4, 3)), 2), (rng.standard_normal((3, 5)), 1),
                          (rng.standard_normal((2, 2)), 3))]  # fmt: skip
    return check(
        "kernel of a linear model", fn, cases,
        shape_hint=lambda case, got: (
            f"for B = {len(case.args[0])} samples and C = {case.args[1]} outputs return a "
            f"(B*C, B*C) matrix (got shape {_shape(got)})."),
        diagnoses=[
            (lambda x, c: np.kron(x @ x.T, np.eye(c)),
             "the bias b is a parameter too: its gradient adds 1 to every x_i . x_j."),
            (lambda x, c: np.kron(np.eye(c), x @ x.T + 1.0) if c > 1 else None,
             "the rows are sample-major: row i*C + c is output c of sample i."),
            (lambda x, c: np.kron(x @ x.T + 1.0, np.ones((c, c)))
             if c > 1 else None,
             "output c depends only on row c of W and on b_c: two different outputs have "
             "orthogonal gradients."),
        ],
        hint="the gradient of f_c(x_i) with respect to W is e_c x_i^T and with respect to b "
             "is e_c; take inner products of those for every pair of rows.",
        rtol=1e-6, atol=1e-9,
    )  # fmt: skip


def _loss(values: np.ndarray, coeffs: np.ndarray, eta: float, t: int, power: int = 2,
          half: float = 0.5) -> float:  # fmt: skip
    return half * float(np.sum((1.0 - eta * values) ** (power * t) * coeffs**2))


def predicted_loss(fn: Callable[..., Any]) -> bool:
    """Check ``fn(eigenvalues, coefficients, eta, t) -> L_t = ½ ||r_t||^2`` under kernel
    gradient descent, from the eigenvalues of ``K`` and the coefficients ``<u_k, r_0>``."""
    rng = np.random.default_rng(43)
    cases = []
    for n, t in ((6, 10), (3, 1), (5, 40)):
        values = np.sort(rng.uniform(0.0, 1.0, n))[::-1]
        coeffs, eta = rng.standard_normal(n), 1.2 / values[0]
        cases.append(Case((values, coeffs, eta, t), _loss(values, coeffs, eta, t)))
    return check(
        "predicted loss", fn, cases,
        shape_hint="return one number, the loss.",
        diagnoses=[
            (lambda v, c, eta, t: _loss(v, c, eta, t, power=1),
             "the loss is quadratic in the residual: each mode's factor enters squared."),
            (lambda v, c, eta, t: _loss(v, c, eta, t, half=1.0), "L = ½ ||r||^2: keep the ½."),
        ],
        hint="r_t = sum_k (1 - eta lambda_k)^t c_k u_k with orthonormal u_k, so ||r_t||^2 is "
             "a sum over modes.",
        rtol=1e-6, atol=1e-12,
    )  # fmt: skip
