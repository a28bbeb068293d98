"""The self-checks of "Measuring gradient similarity" accept right answers, reject wrong
ones, survive malformed ones, and never print the expected numbers."""

from __future__ import annotations

import numpy as np
import pytest

from mgs_teach import checks, kernel_logdet

# one wrong answer below computes det K directly, which overflows on purpose
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")

# ------------------------------------------------------------------ right answers


def scatter_spectrum_ok(theta):
    n, p = theta.shape
    k_eigs = np.linalg.eigvalsh(theta @ theta.T)[::-1]
    out = np.zeros(p)
    m = min(n, p)
    out[:m] = k_eigs[:m]
    return out


def singular_batch_ok(p, c):
    return p // c + 1


def centred_kernel_ok(k):
    k = np.asarray(k)
    return k - k.mean(axis=0, keepdims=True) - k.mean(axis=1, keepdims=True) + k.mean()


def per_output_centring_ok(theta, c):
    b = theta.shape[0] // c
    blocks = theta.reshape(b, c, -1)  # sample-major rows: (sample, output, parameter)
    return (blocks - blocks.mean(axis=0)).reshape(theta.shape)


def per_output_centring_loop(theta, c):
    out = np.array(theta, dtype=float)
    for output in range(c):
        out[output::c] -= theta[output::c].mean(axis=0)
    return out


def spectral_means_ok(k):
    n = k.shape[0]
    sign, logdet = np.linalg.slogdet(k)
    return np.trace(k) / n, (np.exp(logdet / n) if sign > 0 else 0.0)


def spectral_means_via_kernel_logdet(k):
    n = k.shape[0]
    return float(np.trace(k)) / n, float(np.exp(kernel_logdet(k) / n))


