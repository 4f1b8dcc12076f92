"""A bindings module run in a worker process (conformance.isolation), for a self-test only: its call returns the
worker's process id, refuses a negative logit with a ValueError and crashes the worker (SIGSEGV) on a NaN."""

from __future__ import annotations

import os
import signal

import numpy as np

from conformance.bindings import Binding, Problem
from conformance.isolation import isolate


def _call(problem: Problem) -> np.ndarray:
    x = np.asarray(problem.prediction)
    if np.isnan(x).any():
        os.kill(os.getpid(), signal.SIGSEGV)
    if (x < 0).any():
        raise ValueError("refused: a negative logit")
    return np.array([float(os.getpid())])


BINDINGS = isolate([Binding(id="isolated:os.getpid", api="os.getpid", framework="isolated", family="sigmoid",
                            call=_call, reference=lambda problem: np.zeros(1), dtypes=frozenset({"float64"}))],
                   __name__)
