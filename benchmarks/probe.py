"""One measurement in a fresh interpreter: ``python -m benchmarks.probe '<json>'``.

The JSON names a ``task`` and its parameters; the answer is one JSON line on
stdout, after ``probe-answer: `` (a framework may print there too). A fresh
process per measurement keeps imports, caches, allocator state and memory
high-water marks of one measurement out of the next.

Tasks:

* ``import``: seconds to import the given framework modules, after NumPy
  (which every pytest run of the suite imports anyway);
* ``lm_time``: seconds per call of one implementation of one loss at one
  shape, after a warm-up call on two rows;
* ``lm_memory``: the peak extra memory of such a call (the second of two):
  tracemalloc (which sees NumPy's allocations) and the resident-set
  high-water mark above its level before the call (which sees every
  allocator: torch, TensorFlow);
* ``checks``: the suite's checks run outside pytest, the framework calls,
  the reference and the harness timed apart, written to a JSON file, each with
  the ``torch.compile`` graph it needs at least (:func:`graph_key`);
* ``inductor_graph``: what one ``torch.compile`` graph costs inductor to
  build, forward and backward, in a fresh cache (a float64 training step
  minus the same step again, after a float32 step that pays for what a cache
  builds once);
* ``loader``: the case loader, the suite build and the reference cache on a
  case directory.
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import json
import re
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

FRAMEWORK_MODULES = ("torch", "tensorflow", "keras", "jax", "optax", "onnx")


def import_seconds(modules: list[str]) -> dict:
    import importlib

    import numpy  # noqa: F401  (every run of the suite imports it before any framework)

    per_module = {}
    start = time.perf_counter()
    for name in modules:
        began = time.perf_counter()
        importlib.import_module(name)
        per_module[name] = time.perf_counter() - began
    return {"seconds": time.perf_counter() - start, "per_module": per_module}


def worker_import_seconds(module: str, environment: dict) -> dict:
    """What a worker process of ``conformance.isolation`` imports before its first call, timed: the adapter
    module as the worker builds it, then the frameworks its bindings require, in the worker's environment."""
    import importlib
    import os

    import numpy  # noqa: F401

    from conformance.isolation import WORKER_ENV

    os.environ.update(environment)
    os.environ[WORKER_ENV] = module
    start = time.perf_counter()
    bindings = importlib.import_module(module).BINDINGS
    for name in dict.fromkeys(required for binding in bindings for required in binding.requires):
        importlib.import_module(name)
    return {"seconds": time.perf_counter() - start}


# --- the reference and the frameworks at language-model shapes -------------------------------


def lm_inputs(loss: str, shape: tuple[int, int], seed: int = 0):
    """float32 logits N(0, 1) and labels: class indices, probability rows, or
    sigmoid targets in [0, 1); built in place, no temporary of their size."""
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal(shape, dtype=np.float32)
    if loss == "sparse":
        labels = rng.integers(0, shape[-1], shape[:-1])
    else:
        labels = rng.random(shape, dtype=np.float32)
        if loss == "dense":
            labels /= labels.sum(axis=-1, keepdims=True)
    return logits, labels


def implementation(name: str, loss: str):
    """(prepare, call): ``prepare(logits, labels)`` makes the implementation's
    own inputs outside the measurement, ``call(prepared)`` is measured."""
    if name in ("reference", "reference_extended", "reference_quad"):
        import reference
        from reference import core

        if name == "reference_quad":  # the working precision where long double is float64 (macOS arm64, Windows)
            core.set_precision(core.choose_precision("auto", long_double_bits=53))
        function = {"sparse": reference.sparse_softmax_cross_entropy, "dense": reference.softmax_cross_entropy,
                    "sigmoid": reference.sigmoid_cross_entropy}[loss]
        extended = name == "reference_extended"
        return (lambda x, y: (x, y)), (lambda args: function(*args, extended=extended))
    if name == "torch":
        import torch

        F = torch.nn.functional
        call = {"sparse": lambda a: F.cross_entropy(a[0], a[1], reduction="none"),
                "dense": lambda a: F.cross_entropy(a[0], a[1], reduction="none"),
                "sigmoid": lambda a: F.binary_cross_entropy_with_logits(a[0], a[1], reduction="none")}[loss]
        return (lambda x, y: (torch.from_numpy(x), torch.from_numpy(y))), call
    if name == "tensorflow":
        import tensorflow as tf

        call = {"sparse": lambda a: tf.nn.sparse_softmax_cross_entropy_with_logits(labels=a[1], logits=a[0]),
                "dense": lambda a: tf.nn.softmax_cross_entropy_with_logits(labels=a[1], logits=a[0]),
                "sigmoid": lambda a: tf.nn.sigmoid_cross_entropy_with_logits(labels=a[1], logits=a[0])}[loss]
        return (lambda x, y: (tf.constant(x), tf.constant(y))), call
    raise ValueError(f"unknown implementation {name!r}")


