"""Tests of the spectral facts in mgs_teach.linalg: Proposition 1, the separation theorem,
the interlacing of centred and uncentred spectra, and every error path."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mgs_teach import linalg

dims = st.integers(min_value=1, max_value=9)
seeds = st.integers(min_value=0, max_value=2**32 - 1)


def _low_rank(n: int, p: int, rank: int, rng: np.random.Generator) -> np.ndarray:
    """An n x p matrix of rank min(rank, n, p) exactly, its non-zero singular values in [1, 5].

    (A product of Gaussian factors has that rank too, but its smallest singular value can come
    as close to zero as rounding error, and then no tolerance tells it from a zero.)
    """
    r = min(rank, n, p)
    u = np.linalg.qr(rng.standard_normal((n, r)))[0]
    v = np.linalg.qr(rng.standard_normal((p, r)))[0]
    return (u * rng.uniform(1.0, 5.0, r)) @ v.T


def _tol(a: np.ndarray) -> float:
    return 1e-9 * max(1.0, float(np.abs(a).max()) ** 2)


# ---------------------------------------------------------------- Proposition 1


@settings(max_examples=40, deadline=None)
@given(n=dims, p=dims, rank=dims, seed=seeds)
def test_gram_and_scatter_share_nonzero_spectrum(n, p, rank, seed):
    theta = _low_rank(n, p, rank, np.random.default_rng(seed))
    length = max(n, p)
    k = linalg.eigenvalues(linalg.gram(theta), length)
    s = linalg.eigenvalues(linalg.scatter(theta), length)
    np.testing.assert_allclose(k, s, rtol=0, atol=_tol(theta))
    # the number of non-zero eigenvalues is the rank of theta, on both sides
    r = min(rank, n, p)
    assert np.linalg.matrix_rank(theta) == r
    assert np.all(k[:r] > _tol(theta)) and np.all(np.abs(k[r:]) <= _tol(theta))


def test_gram_and_scatter_shapes():
    theta = np.arange(6.0).reshape(2, 3)
    assert linalg.gram(theta).shape == (2, 2)
    assert linalg.scatter(theta).shape == (3, 3)
    np.testing.assert_allclose(linalg.gram(theta), [[5.0, 14.0], [14.0, 50.0]])


# ---------------------------------------------------------- separation theorem


@settings(max_examples=40, deadline=None)
@given(n=dims, m=dims, data=st.data(), seed=seeds)
def test_separation_theorem(n, m, data, seed):
    r = data.draw(st.integers(0, n), label="rank_p")
    s = data.draw(st.integers(0, m), label="rank_q")
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, m))
    p_proj = linalg.random_projection(n, r, rng)
    q_proj = linalg.random_projection(m, s, rng)
    sigma = linalg.singular_values(p_proj @ a @ q_proj, min(n, m))
    lower, upper = linalg.separation_bounds(a, r, s)
    tol = _tol(a)
    assert np.all(lower <= sigma + tol), (lower, sigma)
    assert np.all(sigma <= upper + tol), (sigma, upper)


def test_separation_bounds_identity_projections_are_tight():
    a = np.random.default_rng(0).standard_normal((4, 6))
    lower, upper = linalg.separation_bounds(a, 4, 6)
    np.testing.assert_allclose(lower, upper)
    np.testing.assert_allclose(upper, np.linalg.svd(a, compute_uv=False))


def test_separation_lower_bound_is_attained():
    # projecting out the top left singular vector removes exactly sigma_1
    a = np.diag([3.0, 2.0, 1.0])
    p_proj = np.diag([0.0, 1.0, 1.0])
    lower, upper = linalg.separation_bounds(a, 2, 3)
    np.testing.assert_allclose(lower, [2.0, 1.0, 0.0])
    np.testing.assert_allclose(upper, [3.0, 2.0, 1.0])
    np.testing.assert_allclose(linalg.singular_values(p_proj @ a), lower)


def test_singular_values_padding_and_truncation():
    a = np.diag([1.0, 4.0])
    np.testing.assert_allclose(linalg.singular_values(a), [4.0, 1.0])
    np.testing.assert_allclose(linalg.singular_values(a, 4), [4.0, 1.0, 0.0, 0.0])
    np.testing.assert_allclose(linalg.singular_values(a, 1), [4.0])


@settings(max_examples=40, deadline=None)
@given(n=dims, data=st.data(), seed=seeds)
def test_random_projection_is_an_orthogonal_projection(n, data, seed):
    rank = data.draw(st.integers(0, n), label="rank")
    p_proj = linalg.random_projection(n, rank, np.random.default_rng(seed))
    np.testing.assert_allclose(p_proj, p_proj.T, atol=1e-12)
    np.testing.assert_allclose(p_proj @ p_proj, p_proj, atol=1e-12)
    assert np.trace(p_proj) == pytest.approx(rank)
    assert np.linalg.matrix_rank(p_proj) == rank


# ------------------------------------------------------------------ interlacing


def test_centring_matrix():
    h = linalg.centring_matrix(5)
    np.testing.assert_allclose(h, h.T)
    np.testing.assert_allclose(h @ h, h, atol=1e-15)
    np.testing.assert_allclose(h @ np.ones(5), 0.0, atol=1e-15)
    assert np.linalg.matrix_rank(h) == 4
    np.testing.assert_allclose(linalg.centring_matrix(1), [[0.0]])


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 9), p=dims, seed=seeds, offset=st.floats(-5, 5))
def test_centred_and_uncentred_spectra_interlace(n, p, seed, offset):
    theta = np.random.default_rng(seed).standard_normal((n, p)) + offset
    h = linalg.centring_matrix(n)
    tol = _tol(theta)
    s = linalg.eigenvalues(linalg.scatter(theta))
    s_c = linalg.eigenvalues(theta.T @ h @ theta)
    assert linalg.interlaces(s, s_c, atol=tol)
    k = linalg.eigenvalues(linalg.gram(theta))
    k_c = linalg.eigenvalues(h @ linalg.gram(theta) @ h)
    assert linalg.interlaces(k, k_c, atol=tol)
    # the corollary: trace bounds and the trace identity
    tr_k, tr_kc = k.sum(), k_c.sum()
    assert tr_k - k[0] - tol <= tr_kc <= tr_k + tol
    mean_term = np.sum(theta.sum(axis=0) ** 2) / n
    assert tr_kc == pytest.approx(tr_k - mean_term, rel=1e-9, abs=tol)


def test_interlacing_fails_in_the_wrong_order():
    # a large common offset makes the uncentred top eigenvalue dominate: swapping fails
    theta = np.random.default_rng(1).standard_normal((6, 4)) + 10.0
    h = linalg.centring_matrix(6)
    s = linalg.eigenvalues(linalg.scatter(theta))
    s_c = linalg.eigenvalues(theta.T @ h @ theta)
    assert linalg.interlaces(s, s_c)
    assert not linalg.interlaces(s_c, s)


def test_interlaces_small_examples():
    assert linalg.interlaces([3.0, 2.0, 1.0], [2.5, 1.5, 0.5])
    assert linalg.interlaces([3.0, 2.0, 1.0], [3.0, 2.0, 1.0])
    assert not linalg.interlaces([3.0, 2.0, 1.0], [3.5, 1.5, 0.5])
    assert not linalg.interlaces([3.0, 2.0, 1.0], [2.5, 2.1, 0.5])
    assert linalg.interlaces([3.0, 2.0], [2.5])  # padded with zeros
    assert not linalg.interlaces([3.0], [2.5, 0.1])  # 0 >= 0.1 fails after padding
    assert linalg.interlaces([1.0], [1.0 + 1e-12], atol=1e-10)


# ------------------------------------------------------------------- error paths


@pytest.mark.parametrize("n", [0, -3, 2.5])
def test_centring_matrix_rejects_bad_size(n):
    with pytest.raises(ValueError, match="positive integer"):
        linalg.centring_matrix(n)


@pytest.mark.parametrize("fn", [linalg.gram, linalg.scatter])
@pytest.mark.parametrize("bad", [np.ones(3), np.ones((2, 2, 2)), 1.0])
def test_gram_scatter_reject_non_matrices(fn, bad):
    with pytest.raises(ValueError, match="2-D"):
        fn(bad)


def test_eigenvalues_errors():
    with pytest.raises(ValueError, match="square"):
        linalg.eigenvalues(np.ones((2, 3)))
    with pytest.raises(ValueError, match="symmetric"):
        linalg.eigenvalues(np.array([[1.0, 2.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="length"):
        linalg.eigenvalues(np.eye(2), -1)
    with pytest.raises(ValueError, match="2-D"):
        linalg.eigenvalues(np.ones(4))


def test_singular_values_errors():
    with pytest.raises(ValueError, match="length"):
        linalg.singular_values(np.eye(2), -1)
    with pytest.raises(ValueError, match="2-D"):
        linalg.singular_values(np.ones(3))


@pytest.mark.parametrize(
    ("n", "rank", "match"), [(3, -1, "rank"), (3, 4, "rank"), (0, 0, "positive"), (3, 1.5, "rank")]
)
def test_random_projection_errors(n, rank, match):
    with pytest.raises(ValueError, match=match):
        linalg.random_projection(n, rank, np.random.default_rng(0))


@pytest.mark.parametrize(
    ("rank_p", "rank_q", "match"),
    [(4, 1, "rank_p"), (-1, 1, "rank_p"), (1, 6, "rank_q"), (1, -2, "rank_q")],
)
def test_separation_bounds_errors(rank_p, rank_q, match):
    with pytest.raises(ValueError, match=match):
        linalg.separation_bounds(np.ones((3, 5)), rank_p, rank_q)


def test_interlaces_errors():
    with pytest.raises(ValueError, match="1-D"):
        linalg.interlaces(np.ones((2, 2)), np.ones(2))
    with pytest.raises(ValueError, match="sorted"):
        linalg.interlaces([1.0, 2.0], [0.5, 0.1])
    with pytest.raises(ValueError, match="sorted"):
        linalg.interlaces([2.0, 1.0], [0.1, 0.5])
    with pytest.raises(ValueError, match="atol"):
        linalg.interlaces([2.0], [1.0], atol=-1.0)
