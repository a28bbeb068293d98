import pytest

from mgs_teach import float64 as enable_x64  # noqa: F401 - re-exported for the tests


@pytest.fixture
def x64():
    with enable_x64():
        yield
