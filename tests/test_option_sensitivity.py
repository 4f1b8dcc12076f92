"""Each option's cases fail when the option is ignored or mis-implemented.

A binding is wrapped so that it drops one option before calling the framework
(or, for the weighted mean, divides by the number of targets instead of their
weights); run on the option's grid cases, some check must fail. Ids name the
framework that runs, so -k selects them with it.
"""

import dataclasses

import numpy as np
import pytest

from conformance.runner import run_value_check
from conformance.suite import build

pytestmark = pytest.mark.selftest


def _dropping(binding, option):
    def call(problem):
        options = {name: value for name, value in problem.options.items() if name != option}
        return binding.call(dataclasses.replace(problem, options=options))

    return dataclasses.replace(binding, call=call)


def _count_mean(binding):
    """torch's weighted mean mis-implemented as sum / number of kept targets."""

    def call(problem):
        if problem.options.get("reduction") != "mean":
            return binding.call(problem)
        summed = binding.call(dataclasses.replace(problem, options={**problem.options, "reduction": "sum"}))
        kept = np.count_nonzero(np.asarray(problem.labels) != problem.options.get("ignore_index", -100))
        return (summed / kept).astype(summed.dtype)

    return dataclasses.replace(binding, call=call)


def _axis_ignored(binding):
    """The class axis taken as the last one whatever the case says."""

    def call(problem):
        return binding.call(dataclasses.replace(problem, options={k: v for k, v in problem.options.items()
                                                                   if k != "axis"}))

    return dataclasses.replace(binding, call=call)


MUTANTS = [
    pytest.param("torch:nn.functional.cross_entropy", "class_index_options@ls0.15+*", "label_smoothing",
                 id="torch:label_smoothing"),
    pytest.param("torch:nn.functional.cross_entropy", "class_index_options@weight+mean", "weighted_mean",
                 id="torch:weight_under_mean"),
    pytest.param("torch:nn.functional.binary_cross_entropy_with_logits", "binary_logit_weights@pos_weight+*",
                 "pos_weight", id="torch:pos_weight"),
    pytest.param("torch:nn.functional.cross_entropy", "class_index_options@ignore_index3+*", "ignore_index",
                 id="torch:ignore_index"),
    pytest.param("tensorflow:keras.losses.SparseCategoricalCrossentropy(from_logits=True)",
                 "sparse_object_reductions@ignore_class4+*", "ignore_class", id="tensorflow:ignore_class"),
    pytest.param("tensorflow:keras.losses.CategoricalCrossentropy(from_logits=True)",
                 "categorical_object_reductions@sample_weight+*", "sample_weight", id="tensorflow:sample_weight"),
    pytest.param("tensorflow:nn.softmax_cross_entropy_with_logits", "soft_labels_class_axis_first", "axis",
                 id="tensorflow:axis"),
    pytest.param("tensorflow:keras.losses.CategoricalCrossentropy(from_logits=True)",
                 "categorical_object_reductions@ls0.1+*", "label_smoothing", id="tensorflow:label_smoothing"),
]


@pytest.mark.parametrize("binding_id, case_pattern, option", MUTANTS)
def test_ignoring_the_option_fails(binding_id, case_pattern, option):
    import fnmatch

    suite = build()
    missing = suite.bindings[binding_id].missing_requirement()
    if missing:
        pytest.skip(f"{binding_id}: {missing}")
    checks = [c for c in suite.checks if c.binding.id == binding_id and fnmatch.fnmatchcase(c.case.id, case_pattern)
              and c.skip is None and c.dtype == "float32"]
    assert checks, f"no checks for {binding_id} on {case_pattern}"
    mutant = {"weighted_mean": _count_mean, "axis": _axis_ignored}.get(option)
    binding = mutant(checks[0].binding) if mutant else _dropping(checks[0].binding, option)
    verdicts = []
    for check in checks:
        honest = run_value_check(check)
        assert honest.verdict.ok, f"{check.id} fails even unmutated"
        try:
            verdicts.append(run_value_check(dataclasses.replace(check, binding=binding)).verdict.ok)
        except Exception:  # a mutant that crashes the framework is caught too
            verdicts.append(False)
    assert not all(verdicts), f"ignoring {option} went unnoticed on {len(checks)} checks"
