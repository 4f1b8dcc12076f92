"""Bad and special inputs: each framework keeps doing what the case records.

Checks come from the cases with an ``expect`` table (see conformance.behaviour).
"""

import pytest

from conformance.behaviour import run_behaviour_check


def test_behaviour(behaviour_check, request):
    failure, seen = run_behaviour_check(behaviour_check)
    if seen is not None:
        request.node.user_properties.extend([("observed", seen.describe()), ("cell", seen.cell())])
    if failure:
        pytest.fail(failure, pytrace=False)
