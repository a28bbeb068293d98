import pytest

from mgs_teach import scale


def test_default_follows_the_device(monkeypatch):
    monkeypatch.delenv(scale.ENV_VAR, raising=False)
    expected = "full" if scale.device() in ("gpu", "tpu") else "quick"
    assert scale.current() == expected


@pytest.mark.parametrize(
    "value, expected", [("quick", "quick"), ("FULL", "full"), (" quick ", "quick")]
)
def test_environment_variable_overrides(monkeypatch, value, expected):
    monkeypatch.setenv(scale.ENV_VAR, value)
    assert scale.current() == expected
    assert scale.pick(quick=1, full=2) == (2 if expected == "full" else 1)
    assert f"scale: {expected} (set by {scale.ENV_VAR})" in scale.banner()


def test_bad_value_is_rejected(monkeypatch):
    monkeypatch.setenv(scale.ENV_VAR, "medium")
    with pytest.raises(ValueError, match="'medium' is not a scale"):
        scale.current()


def test_banner_names_device_and_versions(monkeypatch):
    monkeypatch.setenv(scale.ENV_VAR, "quick")
    line = scale.banner()
    assert f"device: {scale.device()}" in line and "jax " in line
