import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from jax.flatten_util import ravel_pytree

from mgs_teach.kernel import mgs_kernel
from mgs_teach.models import FCN, functional
from mgs_teach.penalties import (
    LOSS_TERMS,
    NAMES,
    Regulariser,
    cross_entropy,
    cyclical_schedule,
    input_gradient,
    mgs_logdet_penalty,
    mgs_trace_penalty,
    param_gradient,
    regulariser,
    weight_decay,
)

B, D_IN, C = 4, 3, 2


@pytest.fixture
def problem(x64):
    """A small smooth (tanh) FCN in float64, a batch and integer labels."""
    model = FCN(D_IN, C, depth=2, width=5, activation=jnp.tanh, rngs=nnx.Rngs(0))
    apply_fn, params = functional(model)
    params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
    x = jax.random.normal(jax.random.key(1), (B, D_IN), dtype=jnp.float64)
    y = jnp.array([0, 1, 1, 0])
    return apply_fn, params, x, y


def _penalties(apply_fn, x, y):
    """Every loss-term penalty as a function of params alone."""
    return {
        "weight_decay": weight_decay,
        "input_gradient": lambda p: input_gradient(apply_fn, p, x, y, cross_entropy),
        "param_gradient": lambda p: param_gradient(apply_fn, p, x, y, cross_entropy),
        "mgs_trace": lambda p: mgs_trace_penalty(apply_fn, p, x),
        "mgs_logdet": lambda p: mgs_logdet_penalty(apply_fn, p, x, jitter=1e-3),
    }


def _naive(apply_fn, params, x, y):
    """Independent, brute-force implementations on the flattened parameter vector."""
    flat, unravel = ravel_pytree(params)

    def outputs(f):
        return jnp.reshape(apply_fn(unravel(f), x), (-1,))  # sample-major, (B*C,)

    def jac(f):
        return jax.jacfwd(outputs)(f)  # (B*C, P)

    def trace(f):
        j = jac(f)
        return jnp.trace(j @ j.T)

    def logdet(f):
        j = jac(f)
        sign, value = jnp.linalg.slogdet(j @ j.T + 1e-3 * jnp.eye(j.shape[0]))
        return value

    def param_grad(f):
        g = jax.grad(lambda f2: cross_entropy(apply_fn(unravel(f2), x), y))(f)
        return jnp.sum(g**2)

    def input_grad(f):
        total = 0.0
        for i in range(x.shape[0]):

            def loss_i(xi, i=i):
                return cross_entropy(apply_fn(unravel(f), xi[None]), y[i : i + 1])

            gi = jax.grad(loss_i)(x[i])
            total = total + jnp.sum(gi**2)
        return total / x.shape[0]

    return (
        flat,
        unravel,
        {
            "weight_decay": lambda f: 0.5 * jnp.sum(f**2),
            "input_gradient": input_grad,
            "param_gradient": param_grad,
            "mgs_trace": trace,
            "mgs_logdet": logdet,
        },
    )


@pytest.mark.parametrize("name", LOSS_TERMS)
def test_penalty_gradient_matches_central_finite_differences(problem, name):
    apply_fn, params, x, y = problem
    fn = _penalties(apply_fn, x, y)[name]
    flat, unravel = ravel_pytree(params)
    v = jax.random.normal(jax.random.key(2), flat.shape, dtype=jnp.float64)
    v = v / jnp.linalg.norm(v)
    analytic = jnp.dot(ravel_pytree(jax.grad(fn)(params))[0], v)
    h = 1e-5
    numeric = (fn(unravel(flat + h * v)) - fn(unravel(flat - h * v))) / (2 * h)
    assert jnp.isfinite(analytic)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", LOSS_TERMS)
def test_penalty_value_and_gradient_match_naive_implementation(problem, name):
    apply_fn, params, x, y = problem
    fn = _penalties(apply_fn, x, y)[name]
    flat, _, naive = _naive(apply_fn, params, x, y)
    np.testing.assert_allclose(fn(params), naive[name](flat), rtol=1e-10)
    np.testing.assert_allclose(
        ravel_pytree(jax.grad(fn)(params))[0], jax.grad(naive[name])(flat), rtol=1e-8, atol=1e-12
    )


