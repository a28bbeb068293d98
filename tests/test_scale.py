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
    assert line.startswith("scale: quick") and "jax " in line and "python " in line


@pytest.mark.parametrize("platform", ["cpu", "gpu"])
def test_banner_says_whether_a_gpu_is_active(monkeypatch, platform):
    monkeypatch.delenv(scale.ENV_VAR, raising=False)
    monkeypatch.setattr(scale, "device", lambda: platform)
    text = scale.banner()
    lines = text.splitlines()
    if platform == "gpu":
        assert lines[0].startswith("scale: full (default with a GPU) | GPU active: ")
        assert len(lines) == 2
    else:
        assert lines[0] == "scale: quick (default without a GPU) | no GPU, running on the CPU"
        assert "Change runtime type" in lines[2]
    assert lines[1].startswith("jax ") and all(len(line) <= 90 for line in lines)
