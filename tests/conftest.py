import jax
import pytest


def enable_x64():
    """Context manager that turns on float64 (its home moved in newer JAX)."""
    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(True)
    from jax.experimental import enable_x64 as legacy  # jax < 0.7

    return legacy()


@pytest.fixture
def x64():
    with enable_x64():
        yield
