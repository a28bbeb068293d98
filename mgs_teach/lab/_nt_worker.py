"""neural-tangents side of the benchmark. Runs in its own environment (old JAX), not this one.

``python _nt_worker.py IN.npz OUT.json [IN.npz OUT.json ...]`` reads, from each input, the
model name, its parameters and a batch written by :mod:`mgs_teach.lab.bench` (one process
for all of them: the old JAX and TensorFlow import once), rebuilds the same network in plain
JAX (the book's FCN, LeNet-5 and AlexNet, layer for layer), and for each neural-tangents
implementation that works in release 0.6.5 writes

- the full empirical NTK, sample-major ``(B*C, B*C)`` like ``mgs_teach.mgs_kernel``, and
- when asked to time (``time`` in its meta), the median time of one SGD step on
  cross-entropy + strength * tr K (tr K from
  ``empirical_ntk_fn(..., trace_axes=(-1,), diagonal_axes=(0,))``, the cheapest way to ask
  neural-tangents for the trace; it averages over the logits, so ``.sum() * C`` is tr K),
  and once per model that of a plain step.

It imports nothing from ``mgs_teach``: the environment it runs in cannot import it.
"""

import json
import sys
import time

import jax
import jax.numpy as jnp
import neural_tangents as nt
import numpy as np

IMPLEMENTATIONS = {
    "nt_jacobian_contraction": nt.NtkImplementation.JACOBIAN_CONTRACTION,
    "nt_ntk_vector_products": nt.NtkImplementation.NTK_VECTOR_PRODUCTS,
}


def unflatten(flat):
    tree = {}
    for path, value in flat.items():
        node = tree
        *parents, leaf = path.split("/")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = jnp.asarray(value)
    return tree


def dense(p, x):
    return x @ p["kernel"] + p["bias"]


def conv(p, x, padding, strides=(1, 1)):
    y = jax.lax.conv_general_dilated(x, p["kernel"], strides, padding,
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))  # fmt: skip
    return y + p["bias"]


def pool(x, kind):
    window = (1, 2, 2, 1)
    if kind == "avg":
        return jax.lax.reduce_window(x, 0.0, jax.lax.add, window, window, "VALID") / 4.0
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, window, window, "VALID")


def head(layers, x):
    keys = sorted(layers, key=int)
    for k in keys[:-1]:
        x = jax.nn.relu(dense(layers[k], x))
    return dense(layers[keys[-1]], x)


def apply_fn(name):
    def fcn(params, x):
        return head(params["layers"], x.reshape(x.shape[0], -1))

    def lenet5(params, x):
        x = x.reshape(x.shape[0], 28, 28, 1)
        x = pool(jax.nn.relu(conv(params["conv1"], x, "SAME")), "avg")
        x = pool(jax.nn.relu(conv(params["conv2"], x, "VALID")), "avg")
        return head(params["fc"], x.reshape(x.shape[0], -1))

    def alexnet(params, x):
        x = x.reshape(x.shape[0], 28, 28, 1)
        for i in sorted(params["convs"], key=int):
            x = jax.nn.relu(conv(params["convs"][i], x, "SAME"))
            if int(i) in (0, 1, 4):
                x = pool(x, "max")
        return head(params["fc"], x.reshape(x.shape[0], -1))

    return {"fcn": fcn, "lenet5": lenet5, "alexnet": alexnet}[name]


def median_time(fn, *args, repeats, budget):
    """``mgs_teach.lab.bench.median_seconds``, repeated here: this environment cannot
    import it."""

    def timed():
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        return time.perf_counter() - start

    first = timed()  # compiles
    slow = budget is not None and first > budget
    warm = 0.0 if slow else timed()
    runs = 1 if slow else repeats if budget is None else max(1, min(repeats, int(budget // warm)))
    return float(np.median([timed() for _ in range(runs)]))


def main(path_in, path_out):
    data = np.load(path_in, allow_pickle=False)
    meta = json.loads(str(data["meta"]))
    params = unflatten({k[2:]: data[k] for k in data.files if k.startswith("p/")})
    x, y = jnp.asarray(data["x"]), jnp.asarray(data["y"])
    f = apply_fn(meta["model"])
    n_out = f(params, x).shape[1]
    labels = jax.nn.one_hot(y, n_out)
    result = {"device": jax.devices()[0].platform, "jax": jax.__version__, "rows": []}

    def ce(p):
        return -jnp.mean(jnp.sum(labels * jax.nn.log_softmax(f(p, x)), axis=1))

    def sgd(loss):
        @jax.jit
        def step(p):
            grads = jax.grad(loss)(p)
            return jax.tree_util.tree_map(lambda a, g: a - 0.01 * g, p, grads)

        return step

    if meta["time"]:
        result["plain_seconds"] = median_time(
            sgd(ce), params, repeats=meta["repeats"], budget=meta["budget"]
        )
    for method, impl in IMPLEMENTATIONS.items():
        row = {"method": method}
        try:
            full = nt.empirical_ntk_fn(f, trace_axes=(), vmap_axes=0, implementation=impl)
            k = np.asarray(full(x[: meta["kernel_batch"]], None, params))  # (B, B, C, C)
            b = k.shape[0]
            row["kernel"] = k.transpose(0, 2, 1, 3).reshape(b * n_out, b * n_out).tolist()
            diag = nt.empirical_ntk_fn(f, trace_axes=(-1,), diagonal_axes=(0,), vmap_axes=0,
                                       implementation=impl)  # fmt: skip

            def penalised(p, diag=diag):
                return ce(p) + meta["strength"] * diag(x, None, p).sum() * n_out

            if meta["time"]:
                row["seconds_per_step"] = median_time(
                    sgd(penalised), params, repeats=meta["repeats"], budget=meta["budget"]
                )
        except Exception as err:  # noqa: BLE001 - report, don't crash the benchmark
            row["error"] = f"{type(err).__name__}: {err}"
        result["rows"].append(row)
    with open(path_out, "w") as out:
        json.dump(result, out)


if __name__ == "__main__":
    paths = sys.argv[1:]
    for path_in, path_out in zip(paths[::2], paths[1::2], strict=True):
        main(path_in, path_out)
