"""mgs_teach: Model Gradient Similarity, small and readable, in JAX.

Modules
-------
kernel   the MGS kernel K = J Jᵀ of a batch and its metrics
models   Flax NNX models and the ``apply_fn(params, x)`` adapter
linalg   spectral facts of the book (Gram vs scatter, separation, interlacing)
data     small data sets (two circles)
plots    one colour-blind-safe figure style
checks   self-checks for the exercises
scale    the quick/full switch every chapter reads
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
