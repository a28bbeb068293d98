import copy
import dataclasses
import json
import pickle

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


# ------------------------------------------------------- the regulariser as a value


def test_repr_is_unchanged():
    """Stored results and checkpoints are keyed on the repr: it must not change."""
    reg = regulariser("mgs_trace", 1e-3, method="hutchinson", probes=4)
    assert repr(reg) == (
        "Regulariser(name='mgs_trace', strength=0.001, cycle_steps=1000, jitter=0.001, "
        "method='hutchinson', probes=4)"
    )
    assert repr(Regulariser("none")) == (
        "Regulariser(name='none', strength=0.0, cycle_steps=1000, jitter=0.001, method='auto', "
        "probes=1)"
    )


def test_data_fields_are_unchanged():
    fields = [(f.name, f.default) for f in dataclasses.fields(Regulariser)]
    assert fields == [("name", dataclasses.MISSING), ("strength", 0.0), ("cycle_steps", 1000),
                      ("jitter", 1e-3), ("method", "auto"), ("probes", 1)]  # fmt: skip
    reg = regulariser("cyclical_lr", 0.5, cycle_steps=7)
    assert dataclasses.asdict(reg) == {"name": "cyclical_lr", "strength": 0.5, "cycle_steps": 7,
                                       "jitter": 1e-3, "method": "auto", "probes": 1}  # fmt: skip


@pytest.mark.parametrize("name", NAMES)
def test_separately_built_regularisers_are_equal_and_hash_alike(name):
    a = regulariser(name, 0.25, cycle_steps=5)
    b = Regulariser(name, 0.25, cycle_steps=5)
    assert a == b and hash(a) == hash(b) and a.family is b.family
    assert len({a, b}) == 1
    for c in (pickle.loads(pickle.dumps(a)), copy.deepcopy(a), copy.copy(a)):
        assert c == a and hash(c) == hash(a) and c.family is a.family
    assert a != regulariser(name, 0.125, cycle_steps=5)


@pytest.mark.parametrize("name", NAMES)
def test_replace_keeps_the_family(name):
    reg = regulariser(name, 0.25)
    other = dataclasses.replace(reg, strength=0.125)
    assert other.strength == 0.125 and other.family is reg.family and other.name == name
    with pytest.raises(ValueError, match="non-negative"):
        dataclasses.replace(reg, strength=-1.0)


def test_keyword_construction_and_bad_options():
    assert Regulariser(name="adam", strength=0.01) == regulariser("adam", 0.01)
    with pytest.raises(ValueError, match="unknown regulariser option"):
        regulariser("none", 0.1, bogus=1)
    with pytest.raises(ValueError, match="unknown trace method"):
        regulariser("mgs_trace", 0.1, method="bogus")
    for option, message in [("cycle_steps", "cycle_steps"), ("jitter", "jitter"),
                            ("probes", "probes")]:  # fmt: skip
        with pytest.raises(ValueError, match=message):
            regulariser("none", **{option: 0})


@pytest.mark.parametrize("name", NAMES)
def test_to_json_round_trips_through_the_registry(name):
    reg = regulariser(name, 0.25, cycle_steps=9, jitter=1e-2, probes=3,
                      method="hutchinson" if name == "mgs_trace" else "auto")  # fmt: skip
    d = reg.to_json()
    assert list(d) == ["name", "strength", "cycle_steps", "jitter", "method", "probes"]
    assert json.loads(json.dumps(d)) == d
    back = Regulariser.from_json(json.loads(json.dumps(d)))
    assert back == reg and repr(back) == repr(reg) and back.family is reg.family
    # canonical: the same value whether the strength came as an int, a numpy float or a float
    assert Regulariser("weight_decay", 1).to_json() == regulariser("weight_decay", 1.0).to_json()
    assert type(Regulariser("weight_decay", np.float32(0.5)).to_json()["strength"]) is float


def test_from_json_rejects_bad_input():
    with pytest.raises(ValueError, match="needs a name"):
        Regulariser.from_json({"strength": 0.1})
    with pytest.raises(ValueError, match="unknown regulariser"):
        Regulariser.from_json({"name": "bogus"})
    with pytest.raises(ValueError, match="unknown regulariser option"):
        Regulariser.from_json({"name": "none", "colour": "red"})
    assert Regulariser.from_json({"name": "mgs_trace"}) == regulariser("mgs_trace")


