"""Every framework binding against the reference on every case.

The checks (case x binding x dtype) come from :mod:`conformance.suite`; ids
read ``<family>-<case>-<binding>-<dtype>-<device>``. A check passes when the output is
within the tolerance model of the exact value (:mod:`conformance.tolerance`).
"""

import pytest

from conformance import signatures
from conformance.runner import failure_message, run_value_check


def test_conformance(value_check, request):
    with signatures.pinned(value_check, request.node):
        outcome = run_value_check(value_check)
    request.node.user_properties.extend(outcome.properties)
    if not outcome.verdict.ok:
        message = failure_message(value_check, outcome)
        signatures.pin(value_check, request.node, signatures.of_outcomes([outcome]), outcome.verdict.max_ulp,
                       message)
        pytest.fail(message, pytrace=False)
