"""Every framework binding against the reference on every case.

The checks (case x binding x dtype) come from :mod:`conformance.suite`; ids
read ``<family>-<case>-<binding>-<dtype>``. A check passes when the output is
within the tolerance model of the exact value (:mod:`conformance.tolerance`).
"""

import pytest

from conformance.runner import failure_message, run_value_check


def test_conformance(value_check, request):
    outcome = run_value_check(value_check)
    request.node.user_properties.extend(outcome.properties)
    if not outcome.verdict.ok:
        pytest.fail(failure_message(value_check, outcome), pytrace=False)
