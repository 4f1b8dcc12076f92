"""Keras 2 bindings: ``tf-keras`` (imported as ``tf_keras``), the legacy Keras
that ``TF_USE_LEGACY_KERAS=1`` puts behind ``tf.keras`` and that many
production models still run. The same binding list as Keras 3
(``conformance.frameworks.tensorflow``: every loss as a class and a function,
and the metrics), held to Keras 2's own convention
(``reference.conventions.tf_keras``).

What differs from Keras 3 in the forms: a loss object takes no ``dtype`` and
computes in the prediction's dtype, so its pinned form (``reduction='none'``)
and its as-called form (Keras 2's default 'auto', i.e. 'sum_over_batch_size')
see the input dtype; a metric object as called casts both inputs to floatx()
(float32) before computing. Ids read ``tf_keras:keras.losses.X``, so ``-k
tf_keras`` selects Keras 2 and ``-k keras`` every Keras.
"""

from __future__ import annotations

import os

from conformance.frameworks.tensorflow import KERAS_FLOATX, KerasFlavour, keras_bindings
from reference.conventions import tf_keras as ref_tf_keras

TF_KERAS_DOCS = "https://github.com/keras-team/tf-keras/blob/v2.21.0/tf_keras/src/losses.py"
TF_KERAS_METRICS_DOCS = ("https://github.com/keras-team/tf-keras/blob/v2.21.0/tf_keras/src/metrics/"
                         "probabilistic_metrics.py")


def _tf_keras():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tf_keras

    return tf_keras


KERAS2 = KerasFlavour(
    framework="tf_keras", api_prefix="tf_keras", module=_tf_keras, conventions=ref_tf_keras,
    reductions=frozenset(ref_tf_keras.REDUCTIONS), reduction_none="none", losses_take_dtype=False,
    metric_as_called_dtypes={"compute_dtype": KERAS_FLOATX}, requires=("tf_keras", "tensorflow"),
    versions_of=("tensorflow", "tf_keras"), losses_doc=TF_KERAS_DOCS, metrics_doc=TF_KERAS_METRICS_DOCS,
    default_reduction=ref_tf_keras.DEFAULT_REDUCTION,
    # tf_keras.losses.SparseCategoricalCrossentropy has no axis (its function has)
    sparse_object_options=("ignore_class",), sparse_axis_last_only=False, extra="keras2")

BINDINGS = keras_bindings(KERAS2)
