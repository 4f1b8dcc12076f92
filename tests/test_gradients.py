"""The gradient of every differentiable binding against the exact gradient.

The framework differentiates the sum of its output (torch autograd,
TensorFlow's GradientTape, Keras through TensorFlow) with respect to the
prediction, and to the labels where the API documents it
(tf.nn.softmax_cross_entropy_with_logits); :mod:`reference.gradients` gives
the exact value and the size of the terms, judged by the same tolerance model.
"""

import pytest

from conformance import signatures
from conformance.runner import failure_message, run_gradient_check, worst


def test_gradient(gradient_check, request):
    with signatures.pinned(gradient_check, request.node):
        outcomes = run_gradient_check(gradient_check)
    chosen = worst(outcomes)
    request.node.user_properties.extend(chosen.properties)
    failures = [failure_message(gradient_check, outcome) for outcome in outcomes if not outcome.verdict.ok]
    if failures:
        signatures.pin(gradient_check, request.node, signatures.of_outcomes(outcomes), chosen.verdict.max_ulp,
                       "\n".join(failures))
        pytest.fail("\n".join(failures), pytrace=False)
