"""The pytest plugin: parametrizes the checks, marks them, writes the reports.

* ``value_check`` / ``behaviour_check`` fixtures are parametrized with the
  suite's checks (:mod:`conformance.suite`), ids ``<family>-<case>-<binding>-<dtype>``,
  markers for the framework (``torch``, ``tensorflow``, ``keras`` ...), the dtype
  and the case's tags, a skip with its reason where a binding cannot run a
  case, and a strict xfail where a known divergence matches.
* A malformed case file fails collection with a message naming the file, the
  case and the field.
* Reports are written at the end of every session, interrupted or not, from
  the test reports (so also under xdist): see :mod:`conformance.reports`.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

import pytest

from conformance import reports, signatures
from conformance.cases import CASES_DIR, CaseError, schema
from conformance.devices import DEFAULT as DEFAULT_DEVICE, DeviceError, kind as device_kind, validate as valid_device
from conformance.bindings import AS_CALLED, BindingError, load_bindings, selection_words
from conformance.runner import CheckFailure
from conformance.suite import build

DTYPE_MARKERS = ("float16", "bfloat16", "float32", "float64")
# the case tags of the schema (one vocabulary), then the markers of the test modules
TAG_MARKERS = (*schema()["$defs"]["tags"]["items"]["enum"], "gradient", "property", "selftest", "crosscheck", "parity")
# markers of the test modules that say more than a tag
MODULE_MARKERS = {
    "scale": "the reference at language-model scale, its memory and accuracy (imports no framework, so the "
             "single-framework tox environments leave it to the full run)",
}
SUITE_ERROR = pytest.StashKey[str]()


def pytest_addoption(parser):
    group = parser.getgroup("xent-conformance")
    group.addoption("--cases-dir", default=str(CASES_DIR),
                    help="directory of case files (default: the suite's cases/)")
    group.addoption("--bindings", action="append", default=[], metavar="MODULE",
                    help="import MODULE and add its BINDINGS (repeatable)")
    group.addoption("--reports-dir", default="reports", help="where the parity reports go (default: reports/)")
    group.addoption("--parity-baseline", default=None, metavar="PATH",
                    help="compare the run with a stored parity.json: new failures and errors grown beyond "
                         "the threshold fail the run (see conformance/baseline.py)")
    group.addoption("--device", action="append", default=None, metavar="NAME", dest="devices",
                    help="run the checks on device NAME (cpu, cuda, cuda:1; repeatable; default: cpu): bindings "
                         "that do not declare it skip, and every check id ends with its device (see "
                         "conformance/devices.py)")
    group.addoption("--divergence-signatures", default=str(signatures.DEFAULT_BASELINE), metavar="PATH",
                    help="the parity.json whose recorded failures pin how each known divergence fails (default: "
                         "the shipped baseline; '' turns it off; see conformance/signatures.py)")


# OpenMP threads that have finished a parallel region sleep instead of spinning (libgomp, which torch and
# Paddle load, spins for a while by default). A run is two busy processes on two cores (the items and the
# work done ahead, conformance.prepare), and a thread spinning in one took the core the other's parallel
# region waited for: torch's eager gradient checks took 17 ms each instead of 1, and `-k "torch:nn or
# torch:compile"` 107 s instead of 53. How a thread waits changes no result, nor any compiled graph's cache key.
OPENMP_WAIT = {"OMP_WAIT_POLICY": "PASSIVE"}


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    for name, value in OPENMP_WAIT.items():  # before any framework loads its OpenMP runtime; a user's own wins
        os.environ.setdefault(name, value)
    try:
        words = selection_words(load_bindings(tuple(config.getoption("bindings"))))
    except BindingError:
        words = ()  # collection reports the broken bindings module
    for name in words:
        about = ("APIs as users call them (default arguments and dtypes)" if name == AS_CALLED
                 else f"checks of the bindings labelled {name}")
        config.addinivalue_line("markers", f"{name}: {about}")
    for name in DTYPE_MARKERS:
        config.addinivalue_line("markers", f"{name}: checks in {name}")
    try:
        run_devices = tuple(map(valid_device, devices_of(config)))
    except DeviceError as error:
        raise pytest.UsageError(str(error)) from error
    for name in dict.fromkeys(("cpu", *map(device_kind, run_devices))):
        config.addinivalue_line("markers", f"{name}: checks run on a {name} device (--device)")
    for name in TAG_MARKERS:
        config.addinivalue_line("markers", f"{name}: cases tagged {name}")
    for name, about in MODULE_MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {about}")
    stored, generated = None, ()
    path = config.getoption("parity_baseline")
    if path and not hasattr(config, "workerinput"):
        from conformance import baseline

        try:
            stored = baseline.load(Path(path))
        except baseline.BaselineError as error:
            raise pytest.UsageError(str(error)) from error
        try:
            generated = tuple(check.id for check in suite_built(config).checks)
        except (CaseError, BindingError):
            generated = ()  # collection reports the broken case file
    config.pluginmanager.register(reports.Recorder(config, stored, generated), "xent-conformance-recorder")
    from conformance.prepare import Preparer

    config.pluginmanager.register(Preparer(config), "xent-conformance-preparer")


def devices_of(config) -> tuple[str, ...]:
    """The run's devices, ``--device`` in the order given; cpu where none is."""
    return tuple(config.getoption("devices", None) or (DEFAULT_DEVICE,))