def test_weight_decay_gradient_is_params(problem):
    _, params, _, _ = problem
    grads = jax.grad(weight_decay)(params)
    np.testing.assert_allclose(ravel_pytree(grads)[0], ravel_pytree(params)[0])


def test_cross_entropy_is_mean_negative_log_softmax(x64):
    logits = jax.random.normal(jax.random.key(0), (5, 3), dtype=jnp.float64)
    y = jnp.array([0, 2, 1, 1, 0])
    expected = -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(5), y])
    np.testing.assert_allclose(cross_entropy(logits, y), expected, rtol=1e-12)


def test_mgs_logdet_penalty_rejects_bad_jitter(problem):
    apply_fn, params, x, _ = problem
    with pytest.raises(ValueError, match="jitter"):
        mgs_logdet_penalty(apply_fn, params, x, jitter=0.0)


def test_appendix_a4_param_gradient_through_the_kernel(problem):
    """||grad_theta L||^2 = g^T K g <= lambda_max ||g||^2 <= tr K ||g||^2, g = grad_f L."""
    apply_fn, params, x, y = problem
    logits = apply_fn(params, x)
    g = jnp.reshape(jax.grad(lambda f: cross_entropy(f, y))(logits), (-1,))  # has the 1/B
    kernel = mgs_kernel(apply_fn, params, x)
    lhs = param_gradient(apply_fn, params, x, y, cross_entropy)
    quad = g @ kernel @ g
    lmax = jnp.linalg.eigvalsh(kernel)[-1]
    np.testing.assert_allclose(lhs, quad, rtol=1e-10)
    gg = g @ g
    assert quad <= lmax * gg * (1 + 1e-12)
    assert lmax * gg <= jnp.trace(kernel) * gg * (1 + 1e-12)
    assert jnp.trace(kernel) * gg > 2 * quad  # the bound is loose, not an identity


# ------------------------------------------------------------------------ Regulariser


@pytest.mark.parametrize("name", ["bogus", "MGS_trace", ""])
def test_unknown_name_is_rejected(name):
    with pytest.raises(ValueError, match="unknown regulariser"):
        regulariser(name, 0.1)


@pytest.mark.parametrize("strength", [-1e-3, float("nan")])
def test_negative_strength_is_rejected(strength):
    with pytest.raises(ValueError, match="non-negative"):
        regulariser("mgs_trace", strength)


def test_dropout_rate_must_be_below_one():
    with pytest.raises(ValueError, match="below 1"):
        regulariser("dropout", 1.0)


def test_regulariser_is_frozen():
    reg = regulariser("weight_decay", 0.1)
    with pytest.raises(AttributeError):
        reg.strength = 0.2


@pytest.mark.parametrize("name", NAMES)
def test_dropout_rate(name):
    reg = regulariser(name, 0.25)
    assert reg.dropout_rate == (0.25 if name == "dropout" else 0.0)


@pytest.mark.parametrize("name", NAMES)
def test_penalty_is_strength_times_term_or_zero(problem, name):
    apply_fn, params, x, y = problem
    reg = regulariser(name, 0.5)
    value = reg.penalty(apply_fn, params, x, y, cross_entropy)
    if name in LOSS_TERMS:
        assert reg.is_loss_term
        term = _penalties(apply_fn, x, y)[name](params)
        np.testing.assert_allclose(value, 0.5 * term, rtol=1e-12)
        assert value > 0 or name == "mgs_logdet"
    else:
        assert not reg.is_loss_term
        assert value == 0.0


@pytest.mark.parametrize("name", NAMES)
def test_optimizer_runs_one_update(name):
    reg = regulariser(name, 0.5)
    params = {"w": jnp.array([1.0, -2.0]), "b": jnp.array(0.5)}
    opt = reg.optimizer(optax.exponential_decay(0.1, 100, 0.9))
    assert isinstance(opt, optax.GradientTransformation)
    state = opt.init(params)
    grads = jax.tree.map(jnp.ones_like, params)
    updates, state = opt.update(grads, state, params)
    new = optax.apply_updates(params, updates)
    assert float(new["w"][0]) < 1.0  # moved downhill
    if name not in ("adam", "cyclical_lr"):  # plain SGD: update = -lr * grad
        np.testing.assert_allclose(updates["w"], -0.1, rtol=1e-6)
    if name == "adam":  # Adam's first step has size lr = strength * schedule(0)
        np.testing.assert_allclose(updates["w"], -0.5 * 0.1, rtol=1e-4)