@pytest.mark.parametrize("name", NAMES)
def test_trains_dropout_and_program(name):
    reg = regulariser(name, 0.25, cycle_steps=5)
    assert reg.trains_dropout == (name == "dropout")
    program = reg.program()
    canonical = 0.5 if name in ("dropout", "adam") else 0.0  # as train.program_key chose
    assert program == regulariser(name, canonical, cycle_steps=5)
    assert program.family is reg.family
    assert regulariser(name, 0.125, cycle_steps=5).program() == program
    assert regulariser(name, 0.25, cycle_steps=6).program() != program


def test_step_cost():
    table = {"none": 1.0, "dropout": 1.0, "weight_decay": 1.0, "adam": 1.0, "cyclical_lr": 1.0,
             "param_gradient": 2.6, "input_gradient": 2.6, "mgs_logdet": 1.5}  # fmt: skip
    for name in NAMES:
        assert regulariser(name, 0.25).step_cost == table.get(name, 1.0)


def test_needs_key_only_for_the_hutchinson_trace():
    for name in NAMES:
        for method in ("auto", "hutchinson"):
            reg = regulariser(name, 0.25, method=method)
            assert reg.needs_key == (name == "mgs_trace" and method == "hutchinson")


@pytest.mark.parametrize("name", NAMES)
def test_schedule_is_the_rate_the_optimizer_applies(name):
    """schedule(base)(t) against the formulas of train.make_step, and SGD's step equals it."""
    base = optax.exponential_decay(0.1, 7, 0.9)
    reg = regulariser(name, 0.5, cycle_steps=4)
    steps = jnp.arange(10)
    got = np.array([float(reg.schedule(base)(t)) for t in steps])
    if name == "adam":
        expected = [float(0.5 * base(t)) for t in steps]
    elif name == "cyclical_lr":
        expected = [float(cyclical_schedule(base, 0.5, 4)(t)) for t in steps]
    else:
        expected = [float(base(t)) for t in steps]
    np.testing.assert_array_equal(got, expected)
    for s in (0.25, jnp.float32(0.75)):  # the strength argument replaces the attribute
        t = jnp.int32(3)
        mine = float(reg.schedule(base, strength=s)(t))
        assert mine == float(dataclasses.replace(reg, strength=float(s)).schedule(base)(t))
    if name != "adam":  # SGD: the update is minus the scheduled rate times the gradient
        opt = reg.optimizer(base)
        state = opt.init(jnp.zeros(()))
        for t in range(6):
            updates, state = opt.update(jnp.ones(()), state)
            np.testing.assert_allclose(-float(updates), got[t], rtol=1e-6)


def test_schedule_of_a_constant_rate():
    assert float(regulariser("none").schedule(0.1)(5)) == pytest.approx(0.1)
    assert float(regulariser("adam", 0.5).schedule(0.1)(5)) == pytest.approx(0.05)
    sched = regulariser("cyclical_lr", 2.0, cycle_steps=10).schedule(0.1)
    np.testing.assert_allclose(float(sched(5)), 0.3, rtol=1e-6)


def _four_steps(reg, strength=None):
    """Four optimiser steps on a quadratic plus the regulariser's penalty."""
    params = {"w": jnp.array([1.0, -2.0])}
    opt = reg.optimizer(0.1, strength=strength)
    state = opt.init(params)
    for _ in range(4):
        loss = lambda q: jnp.sum(q["w"] ** 2) + reg.penalty(None, q, None, None, None,
                                                            strength=strength)  # fmt: skip
        updates, state = opt.update(jax.grad(loss)(params), state, params)
        params = optax.apply_updates(params, updates)
    return params["w"]


@pytest.mark.parametrize("name", ["adam", "cyclical_lr", "dropout", "weight_decay"])
def test_one_compilation_serves_a_grid_of_strengths(name):
    """The strength is data: a jitted run over traced strengths traces once and matches
    the regularisers built with each strength."""
    reg = regulariser(name, 0.5, cycle_steps=3)
    traces = []

    @jax.jit
    def run(strength):
        traces.append(None)
        return _four_steps(reg, strength)

    for s in (0.1, 0.2, 0.4):
        expected = _four_steps(regulariser(name, s, cycle_steps=3))
        np.testing.assert_allclose(run(jnp.float32(s)), expected, rtol=1e-6)
    assert len(traces) == 1
