"""A binding that places nothing on any device (cpu only, the default declaration) and computes the exact value
rounded to the dtype: the device self-tests' binding that skips on every other device, in any environment."""

import numpy as np

from conformance.bindings import Binding
from conformance.frameworks import exact_sparse_softmax_cross_entropy


def _rounded_exact(problem):
    return np.asarray(exact_sparse_softmax_cross_entropy(problem), dtype=np.float64).astype(problem.dtype)


BINDINGS = [
    Binding(id="numpy:honest.sparse_softmax_cross_entropy", api="numpy.honest.sparse_softmax_cross_entropy",
            framework="numpy", family="sparse_softmax", call=_rounded_exact,
            reference=exact_sparse_softmax_cross_entropy, convention=exact_sparse_softmax_cross_entropy.convention,
            dtypes=frozenset({"float32", "float64"}), options={"axis": {-1}}, requires=("numpy",)),
]
