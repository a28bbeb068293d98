"""What a functional (RKHS) penalty costs, against the MGS metrics: the paper's Appendix A.5.

The paper's Appendix A.5 sets functional regularisation aside: kernel ridge regression
"places a penalty on function complexity by trying to minimise the norm of the function
given by its Reproducing Kernel Hilbert Space (RKHS)", and "these penalties are the most
costly to calculate and were not efficient enough even to run on small networks". On a
batch the NTK's RKHS norm of the outputs is :math:`f^\\top K^{-1} f`, with :math:`f` the
``B*C`` outputs and :math:`K` the ``(B*C, B*C)`` MGS kernel: it needs every entry of the
kernel and a Cholesky factorisation, :math:`O((BC)^3)`, as :math:`\\log\\det K` does, while
:math:`\\operatorname{tr} K` needs neither.

:func:`rkhs_norm` computes the penalty, :func:`penalty_seconds` times one jitted evaluation
of each penalty (:data:`PENALTIES`) for several batch sizes, :func:`growth_exponent` reads
the growth off the timings, and :func:`functional_findings` reduces them to the glued
texts of the fast-penalty chapter (:meth:`FunctionalFindings.texts`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from mgs_teach.kernel import mgs_kernel, mgs_trace
from mgs_teach.lab.findings import join_and, number
from mgs_teach.losses import mgs_logdet_penalty

__all__ = [
    "LABELS",
    "PENALTIES",
    "FunctionalFindings",
    "functional_findings",
    "growth_exponent",
    "penalty_seconds",
    "rkhs_norm",
]

ApplyFn = Callable[[Any, jax.Array], jax.Array]


def rkhs_norm(apply_fn: ApplyFn, params: Any, x: jax.Array, *, jitter: float = 1e-3) -> jax.Array:
    """The RKHS (NTK) norm of a batch's outputs, :math:`f^\\top (K + \\text{jitter}\\,I)^{-1} f`.

    The kernel is built as :func:`mgs_teach.kernel.mgs_kernel` builds it (``method="auto"``:
    from the layer structure where the model allows), then factorised by Cholesky,
    :math:`K + \\text{jitter}\\,I = LL^\\top`; with :math:`Lz = f`, the norm is
    :math:`\\|z\\|^2`. The jitter plays the role it plays for the log-det penalty
    (:func:`mgs_teach.losses.mgs_logdet_penalty`): :math:`K` is only semi-definite.

    Parameters
    ----------
    apply_fn : callable
        ``apply_fn(params, x) -> (B,) or (B, C)`` raw outputs.
    params : pytree of arrays
    x : array, shape ``(B, ...)``
    jitter : float
        Positive diagonal shift.

    Returns
    -------
    scalar array
    """
    if not jitter > 0:
        raise ValueError(f"jitter must be positive, got {jitter}")
    kernel = mgs_kernel(apply_fn, params, x, method="auto")  # (B*C, B*C)
    f = jnp.reshape(apply_fn(params, x), (-1,))  # (B*C,), sample-major like the kernel
    chol = jnp.linalg.cholesky(kernel + jitter * jnp.eye(f.shape[0], dtype=kernel.dtype))
    z = jax.scipy.linalg.solve_triangular(chol, f.astype(chol.dtype), lower=True)
    return jnp.sum(z**2)


#: each penalty timed: key -> ``make(apply_fn) -> penalty(params, x)``
PENALTIES: dict[str, Callable[[ApplyFn], Callable[[Any, jax.Array], jax.Array]]] = {
    "trace": lambda fn: lambda p, x: mgs_trace(fn, p, x, method="structured"),
    "logdet": lambda fn: lambda p, x: mgs_logdet_penalty(fn, p, x),
    "rkhs": lambda fn: lambda p, x: rkhs_norm(fn, p, x),
}
#: how the chapter's table names them
LABELS = {"trace": "tr K", "logdet": "log det K", "rkhs": "RKHS norm f'K⁻¹f"}


def penalty_seconds(
    apply_fn: ApplyFn,
    params: Any,
    x: jax.Array,
    batches: Sequence[int],
    *,
    repeats: int = 5,
    fill: float = 0.02,
    penalties: Sequence[str] = tuple(PENALTIES),
) -> pd.DataFrame:
    """Seconds of one jitted evaluation of each penalty, for each batch size.

    Every (penalty, batch) is compiled and run once untimed; then ``repeats`` rounds each
    time every one of them, once, or as many times as fill ``fill`` seconds where a call
    is short (at most 20). On a shared machine, load from elsewhere only ever adds time, in
    bursts that can reach a hundred times the computation's own (seen on a busy 2-core
    CPU), so the fastest call is the estimate of the cost (``seconds``, as :mod:`timeit`
    advises); the median is kept beside it (``median``).

    Parameters
    ----------
    apply_fn, params
        The model, as in :func:`rkhs_norm`.
    x : array, shape ``(N, ...)``
        Inputs; a batch of ``B`` is ``x[:B]``, so ``N >= max(batches)``.
    batches : sequence of int
        Batch sizes ``B``.
    repeats : int
        Timed rounds.
    fill : float
        Seconds of calls per round that a short evaluation is repeated to fill.
    penalties : sequence of str
        Keys of :data:`PENALTIES`.

    Returns
    -------
    pandas.DataFrame
        One row per (penalty, batch): ``penalty``, ``batch``, ``size`` (``B*C``, the
        kernel's side), ``seconds`` (the fastest round) and ``median``.
    """
    if max(batches) > len(x):
        raise ValueError(f"batch {max(batches)} needs {max(batches)} inputs, got {len(x)}")
    n_out = int(np.prod(jnp.shape(apply_fn(params, x[:1]))[1:], dtype=int))
    fns = {key: jax.jit(PENALTIES[key](apply_fn)) for key in penalties}
    runs = {(key, b): (lambda f=fns[key], xb=x[:b]: f(params, xb)) for key in fns for b in batches}
    times: dict[tuple[str, int], list[float]] = {cell: [] for cell in runs}
    calls = {}
    for cell, run in runs.items():  # compile, then one untimed warm call sets the count
        jax.block_until_ready(run())
        calls[cell] = int(np.clip(np.ceil(fill / _seconds(run)), 1, 20))
    for _ in range(max(repeats, 1)):
        for cell, run in runs.items():
            times[cell] += [_seconds(run) for _ in range(calls[cell])]
    return pd.DataFrame(
        [
            {
                "penalty": key,
                "batch": b,
                "size": b * n_out,
                "seconds": min(t),
                "median": float(np.median(t)),
            }
            for (key, b), t in times.items()
        ]
    )


def _seconds(run: Callable[[], Any]) -> float:
    start = time.perf_counter()
    jax.block_until_ready(run())
    return time.perf_counter() - start


def growth_exponent(sizes: Sequence[float], seconds: Sequence[float], last: int = 2) -> float:
    """The exponent ``e`` of ``seconds ~ size**e``, fitted on log-log axes to the ``last``
    largest sizes (the asymptotic regime, past fixed overheads).

    Parameters
    ----------
    sizes, seconds : sequence of float, equally long
    last : int
        How many of the largest sizes the fit uses (at least 2).
    """
    order = np.argsort(np.asarray(sizes, dtype=float))
    if len(order) < 2 or last < 2:
        raise ValueError("the growth needs at least two sizes")
    n = np.log(np.asarray(sizes, dtype=float)[order][-last:])
    t = np.log(np.asarray(seconds, dtype=float)[order][-last:])
    return float(np.polyfit(n, t, 1)[0])


def _growth_words(exponent: float) -> str:
    """How a cost grows, in words, from its fitted exponent."""
    if exponent >= 3.5:
        return f"faster than cubically (exponent {number(exponent)})"
    if exponent >= 2.5:
        return f"about cubically (exponent {number(exponent)})"
    if exponent >= 1.5:
        return f"about quadratically (exponent {number(exponent)})"
    if exponent >= 0.5:
        return f"about linearly (exponent {number(exponent)})"
    return f"hardly at all (exponent {number(exponent)})"


@dataclass(frozen=True)
class FunctionalFindings:
    """Each penalty's seconds by kernel size (see :func:`functional_findings`)."""

    seconds: Mapping[str, Mapping[int, float]]  # penalty -> size (B*C) -> seconds

    @property
    def sizes(self) -> list[int]:
        """The kernel sizes ``B*C`` measured, smallest first."""
        return sorted(next(iter(self.seconds.values())))

    def exponent(self, key: str) -> float:
        """The fitted growth exponent of one penalty (:func:`growth_exponent`)."""
        sizes = self.sizes
        return growth_exponent(sizes, [self.seconds[key][n] for n in sizes])

    def growth(self, key: str) -> float:
        """How many times longer one penalty takes at the largest size than at the next."""
        small, large = self.sizes[-2:]
        return self.seconds[key][large] / self.seconds[key][small]

    def over(self, key: str, other: str) -> float:
        """Seconds of ``key`` over those of ``other``, at the largest size."""
        n = self.sizes[-1]
        return self.seconds[key][n] / self.seconds[other][n]

    def table(self) -> pd.DataFrame:
        """Milliseconds per evaluation: one row per size ``B*C``, one column per penalty."""
        ms = {LABELS.get(k, k): {n: 1e3 * s for n, s in v.items()} for k, v in self.seconds.items()}
        return pd.DataFrame(ms).sort_index().rename_axis("kernel side B·C")

    def texts(self) -> dict[str, str]:
        """The glued texts: sizes, times, growth and the verdicts."""
        sizes = self.sizes
        out = {
            "sizes": join_and(number(n) for n in sizes),
            "largest": number(sizes[-1]),
            "previous": number(sizes[-2]),
            "size_step": number(sizes[-1] / sizes[-2]),
        }
        for key in self.seconds:
            out[f"{key}_ms"] = number(1e3 * self.seconds[key][sizes[-1]])
            out[f"{key}_growth"] = f"{number(self.growth(key))}×"
            out[f"{key}_exponent"] = number(self.exponent(key))
            out[f"{key}_grows"] = _growth_words(self.exponent(key))
        if {"trace", "logdet", "rkhs"} <= set(self.seconds):
            out.update(self._verdicts())
        return out

    def _verdicts(self) -> dict[str, str]:
        rkhs_x, logdet_x = self.over("rkhs", "trace"), self.over("logdet", "trace")
        vs_logdet = self.over("rkhs", "logdet")
        e = {key: self.exponent(key) for key in ("trace", "logdet", "rkhs")}
        words = {key: _growth_words(value) for key, value in e.items()}
        if e["rkhs"] < 2.5:
            verdict = (
                "at these sizes the solve does not dominate yet: the RKHS norm's time grows "
                f"{words['rkhs']} and the trace's {words['trace']}"
            )
        elif e["trace"] >= 1.5:
            verdict = (
                f"the RKHS norm's time grows {words['rkhs']}, but here the trace's too grows "
                f"{words['trace']}"
            )
        else:
            logdet = (
                "as the log-det's does"
                if e["logdet"] >= 2.5
                else f"the log-det's {words['logdet']}"
            )
            verdict = (
                f"the measurement bears the paper out: the RKHS norm's time grows {words['rkhs']}, "
                f"{logdet}, while the trace's grows {words['trace']}"
            )
        return {
            "rkhs_over_trace": f"{number(rkhs_x)}×",
            "logdet_over_trace": f"{number(logdet_x)}×",
            "rkhs_vs_logdet": (
                f"about as long as the log-det ({number(vs_logdet)}× its time)"
                if 0.5 <= vs_logdet <= 2.0
                else f"{number(vs_logdet)}× as long as the log-det"
            ),
            "verdict": verdict,
        }


def functional_findings(timings: pd.DataFrame | Sequence[Mapping[str, Any]]) -> FunctionalFindings:
    """Reduce :func:`penalty_seconds`' rows (``penalty``, ``size``, ``seconds``).

    Every penalty must be timed at the same sizes, at least two of them.
    """
    frame = pd.DataFrame(timings)
    seconds = {
        str(key): {int(n): float(s) for n, s in zip(g["size"], g["seconds"])}
        for key, g in frame.groupby("penalty", sort=False)
    }
    sizes = {tuple(sorted(v)) for v in seconds.values()}
    if len(sizes) != 1 or len(next(iter(sizes))) < 2:
        raise ValueError(f"every penalty needs the same two or more sizes, got {sizes}")
    return FunctionalFindings(seconds)
