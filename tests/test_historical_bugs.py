"""Self-test: the suite fails every historical bug of the field, re-created.

``tests/plugins/historical_bugs.py`` re-creates upstream bugs of cross-entropy
implementations as bindings (loaded with ``--bindings``, the interface a third
party uses); ``cases/regressions.yaml`` holds the inputs that exposed them (the
``history_*`` cases). Each bug must fail the suite: on the value checks alone
where it was a value bug, on the gradient checks (with the value checks of the
same inputs passing) where it was a gradient bug. The first failing check ids
are printed with ``-rA`` for the record.
"""

import pytest

from suite_runs import outcomes_with_bindings

pytestmark = pytest.mark.selftest

# binding name -> (the kind of bug, the history case that exposed it)
BUGS = {
    "pytorch_11752": ("value", "history_common_offset_ties"),
    "mlx_4188": ("value", "history_common_offset_soft_targets"),
    "optax_896": ("value", "history_masked_logit_soft_labels"),
    "pytorch_73205": ("value", "history_smoothing_with_ignored_targets"),
    "pytorch_69339": ("value", "history_weight_smoothing_ignored_targets"),
    "keras_15012": ("value", "history_class_labels_beyond_half_precision"),
    "pytorch_13773": ("value", "history_pos_weight_large_negative_logit"),
    "pytorch_135359": ("value", "history_infinite_logit_soft_label"),
    "tensorflow_75256": ("value", "history_infinite_logit_soft_label"),
    "keras_15249": ("value", "history_double_epsilon"),
    "pytorch_2195": ("gradient", "history_sigmoid_gradient_at_zero"),
}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    return outcomes_with_bindings("historical_bugs", "numpy and history_", tmp_path_factory.mktemp("history"),
                                  ["tests/test_conformance.py", "tests/test_gradients.py"], ["regressions.yaml"])


def _items(outcomes, name, case_id):
    return {check: outcome for check, outcome in outcomes.items()
            if f"-numpy:history.{name}-" in check and (f"-{case_id}-" in check or f"-{case_id}@" in check)}


def _short(name: str) -> str:
    """An id without a framework's word, so that -k torch does not select the self-test."""
    project, number = name.rsplit("_", 1)
    return {"pytorch": "pt", "tensorflow": "tf", "keras": "ks", "optax": "ox", "mlx": "mx"}.get(project, project) + number


@pytest.mark.parametrize("name", [pytest.param(name, id=_short(name)) for name in sorted(BUGS)])
def test_the_suite_fails_the_historical_bug(outcomes, name):
    kind, case_id = BUGS[name]
    items = _items(outcomes, name, case_id)
    assert items, f"no check of numpy:history.{name} ran on {case_id}"
    values = {check: outcome for check, outcome in items.items() if not check.endswith("-gradient-cpu")}
    gradients = {check: outcome for check, outcome in items.items() if check.endswith("-gradient-cpu")}
    failing = sorted(check for check, outcome in (values if kind == "value" else gradients).items()
                     if outcome == "failed")
    assert failing, f"the suite passes the re-created {name} on {case_id}: {items}"
    if kind == "gradient":
        assert all(outcome != "failed" for outcome in values.values()), (
            f"{name} is a gradient bug: its value checks must pass, {values}")
    print(f"{name}: {len(failing)} failing {kind} checks, first {failing[0]}")