RIGHT = [
    (checks.scatter_spectrum, scatter_spectrum_ok),
    (checks.singular_batch, singular_batch_ok),
    (checks.singular_batch, lambda p, c: -(-(p + 1) // c)),  # ceil((p + 1) / C)
    (checks.centred_kernel, centred_kernel_ok),
    (checks.per_output_centring, per_output_centring_ok),
    (checks.per_output_centring, per_output_centring_loop),
    (checks.spectral_means, spectral_means_ok),
    (checks.spectral_means, spectral_means_via_kernel_logdet),
]


@pytest.mark.parametrize(("check", "answer"), RIGHT)
def test_accepts_right_answer(check, answer, capsys):
    assert check(answer) is True
    assert "correct" in capsys.readouterr().out


# ------------------------------------------------------------------ wrong answers


def scatter_spectrum_unpadded(theta):  # forgets the zeros
    return np.linalg.eigvalsh(theta @ theta.T)[::-1]


def scatter_spectrum_ascending(theta):
    return scatter_spectrum_ok(theta)[::-1]


def gm_by_det(k):  # overflows / underflows
    n = k.shape[0]
    return np.trace(k) / n, np.linalg.det(k) ** (1.0 / n)


def gm_of_nonzero_eigenvalues(k):  # a pseudo-determinant: drops the zero eigenvalues
    n = k.shape[0]
    eig = np.linalg.eigvalsh(k)
    eig = eig[eig > 1e-12 * eig.max()]
    return np.trace(k) / n, float(np.exp(np.mean(np.log(eig))))


def per_output_centring_output_major(theta, c):  # reads the rows as (output, sample)
    blocks = theta.reshape(c, theta.shape[0] // c, -1)
    return (blocks - blocks.mean(axis=1, keepdims=True)).reshape(theta.shape)


def raises(*args):
    raise RuntimeError("student bug")


WRONG = [
    (checks.scatter_spectrum, scatter_spectrum_unpadded),
    (checks.scatter_spectrum, scatter_spectrum_ascending),
    (checks.scatter_spectrum, lambda theta: np.linalg.eigvalsh(theta.T @ theta)[::-1] * 1.01),
    (checks.singular_batch, lambda p, c: p // c),
    (checks.singular_batch, lambda p, c: p / c + 1),
    (checks.singular_batch, lambda p, c: True),
    (checks.centred_kernel, lambda k: k),
    (checks.centred_kernel, lambda k: k - k.mean()),
    (checks.centred_kernel, lambda k: centred_kernel_ok(k)[:-1]),
    (checks.per_output_centring, lambda theta, c: theta - theta.mean(axis=0)),  # all together
    (checks.per_output_centring, per_output_centring_output_major),
    (checks.per_output_centring, lambda theta, c: per_output_centring_ok(theta.T, c)),
    (checks.spectral_means, gm_by_det),
    (checks.spectral_means, gm_of_nonzero_eigenvalues),
    (checks.spectral_means, lambda k: (np.trace(k), 0.0)),
]
MALFORMED = [None, "text", [1, [2, 3]], (1, 2, 3), np.ones((2, 2)), object()]
CHECKS = [
    checks.scatter_spectrum,
    checks.singular_batch,
    checks.centred_kernel,
    checks.per_output_centring,
    checks.spectral_means,
]


@pytest.mark.parametrize(("check", "answer"), WRONG)
def test_rejects_wrong_answer(check, answer, capsys):
    assert check(answer) is False
    assert "Hint" in capsys.readouterr().out


@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize("value", MALFORMED, ids=lambda v: type(v).__name__)
def test_survives_malformed_answer(check, value, capsys):
    assert check(lambda *args: value) is False
    assert "Hint" in capsys.readouterr().out


@pytest.mark.parametrize("check", CHECKS)
def test_survives_raising_answer(check, capsys):
    assert check(raises) is False
    assert "RuntimeError" in capsys.readouterr().out


# ------------------------------------------------------------ no solution leaked


def _spy(answer):
    """Wrap a (wrong) answer and record every input the check passes to it."""
    seen = []

    def fn(*args):
        seen.append(args)
        return answer(*args)

    return fn, seen


def _formats(values):
    out = set()
    for v in np.ravel(values):
        v = float(v)
        if v == 0.0 or not np.isfinite(v):
            continue
        out |= {f"{v:.2f}", f"{v:.3g}", f"{v:.4g}", f"{v:.6g}", repr(v), f"{v:.3e}"}
    return out


def _assert_not_leaked(expected, out):
    for text in _formats(expected):
        assert text not in out, f"the check printed {text}"


def test_scatter_spectrum_does_not_leak(capsys):
    fn, seen = _spy(lambda theta: np.zeros(theta.shape[1]))
    assert checks.scatter_spectrum(fn) is False
    out = capsys.readouterr().out
    (theta,) = seen[-1]
    _assert_not_leaked(np.linalg.eigvalsh(theta.T @ theta), out)


def test_singular_batch_does_not_leak(capsys):
    assert checks.singular_batch(lambda p, c: p // c) is False
    out = capsys.readouterr().out
    assert not any(ch.isdigit() for ch in out), out


def test_centred_kernel_does_not_leak(capsys):
    fn, seen = _spy(lambda k: k)
    assert checks.centred_kernel(fn) is False
    out = capsys.readouterr().out
    (k,) = seen[-1]
    _assert_not_leaked(centred_kernel_ok(k), out)


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (lambda theta, c: theta - theta.mean(axis=0), "its own B rows"),
        (per_output_centring_output_major, "sample-major"),
    ],
)
def test_per_output_centring_hints(answer, hint, capsys):
    assert checks.per_output_centring(answer) is False
    assert hint in capsys.readouterr().out


def test_per_output_centring_does_not_leak(capsys):
    fn, seen = _spy(lambda theta, c: theta - theta.mean(axis=0))
    assert checks.per_output_centring(fn) is False
    out = capsys.readouterr().out
    (theta, c) = seen[-1]
    _assert_not_leaked(np.kron(np.eye(len(theta) // c) - 1 / (len(theta) // c), np.eye(c)) @ theta,
                       out)  # fmt: skip


@pytest.mark.parametrize("answer", [gm_by_det, lambda k: (0.0, 0.0)])
def test_spectral_means_does_not_leak(answer, capsys):
    fn, seen = _spy(answer)
    assert checks.spectral_means(fn) is False
    out = capsys.readouterr().out
    for (k,) in seen:
        _assert_not_leaked(spectral_means_ok(k), out)


def test_checks_are_exported():
    names = ("scatter_spectrum", "singular_batch", "centred_kernel", "per_output_centring")
    for name in (*names, "spectral_means"):
        assert name in checks.measuring.__all__
        assert callable(getattr(checks, name))
