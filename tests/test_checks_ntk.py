"""Self-checks of the NTK chapter: right answers pass, known mistakes get their hints."""

import math

import numpy as np
import pytest
from scipy.linalg import expm

from mgs_teach import checks


def rejects(check, wrong, capsys):
    for hint, fn in wrong.items():
        assert not check(fn), hint
        out = capsys.readouterr().out
        assert "❌" in out and hint in out, (hint, out)


power = np.linalg.matrix_power


def test_kernel_gd_residual(capsys):
    def right(k, r0, eta, t):
        return np.linalg.matrix_power(np.eye(len(k)) - eta * k, t) @ r0

    assert checks.kernel_gd_residual(right)
    assert "✅" in capsys.readouterr().out
    rejects(checks.kernel_gd_residual, {
        "each step subtracts": lambda k, r, eta, t: power(np.eye(len(k)) + eta * k, t) @ r,
        "count the steps": lambda k, r, eta, t: power(np.eye(len(k)) - eta * k, max(t - 1, 0)) @ r,
        "gradient flow": lambda k, r, eta, t: expm(-eta * t * k) @ r,
        "one entry per row": lambda k, r, eta, t: 0.0,
        "diagonalise": lambda k, r, eta, t: r * (1 - eta) ** t,
    }, capsys)  # fmt: skip


def test_half_life(capsys):
    def right(lam, eta):
        factor = abs(1 - eta * lam)
        return 1 if factor == 0 else math.ceil(math.log(0.5) / math.log(factor))

    assert checks.half_life(right)
    capsys.readouterr()
    rejects(checks.half_life, {
        "whole number": lambda lam, eta: math.log(2) / (eta * lam),
        "round up": lambda lam, eta: math.floor(math.log(0.5) / math.log(abs(1 - eta * lam))),
        "sign alternates": lambda lam, eta: right(lam, eta) if eta * lam <= 1 else 99,
        "smallest whole t": lambda lam, eta: 2 * right(lam, eta) + 1,
        "np.ceil returns a float": lambda lam, eta: float(right(lam, eta)),
        "one step removes the mode": lambda lam, eta: (
            0 if eta * lam == 1 else right(lam, eta)),  # what log(0) = -inf gives
    }, capsys)  # fmt: skip
    assert checks.half_life(lambda lam, eta: np.int64(right(lam, eta)))
    assert not checks.half_life(lambda lam, eta: str(right(lam, eta)))


def test_linear_kernel(capsys):
    def right(x, c):
        return np.kron(x @ x.T + 1, np.eye(c))

    assert checks.linear_kernel(right)
    capsys.readouterr()
    rejects(checks.linear_kernel, {
        "bias b is a parameter": lambda x, c: np.kron(x @ x.T, np.eye(c)),
        "sample-major": lambda x, c: np.kron(np.eye(c), x @ x.T + 1),
        "orthogonal gradients": lambda x, c: np.kron(x @ x.T + 1, np.ones((c, c))),
        "(B*C, B*C) matrix": lambda x, c: x @ x.T + 1,
        "inner products": lambda x, c: 2 * right(x, c),
    }, capsys)  # fmt: skip


def test_predicted_loss(capsys):
    def right(values, coeffs, eta, t):
        return 0.5 * float(np.sum((1 - eta * values) ** (2 * t) * coeffs**2))

    assert checks.predicted_loss(right)
    capsys.readouterr()
    rejects(checks.predicted_loss, {
        "enters squared": lambda v, c, eta, t: 0.5 * float(np.sum((1 - eta * v) ** t * c**2)),
        "keep the ½": lambda v, c, eta, t: 2 * right(v, c, eta, t),
        "one number": lambda v, c, eta, t: np.zeros(2),
        "sum over modes": lambda v, c, eta, t: 0.5 * float(np.sum(c**2)),
    }, capsys)  # fmt: skip


@pytest.mark.parametrize("check", [checks.kernel_gd_residual, checks.half_life,
                                   checks.linear_kernel, checks.predicted_loss])  # fmt: skip
def test_survives_malformed_answers(check, capsys):
    for bad in (lambda *a: None, lambda *a: "x", lambda *a: 1 / 0, lambda *a: [[1, 2], [3]]):
        assert not check(bad)
    assert capsys.readouterr().out.count("❌") == 4
