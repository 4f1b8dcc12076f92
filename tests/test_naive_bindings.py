"""Self-test: the suite catches a naive implementation where it matters.

``tests/plugins/naive_numpy.py`` computes the losses as a textbook writes them
(the log of softmax, the log of sigmoid), loaded with ``--bindings``, the
interface a third party uses. The suite must fail it on every extreme case,
pass it on the ordinary ones (the checks discriminate, they do not just fail
everything), and it must reproduce the source document's wrong answers.
"""

import math
import sys
from pathlib import Path

import numpy as np
import pytest

from suite_runs import outcomes_with_bindings

pytestmark = pytest.mark.selftest
ROOT = Path(__file__).resolve().parent.parent
PLUGINS = ROOT / "tests" / "plugins"

CAUGHT = ["softmax_rows_1e30", "softmax_rows_1e4", "sparse_rows_1e30", "sparse_rows_1e4", "sigmoid_tiny_losses",
          "sigmoid_saturated_wrong_side", "sigmoid_right_side_moderate", "article1_abnormal_data",
          "article1_abnormal_data_sparse"]
ORDINARY = ["article1_normal_data", "article1_normal_data_sparse", "article0_softmax_soft_rows",
            "article0_sparse_rows", "article2_sparse_logits"]


@pytest.fixture(scope="module")
def naive_outcomes(tmp_path_factory):
    return outcomes_with_bindings("naive_numpy", "numpy and (float32 or float64)", tmp_path_factory.mktemp("naive"),
                                  ["tests/test_conformance.py"], ["published.yaml", "extreme.yaml"])


def _items(outcomes, case_id):
    items = {name: outcome for name, outcome in outcomes.items() if f"-{case_id}-numpy:naive." in name}
    assert items, f"no naive item ran for {case_id}"
    return items


@pytest.mark.parametrize("case_id", CAUGHT)
def test_the_suite_fails_the_naive_implementation_on_extreme_cases(naive_outcomes, case_id):
    items = _items(naive_outcomes, case_id)
    passed = [name for name, outcome in items.items() if outcome == "passed"]
    assert not passed, f"the naive implementation passed extreme checks: {passed}"


@pytest.mark.parametrize("case_id", ORDINARY)
def test_the_naive_implementation_passes_ordinary_cases(naive_outcomes, case_id):
    items = _items(naive_outcomes, case_id)
    failed = [name for name, outcome in items.items() if outcome == "failed"]
    assert not failed, f"ordinary inputs failed the naive implementation: {failed}"


def test_the_naive_implementation_reproduces_the_documented_wrong_answers():
    sys.path.insert(0, str(PLUGINS))
    try:
        import naive_numpy
    finally:
        sys.path.remove(str(PLUGINS))
    from conformance.problems import make_problem
    from conformance.suite import build

    case = next(c for c in build().cases if c.id == "article1_abnormal_data")
    naive, clipped = (next(b for b in naive_numpy.BINDINGS if b.api == api)
                      for api in ("-sum(y*log(softmax(x)))", "-sum(y*log(clip(softmax(x),1e-36,1)))"))
    problem = make_problem(case, "float32", naive)
    assert math.isnan(float(np.mean(naive.call(problem))))  # published: nan
    mean = float(np.mean(clipped.call(make_problem(case, "float32", clipped))))
    assert abs(mean - 82.89307) <= 0.5e-5, mean  # published: 82.89307
