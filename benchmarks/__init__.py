"""Benchmarks of the suite and the reference: ``python -m benchmarks``.

Three parts, every figure measured in the same run and printed as a ratio
against a floor or a baseline measured beside it:

* ``suite`` (:mod:`benchmarks.suite_cost`): the wall time of ``pytest``,
  ``pytest -n 2``, ``pytest -k torch`` and ``pytest -k tensorflow`` against
  each run's floor: the import time of the frameworks the run imported, an
  empty pytest run with as many items and the same plugins and reports, and
  the framework calls the run's checks make, timed alone;
* ``reference`` (:mod:`benchmarks.scale`): the reference against
  ``torch.nn.functional`` and ``tf.nn`` at language-model shapes, time and
  peak extra memory;
* ``collection`` (:mod:`benchmarks.growth`): ``pytest --collect-only`` and how
  a run, the case loader and the reference cache grow with the number of cases.

Measurements run in subprocesses (:mod:`benchmarks.probe`), one pytest at a
time. The table goes to stdout and every figure to ``reports/benchmarks.json``.
"""