def _prepared(name: str, loss: str, shape):
    logits, labels = lm_inputs(loss, tuple(shape))
    prepare, call = implementation(name, loss)
    call(prepare(logits[:2], labels[:2]))  # lazy initialisation is not the call's cost
    return prepare(logits, labels), call, logits.nbytes + labels.nbytes


def lm_time(loss: str, shape, implementation: str, repeat: int) -> dict:
    args, call, input_bytes = _prepared(implementation, loss, shape)
    seconds = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        result = call(args)
        seconds.append(time.perf_counter() - start)
        del result
    return {"seconds": seconds, "input_bytes": input_bytes}


def _status_kib(key: str) -> int:
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"^{key}:\s+(\d+) kB", text, re.MULTILINE).group(1))


def _reset_high_water_mark() -> bool:
    """Linux resets the resident-set high-water mark on '5' to clear_refs."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def lm_memory(loss: str, shape, implementation: str) -> dict:
    import resource

    args, call, input_bytes = _prepared(implementation, loss, shape)
    # a first full call, not measured: TensorFlow releases the memory of its
    # input copies lazily, within the next call, which would hide that call's
    # own allocations from the high-water mark
    call(args)
    gc.collect()
    exact_reset = _reset_high_water_mark()
    before_rss = _status_kib("VmRSS") * 1024
    before_max = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    tracemalloc.start()
    tracemalloc.reset_peak()
    traced_before = tracemalloc.get_traced_memory()[0]
    result = call(args)
    traced_peak = tracemalloc.get_traced_memory()[1] - traced_before
    tracemalloc.stop()
    if exact_reset:
        rss_peak = _status_kib("VmHWM") * 1024 - before_rss
        rss_method = "VmHWM after resetting it (/proc/self/clear_refs) minus VmRSS before the call"
    else:
        rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before_max
        rss_method = "ru_maxrss after the call minus before (a lower bound)"
    del result
    return {"tracemalloc_bytes": traced_peak, "rss_bytes": rss_peak, "rss_method": rss_method,
            "input_bytes": input_bytes}


# --- the suite's checks outside pytest ---------------------------------------------------------


def _import_frameworks() -> None:
    """Every installed framework, before anything is timed."""
    import importlib.util

    for name in FRAMEWORK_MODULES:
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name)


def _timed(function, totals: dict, key: str):
    if function is None:
        return None

    @functools.wraps(function)  # the reference cache keys on the function's name
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            totals[key] += time.perf_counter() - start

    return wrapper


def graph_key(check) -> list | None:
    """The torch.compile graph a check needs at least: one per loss, dtype, rank and reduction (the floor of
    the issue; torch also specialises on label_smoothing values, sizes 0 and 1 and more). None for a binding
    that is not compiled."""
    from conformance.bindings import prediction_name

    if "compile" not in check.binding.markers:
        return None
    prediction = check.case.inputs.get(prediction_name(check.case.family))
    rank = np.ndim(prediction) if prediction is not None else None
    return [check.binding.id, check.dtype, rank, str(check.case.options.get("reduction", "mean"))]


def inductor_graph(cache_dir: str) -> dict:
    """A training step of torch.compile'd cross_entropy (float64, 8 x 10, mean) in an empty cache, minus the
    same step again: inductor's build of one forward and one backward graph. A float32 step comes first, so
    that what a cache builds once (the precompiled header, the compiler's start) is not counted."""
    import importlib.util
    import os

    if importlib.util.find_spec("torch") is None:
        return {"skipped": "torch is not installed"}
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache_dir
    import torch

    compiled = torch.compile(torch.nn.functional.cross_entropy, dynamic=True, fullgraph=True)
    target = torch.arange(8) % 10
    steps = []
    for dtype in (torch.float32, torch.float64, torch.float64):
        x = torch.randn(8, 10, dtype=dtype, requires_grad=True)
        start = time.perf_counter()
        compiled(x, target).backward()
        steps.append(time.perf_counter() - start)
    return {"seconds": steps[1] - steps[2], "first_of_the_cache": steps[0], "second": steps[2]}


def run_checks(out: str, cases_dir: str | None = None, marker: str | None = None, only: str | None = None) -> dict:
    """Every check the suite generates (those with ``marker`` where one is
    given, and those listed in the JSON file ``only`` where one is given), in
    pytest's file order (behaviour, value, gradient), as the items run them;
    skipped checks are not run. Per check: the framework's calls, the
    reference, and the whole item function."""
    from conformance.behaviour import run_behaviour_check
    from conformance.cases import CASES_DIR
    from conformance.runner import run_gradient_check, run_value_check
    from conformance.suite import build

    _import_frameworks()  # imports are a separate part of the floor
    suite = build(str(Path(cases_dir or CASES_DIR).resolve()))
    runners = {"behaviour": run_behaviour_check, "value": run_value_check, "gradient": run_gradient_check}
    timings = {}
    listed = set(json.loads(Path(only).read_text())) if only else None
    for kind in ("behaviour", "value", "gradient"):
        for check in suite.checks:
            if check.kind != kind or check.skip or (marker and marker not in check.markers):
                continue
            if listed is not None and check.id not in listed:
                continue
            totals = {"call": 0.0, "reference": 0.0}
            binding = dataclasses.replace(
                check.binding,
                call=_timed(check.binding.call, totals, "call"),
                gradient=_timed(check.binding.gradient, totals, "call"),
                reference=_timed(check.binding.reference, totals, "reference"),
                reference_gradient=_timed(check.binding.reference_gradient, totals, "reference"))
            start = time.perf_counter()
            try:
                runners[kind](dataclasses.replace(check, binding=binding))
            except Exception:  # a failing item still costs what it ran
                pass
            timings[check.id] = [totals["call"], totals["reference"], time.perf_counter() - start, graph_key(check)]
    Path(out).write_text(json.dumps(timings))
    return {"checks": len(timings), "call_seconds": sum(t[0] for t in timings.values())}


def loader(cases_dir: str, run_checks_too: bool) -> dict:
    """The loader and the build on a case directory; optionally every value
    check run, for the reference cache's size per case."""
    from conformance import runner
    from conformance.cases import load_all
    from conformance.suite import build

    directory = Path(cases_dir).resolve()
    start = time.perf_counter()
    cases = load_all(directory)
    load_seconds = time.perf_counter() - start
    start = time.perf_counter()
    suite = build(str(directory))
    build_seconds = time.perf_counter() - start
    answer = {"cases": len(cases), "checks": len(suite.checks), "load_seconds": load_seconds,
              "build_seconds": build_seconds}
    if run_checks_too:
        _import_frameworks()
        values = [check for check in suite.checks if check.kind == "value" and not check.skip]
        start = time.perf_counter()
        for check in values:
            runner.run_value_check(check)
        answer["value_checks"] = len(values)
        answer["value_check_seconds"] = time.perf_counter() - start
        answer["cache_entries"] = len(runner._EXPECTED_CACHE)
        answer["cache_bytes"] = int(sum(np.asarray(value).nbytes for value in runner._EXPECTED_CACHE.values()))
    return answer


def main(argv: list[str]) -> None:
    params = json.loads(argv[0])
    task = params.pop("task")
    tasks = {"import": import_seconds, "worker_import": worker_import_seconds, "lm_time": lm_time,
             "lm_memory": lm_memory, "checks": run_checks, "loader": loader, "inductor_graph": inductor_graph}
    from benchmarks.measure import ANSWER

    print(ANSWER + json.dumps(tasks[task](**params)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
