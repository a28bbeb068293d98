"""The helpers every findings module shares: the words and the rank correlation."""

import numpy as np
import pytest
from scipy.stats import spearmanr

from mgs_teach.lab.findings import join_and, number, ordinal, percent, spearman


def test_words():
    assert [join_and(x) for x in ([], ["a"], ["a", "b"], ["a", "b", "c"])] == [
        "", "a", "a and b", "a, b and c"]  # fmt: skip
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 112)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "112th"]  # fmt: skip
    assert (number(1234.5), number(0.01234), number(19.78, 3), number(float("nan"))) == (
        "1,234", "0.012", "19.8", "n/a")  # fmt: skip
    assert percent(0.9532) == "95.3 %"


def test_spearman_is_scipys_on_the_pairs_both_know():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=12), rng.normal(size=12)
    b[3] = a[5] = np.nan
    b[[0, 1]] = b[2]  # a tie
    ok = ~(np.isnan(a) | np.isnan(b))
    assert spearman(a, b) == pytest.approx(spearmanr(a[ok], b[ok]).statistic)
    assert spearman(a, np.exp(a)) == pytest.approx(1.0)  # monotone, NaN left out
    assert np.isnan(spearman([1.0, 2.0], [2.0, 1.0]))  # too few pairs to say
