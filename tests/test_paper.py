"""The paper's tables as data: transcribed in the paper's order and self-consistent."""

from mgs_teach import paper


def test_the_regression_tables_hold_the_papers_numbers():
    assert paper.REGRESSION_TABLES["table2"][0.0]["MGS"] == (14.1, 1.0, 13.8)
    assert paper.REGRESSION_TABLES["fcn_regression"][30.0]["Unregularised"] == (390.8, 453.2,
                                                                                 162.6)  # fmt: skip
    for name in paper.REGRESSION_TABLES:
        table = paper.frame(name)
        assert len(table) == 4 * 5 and set(table["target_noise"]) == set(paper.REGRESSION_NOISES)
        # the parenthesised number is the lowest point of the run-averaged curve: at most
        # the final value, which averages the last records of that curve
        assert (table["lowest"] <= table["final"]).all(), name


def test_the_classification_tables_keep_their_max_above_the_final():
    for name in paper.TABLES:
        table = paper.frame(name)
        assert len(table) == 20 and (table["max"] >= table["final"]).all(), name