def suite_built(config):
    """The run's suite: its case directory, bindings and devices (built once per process)."""
    return build(str(Path(config.getoption("cases_dir")).resolve()), tuple(config.getoption("bindings")),
                 devices_of(config))


def suite_of(config):
    """The suite, built once per process; a broken case file becomes a clean
    collection error instead of a traceback."""
    try:
        return suite_built(config)
    except (CaseError, BindingError) as error:
        pytest.fail(str(error), pytrace=False)


def _marks(check, named=None):
    """``named``: one marker object per name, shared by the checks of one parametrization (looking a marker
    up on ``pytest.mark`` validates its name each time, a second of collection over the suite)."""
    named = {} if named is None else named
    marks = [named[name] if name in named else named.setdefault(name, getattr(pytest.mark, name))
             for name in check.markers]
    if check.skip:
        marks.append(pytest.mark.skip(reason=check.skip))
    if check.unverified:
        # outside the versions its entry was measured on: it runs, and whichever way it ends is reported
        # (xfailed or xpassed) and listed in the parity report, without failing the run
        from conformance.versions import LABEL

        reason = f"{LABEL}: {check.unverified}"
        if check.divergence is not None:
            reason += f"; {check.divergence.xfail_reason()}"
        marks.append(pytest.mark.xfail(reason=reason, strict=False))
    elif check.divergence is not None:
        # a check fails by pytest.fail (outside the bound) or by CheckFailure (a wrong dtype, a raising call);
        # anything else is the harness's own error and must not pass for the divergence
        marks.append(pytest.mark.xfail(reason=check.divergence.xfail_reason(), strict=check.divergence.strict,
                                       raises=(pytest.fail.Exception, CheckFailure)))
    return marks


# set where -k left checks out of the parametrization: this run's collection is not the whole suite's
KEYWORD_FILTERED = pytest.StashKey[bool]()


def _keyword_filter(metafunc):
    """``-k``'s expression as a test of one check's item before pytest makes it, or None (no -k, another
    parametrization of the same function, or pytest's matcher not where it was). It sees the names pytest's
    own -k matches the item by (its name, its parents' names and the function's keywords, its markers), so it
    keeps exactly the checks -k would select, and ``pytest -k torch`` does not make 30000 items only to
    deselect them (a self-test compares the two on every kind of name)."""
    expression = metafunc.config.getoption("keyword")
    if not expression or metafunc.definition.get_closest_marker("parametrize") is not None:
        return None
    try:
        from _pytest.mark import KeywordMatcher
        from _pytest.mark.expression import Expression

        compiled = Expression.compile(expression)
        names = frozenset(KeywordMatcher.from_item(metafunc.definition)._names)
    except Exception:  # a pytest whose private matcher moved: every check is made and -k deselects, as before
        return None
    function = metafunc.definition.originalname

    def keeps(check, marks) -> bool:
        own = {f"{function}[{check.id}]", *(mark.name for mark in marks)}
        return compiled.evaluate(KeywordMatcher(names | own))

    return keeps


def pytest_generate_tests(metafunc):
    for fixture, kind in (("value_check", "value"), ("behaviour_check", "behaviour"), ("gradient_check", "gradient")):
        if fixture not in metafunc.fixturenames:
            continue
        suite = suite_of(metafunc.config)
        named = {}
        params = [pytest.param(check, id=check.id, marks=_marks(check, named))
                  for check in suite.checks if check.kind == kind]
        keeps = _keyword_filter(metafunc)
        kept = [param for param in params if keeps(param.values[0], param.marks)] if keeps else params
        # none kept: all of them, for -k to deselect (an empty parametrization would make a skipped item of its own)
        if kept and len(kept) < len(params):
            metafunc.config.stash[KEYWORD_FILTERED] = True
            params = kept
        metafunc.parametrize(fixture, params)


