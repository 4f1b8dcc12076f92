"""Bad and special inputs: each framework keeps doing what the case records.

Checks come from the cases with an ``expect`` table (see conformance.behaviour).
"""

import pytest

from conformance.behaviour import run_behaviour_check, unrecorded_entry
from conformance.suite import behaviour_for


def test_behaviour(behaviour_check, request):
    failure, seen = run_behaviour_check(behaviour_check)
    if seen is not None:
        request.node.user_properties.extend([("observed", seen.describe()), ("cell", seen.cell())])
        if behaviour_for(behaviour_check.case, behaviour_check.binding, behaviour_check.device) is None:
            # a new API: what it did is recorded for the case, and checked once pasted there
            request.node.user_properties.append(("unrecorded", unrecorded_entry(behaviour_check, seen)))
    if failure:
        pytest.fail(failure, pytrace=False)