def test_adam_needs_a_positive_learning_rate_fraction():
    with pytest.raises(ValueError, match="adam needs a positive strength"):
        regulariser("adam", 0.0)


def test_cyclical_schedule_cycles():
    sched = cyclical_schedule(0.1, 2.0, 10)
    values = np.array([float(sched(t)) for t in [0, 5, 10, 15, 20, 2, 8]])
    np.testing.assert_allclose(values, [0.1, 0.3, 0.1, 0.3, 0.1, 0.1 * 1.8, 0.1 * 1.8], rtol=1e-6)
    # multiplies a base schedule and with r = 0 is the base schedule
    base = optax.exponential_decay(0.1, 10, 0.5)
    np.testing.assert_allclose(float(cyclical_schedule(base, 2.0, 10)(15)), 3 * float(base(15)))
    np.testing.assert_allclose(float(cyclical_schedule(base, 0.0, 10)(7)), float(base(7)))


def test_cyclical_lr_optimizer_uses_the_cycle():
    reg = Regulariser("cyclical_lr", 1.0, cycle_steps=4)
    opt = reg.optimizer(0.1)
    params = jnp.zeros(())
    state = opt.init(params)
    steps = []
    for _ in range(5):
        updates, state = opt.update(jnp.ones(()), state, params)
        steps.append(-float(updates))
    np.testing.assert_allclose(steps, [0.1, 0.15, 0.2, 0.15, 0.1], rtol=1e-6)


def test_penalties_are_jittable(problem):
    apply_fn, params, x, y = problem
    for name in LOSS_TERMS:
        reg = regulariser(name, 0.5)
        fn = lambda p: reg.penalty(apply_fn, p, x, y, cross_entropy)  # noqa: B023
        value, grads = jax.jit(jax.value_and_grad(fn))(params)
        np.testing.assert_allclose(value, fn(params), rtol=1e-10)
        assert all(bool(jnp.isfinite(g).all()) for g in jax.tree.leaves(grads))


def test_loss_gradient_bounds_match_an_independent_computation(problem):
    """Every term of loss_gradient_bounds against flat-vector jacfwd and a softmax by hand."""
    from mgs_teach.penalties import loss_gradient_bounds

    apply_fn, params, x, y = problem
    out = loss_gradient_bounds(apply_fn, params, x, y, cross_entropy)
    flat, unravel = ravel_pytree(params)
    jac = jax.jacfwd(lambda f: jnp.reshape(apply_fn(unravel(f), x), (-1,)))(flat)  # (B*C, P)
    logits = np.asarray(apply_fn(params, x))
    prob = np.exp(logits - logits.max(1, keepdims=True))
    prob /= prob.sum(1, keepdims=True)
    g = ((prob - np.eye(C)[np.asarray(y)]) / B).reshape(-1)  # d(mean CE)/d logits
    kernel = np.asarray(jac @ jac.T)
    eig = np.linalg.eigvalsh(kernel)
    grad_theta = np.asarray(jac).T @ g  # chain rule by hand
    expected = dict(
        param_grad_sq=grad_theta @ grad_theta, quadratic=g @ kernel @ g,
        lambda_bound=eig[-1] * (g @ g), trace_bound=np.trace(kernel) * (g @ g),
        trace=np.trace(kernel), lambda_max=eig[-1], output_grad_sq=g @ g,
    )  # fmt: skip
    assert set(out) == set(expected)
    for key, value in expected.items():
        np.testing.assert_allclose(float(out[key]), value, rtol=1e-9, err_msg=key)
    assert out["quadratic"] <= out["lambda_bound"] <= out["trace_bound"]
