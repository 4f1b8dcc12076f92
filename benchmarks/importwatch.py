"""A pytest plugin the benchmark adds to the runs it times (``-p benchmarks.importwatch``).

At the end of the session each process (the controller and every xdist
worker) appends the framework modules it imported, as one JSON line, to the
file named by ``XENT_BENCH_IMPORTS``: which imports a run paid for, and
whether ``-k torch`` kept TensorFlow out. Each worker process it started
(``conformance.isolation``: PaddlePaddle, Keras 3 on another backend) adds a
line ``{"worker": module, "environment": {...}}``: the benchmark times that
worker's imports in its own environment.
"""

import json
import os
import sys

FRAMEWORK_MODULES = ("torch", "tensorflow", "keras", "jax", "optax", "onnx")


def pytest_sessionfinish(session):
    path = os.environ.get("XENT_BENCH_IMPORTS")
    if path:
        with open(path, "a", encoding="utf-8") as sink:
            sink.write(json.dumps(sorted(name for name in FRAMEWORK_MODULES if name in sys.modules)) + "\n")
            isolation = sys.modules.get("conformance.isolation")
            for module, environment in isolation.started_workers() if isolation else ():
                sink.write(json.dumps({"worker": module, "environment": environment}) + "\n")
