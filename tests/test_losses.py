import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mgs_teach import losses, penalties
from mgs_teach.losses import LOSSES, cross_entropy, loss_of, mse


def test_loss_of_finds_every_loss_by_name():
    assert set(LOSSES) == {"cross_entropy", "mse"}
    for name, fn in LOSSES.items():
        assert loss_of(name) is fn
    assert loss_of("cross_entropy") is cross_entropy and loss_of("mse") is mse


@pytest.mark.parametrize("name", ["bogus", "MSE", ""])
def test_loss_of_rejects_an_unknown_name(name):
    with pytest.raises(
        ValueError, match=r"unknown loss .*choose one of \['cross_entropy', 'mse'\]"
    ):
        loss_of(name)


def test_mse_is_the_mean_over_batch_and_outputs():
    a = jax.random.normal(jax.random.key(0), (4, 3))
    b = jax.random.normal(jax.random.key(1), (4, 3))
    np.testing.assert_allclose(mse(a, b), np.mean((np.asarray(a) - np.asarray(b)) ** 2),
                               rtol=1e-6)  # fmt: skip
    assert mse(a, a) == 0.0


def test_penalties_re_exports_the_same_objects():
    """Chapters and older code import the losses and terms from mgs_teach.penalties."""
    for name in losses.__all__:
        assert getattr(penalties, name) is getattr(losses, name), name


def test_losses_are_jittable_scalars():
    logits = jnp.array([[2.0, -1.0], [0.5, 0.5]])
    y = jnp.array([0, 1])
    assert jax.jit(cross_entropy)(logits, y).shape == ()
    assert jax.jit(mse)(logits, logits + 1.0) == pytest.approx(1.0)
