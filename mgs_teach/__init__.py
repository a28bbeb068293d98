"""mgs_teach: Model Gradient Similarity, small and readable, in JAX.

Modules (the teaching core; the chapters read them)
---------------------------------------------------
kernel       the MGS kernel K = J Jᵀ of a batch and its metrics
guards       input checks, and whether a model's outputs depend on the rest of the batch
taps         layer taps: what the fast trace reads from a model's dense and conv layers
fast         the exact trace from layer structure, and Hutchinson estimators
linalg       spectral facts of the book (Gram vs scatter, separation, interlacing)
ntk          kernel gradient descent and the modes of K (the NTK view)
adversarial  FGSM and PGD attacks, and the per-input MGS and Fisher traces
losses       the training losses, by name at the boundary
penalties    every regulariser's penalty term of the paper, the MGS penalties among them
regularisers a regulariser as a value: penalty, optimiser, dropout; the registry of names
models       Flax NNX models and the ``apply_fn(params, x)`` adapter
data         two circles; ``corruptions`` label noise and motion blur; ``mnist``; ``faces``
config       what a run is configured with and carries
train        the one step builder and the reference loop
records      what a run records, and the table of one run
checkpoint   atomic writes and checkpoints
paper        the paper's tables, as data
plots        one colour-blind-safe figure style (``figure_check`` audits figures)
widgets      the interactive explorer of the MGS penalty
checks       self-checks for the exercises
scale        the quick/full switch every chapter reads
deps         installs what is missing, holding JAX at its version

The lab, :mod:`mgs_teach.lab`, runs the paper's experiments at scale (the engine, the results
store, the tuner, the plans, the benchmarks, the command line); the core never imports it.

The book's page "The library" documents every public function, with the chapters that use it.
"""

from mgs_teach import scale
from mgs_teach.kernel import (
    MGSPrecisionWarning,
    float64,
    kernel_logdet,
    mgs_jacobian,
    mgs_kernel,
    mgs_logdet,
    mgs_metrics,
    mgs_spectrum,
    mgs_trace,
    per_example_jacobians,
)

__version__ = "0.1.0"

__all__ = ["MGSPrecisionWarning", "float64", "kernel_logdet", "mgs_jacobian", "mgs_kernel",
           "mgs_logdet", "mgs_metrics", "mgs_spectrum", "mgs_trace", "per_example_jacobians",
           "scale"]  # fmt: skip