COLLECTED_KEYS = pytest.StashKey[set]()
# every item collected, before -k and -m deselect: the self-tests that ask what a selection picks, or what is
# stale, read a whole-suite run's own collection instead of collecting the suite again
COLLECTED_ITEMS = pytest.StashKey[list]()
CHECK_FIXTURES = ("value_check", "behaviour_check", "gradient_check")


def item_key(item) -> str:
    """How divergence data names a test that is not a check: 'function:param-id'."""
    callspec = getattr(item, "callspec", None)
    return f"{item.originalname}:{callspec.id}" if callspec else item.originalname


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session, config, items):
    """Known divergences also apply to tests that are not checks (the
    cross-checks), matched on 'function:param-id'; runs before -k deselects.
    Items marked large run only when the -m expression names large."""
    if "large" not in (config.getoption("markexpr") or ""):
        large = [item for item in items if item.get_closest_marker("large") is not None]
        if large:
            config.hook.pytest_deselected(items=large)
            items[:] = [item for item in items if item.get_closest_marker("large") is None]
    config.stash[COLLECTED_ITEMS] = list(items)
    keys = config.stash.setdefault(COLLECTED_KEYS, set())
    try:
        suite = suite_built(config)
    except (CaseError, BindingError):
        return
    from conformance.divergences import first_match

    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and any(name in callspec.params for name in CHECK_FIXTURES):
            continue
        key = item_key(item)
        keys.add(key)
        entry = first_match(suite.divergences, key)
        if entry is None:
            continue
        # such an item runs several APIs, so every distribution the entry names counts (conformance.versions)
        unverified = entry.unverified()
        if unverified:
            from conformance.versions import LABEL

            item.add_marker(pytest.mark.xfail(reason=f"{LABEL}: {unverified}; {entry.xfail_reason()}", strict=False))
        else:
            item.add_marker(pytest.mark.xfail(reason=entry.xfail_reason(), strict=entry.strict, raises=AssertionError))


def pytest_terminal_summary(terminalreporter, config):
    recorder = config.pluginmanager.get_plugin("xent-conformance-recorder")
    if recorder is not None and recorder.baseline_diff is not None:
        from conformance.baseline import terminal_lines

        diff = recorder.baseline_diff
        terminalreporter.write_sep("=", "parity baseline", red=bool(diff["regressions"]),
                                   green=not diff["regressions"])
        for line in terminal_lines(diff):
            terminalreporter.write_line(line)
    try:
        suite = suite_built(config)
    except (CaseError, BindingError):
        return
    if config.pluginmanager.has_plugin("dsession") and not config.stash.get(COLLECTED_KEYS, set()):
        return  # under xdist the controller collects nothing: the tests that are not checks are unknown here
    stale = stale_divergences(config, suite) if _whole_suite(config) else ()
    if stale:
        terminalreporter.write_sep("=", "stale divergences", yellow=True)
        for entry, patterns in stale:
            whole = "the whole entry " if len(patterns) == len(entry.match) else ""
            terminalreporter.write_line(f"{entry.id}: {whole}matches no check that runs: {', '.join(patterns)}")


def stale_divergences(config, suite=None) -> list:
    """(entry, patterns): the patterns of each entry that match no check of the suite that runs and no
    collected test that is not a check."""
    suite = suite or suite_of(config)
    keys = config.stash.get(COLLECTED_KEYS, set())
    found = []
    for entry, patterns in suite.stale_divergences():
        dead = tuple(pattern for pattern in patterns if not any(fnmatch.fnmatchcase(key, pattern) for key in keys))
        if dead:
            found.append((entry, dead))
    return found


def shipped_suite_collected(config) -> bool:
    """This run collected every test file on the shipped cases and bindings only."""
    return (_whole_suite(config) and not config.getoption("bindings") and COLLECTED_ITEMS in config.stash
            and not config.stash.get(KEYWORD_FILTERED, False)
            and Path(config.getoption("cases_dir")).resolve() == Path(CASES_DIR).resolve())


def _whole_suite(config) -> bool:
    """Stale entries mean something only when every test file was collected
    (-k and -m deselect after the divergences are matched, so they do not count)."""
    return not config.args or [Path(a).resolve() for a in config.args] == [Path(config.rootpath, "tests").resolve()]
