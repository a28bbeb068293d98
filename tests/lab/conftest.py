"""Fixtures of the lab's tests: the smoke plan, registered and trained once per process."""

import pytest

from mgs_teach.lab import cli, plans

from .helpers import SMOKE, smoke_argv


@pytest.fixture
def smoke(monkeypatch):
    """:data:`SMOKE` registered as the plan ``smoke`` (for the command line and the readers)."""
    monkeypatch.setitem(plans.PLANS, "smoke", SMOKE)
    return SMOKE


@pytest.fixture(scope="session")
def smoke_mnist(tmp_path_factory):
    """The folder of ``python -m mgs_teach.lab mnist --plan smoke``, trained once: tests read
    it, and copy it (``shutil.copytree``) before they change anything in it."""
    out = tmp_path_factory.mktemp("smoke") / "mnist"
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(plans.PLANS, "smoke", SMOKE)
        assert cli.main(smoke_argv(out)) == 0
    return out
