"""mgs_teach: Model Gradient Similarity, small and readable, in JAX.

Modules
-------
kernel       the MGS kernel K = J Jᵀ of a batch and its metrics
fast         the exact trace from layer structure, and Hutchinson estimators
linalg       spectral facts of the book (Gram vs scatter, separation, interlacing)
ntk          kernel gradient descent and the modes of K (the NTK view)
adversarial  FGSM and PGD attacks, and the per-input MGS and Fisher traces
penalties    every regulariser of the paper, the MGS penalties among them
models       Flax NNX models and the ``apply_fn(params, x)`` adapter
data         two circles, MNIST, motion blur and label noise
train        one step builder, the records, checkpoints and the reference loop
engine       many runs of one shape trained as one compiled program
experiments  an experiment as a value, and the tuner
plans        the MNIST chapter's sizes at each plan (quick, cpu, paper)
paper        the paper's tables, as data
plots        one colour-blind-safe figure style
widgets      the interactive explorer of the MGS penalty
bench        what a penalised step costs, and what the engine gains
checks       self-checks for the exercises
scale        the quick/full switch every chapter reads
deps         installs what is missing, holding JAX at its version

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

__all__ = [
    "MGSPrecisionWarning",
    "float64",
    "kernel_logdet",
    "mgs_jacobian",
    "mgs_kernel",
    "mgs_logdet",
    "mgs_metrics",
    "mgs_spectrum",
    "mgs_trace",
    "per_example_jacobians",
    "scale",
]
