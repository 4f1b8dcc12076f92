"""Work a binding can do ahead of its checks, on the core a plain run leaves idle.

A plain ``pytest`` runs its items one after another, on one core. A binding
whose first call is expensive, and whose framework caches that work on disk,
declares ``prepare`` (``torch.compile``: inductor compiles each graph once,
about 2.6 s on a 2-core machine, and keeps it in ``TORCHINDUCTOR_CACHE_DIR``).
When a run selects enough such checks, :class:`Preparer` starts one background
process, ``python -m conformance.prepare LIST``, which calls ``prepare`` on
them from the last to the first while the run works from the first: each graph
is built by whichever process reaches it first, and the other loads it from the
framework's own cache. Nothing is judged there and nothing it computes is used:
every check still calls its framework itself, and a graph loaded from
inductor's cache is the code a warm cache gives any user.

In such a run the checks to prepare, and the property tests of their bindings,
run last (a stable reorder, see :meth:`Preparer.pytest_collection_modifyitems`):
the background process then builds graphs from the end for as long as the run
spends on everything else, instead of meeting the run half-way through.

It starts only where it can help: not under xdist (its workers already use
every core), not on a single-core machine, not with ``XENT_PREPARE=0``, and not
for fewer than :data:`MINIMUM_CHECKS` checks. It runs at a lower priority, so
that the run's own compiler processes come first, and ends with the run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conformance.devices import DEFAULT as DEFAULT_DEVICE

MINIMUM_CHECKS = 20
# the run's own compilers keep priority over the work done ahead
NICENESS = 10


def _checks_of(items) -> list:
    """The checks the items run, in run order."""
    from conformance.plugin import CHECK_FIXTURES
    from conformance.suite import Check

    params = (getattr(item, "callspec", None) for item in items)
    checks = (spec.params.get(name) for spec in params if spec is not None for name in CHECK_FIXTURES)
    return [check for check in checks if isinstance(check, Check)]


def _prepared_checks(items) -> list:
    """The selected checks, in run order, whose binding can prepare them."""
    return [check for check in _checks_of(items) if check.binding.prepare is not None and not check.skip]


def _prepares(item, bindings) -> bool:
    """Whether ``item`` runs a binding that declares ``prepare``: a check of one, or a test parametrized with
    its id (a property test)."""
    spec = getattr(item, "callspec", None)
    named = [bindings.get(value) for value in spec.params.values() if isinstance(value, str)] if spec else []
    return any(binding is not None and binding.prepare is not None
               for binding in (*named, *(check.binding for check in _checks_of([item]))))


class Preparer:
    """Starts the background process after collection and stops it when the run ends."""

    def __init__(self, config):
        self.config = config
        self.process: subprocess.Popen | None = None
        self.listing: Path | None = None

    def wanted(self) -> bool:
        config = self.config
        return (os.environ.get("XENT_PREPARE", "1") != "0" and (os.cpu_count() or 1) > 1
                and not hasattr(config, "workerinput") and not getattr(config.option, "numprocesses", None)
                and not config.option.collectonly)

    @property
    def started(self) -> bool:
        return self.process is not None

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, session, config, items):
        """The prepared bindings' items last, in their own order: the run spends its first minutes on the
        rest while the background process builds their graphs from the last one backwards."""
        if not self.wanted() or len(_prepared_checks(items)) < MINIMUM_CHECKS:
            return  # the background process will not start: the order stays as collected
        from conformance.bindings import BindingError, load_bindings

        try:
            bindings = load_bindings(tuple(config.getoption("bindings")))
        except BindingError:
            return  # collection reports the broken bindings module
        prepared = {id(item) for item in items if _prepares(item, bindings)}
        items.sort(key=lambda item: id(item) in prepared)  # stable: each part keeps its order

    def pytest_collection_finish(self, session):
        if not self.wanted():
            return
        from conformance.plugin import devices_of

        checks = _prepared_checks(session.items)
        if len(checks) < MINIMUM_CHECKS:
            return
        listing = {"cases_dir": str(Path(self.config.getoption("cases_dir")).resolve()),
                   "bindings": list(self.config.getoption("bindings")),
                   "devices": list(devices_of(self.config)),
                   "checks": [check.id for check in checks]}
        handle, path = tempfile.mkstemp(prefix="xent-prepare-", suffix=".json")
        with os.fdopen(handle, "w") as file:
            json.dump(listing, file)
        self.listing = Path(path)
        self.process = subprocess.Popen([sys.executable, "-m", "conformance.prepare", path],
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True,
                                        cwd=str(self.config.rootpath))

    def pytest_unconfigure(self, config):
        self.stop()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self.listing is not None:
            self.listing.unlink(missing_ok=True)
            self.listing = None


def prepare_all(listing: dict) -> int:
    """Runs ``prepare`` on the listed checks from the last to the first; returns how many it ran."""
    from conformance.problems import make_problem
    from conformance.suite import build

    suite = build(listing["cases_dir"], tuple(listing["bindings"]),
                  tuple(listing.get("devices") or (DEFAULT_DEVICE,)))
    by_id = {check.id: check for check in suite.checks}
    done = 0
    for check_id in reversed(listing["checks"]):
        check = by_id.get(check_id)
        if check is None:
            continue
        try:
            check.binding.prepare(make_problem(check.case, check.dtype, check.binding, device=check.device))
        except Exception:  # a bad input's error is the check's to record, not this process's
            pass
        done += 1
    return done


def main(argv: list[str]) -> int:
    if hasattr(os, "nice"):
        os.nice(NICENESS)
    listing = json.loads(Path(argv[0]).read_text())
    prepare_all(listing)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
