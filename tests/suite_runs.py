"""Runs the suite on a few case files with a bindings module from tests/plugins/
loaded by ``--bindings`` (the interface a third party uses), in this process, and
reads each item's outcome from its reports. For the self-tests that prove the
suite fails an injected implementation. In this process because nothing here
needs a fresh interpreter: a child pytest would pay its start-up and imports
again (2 s, and several more for each framework a selection imports)."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLUGINS = ROOT / "tests" / "plugins"


class _Outcomes:
    """{check id: 'passed' | 'failed' | 'skipped'}: a failure in any phase fails the item."""

    def __init__(self):
        self.found: dict[str, str] = {}

    def pytest_runtest_logreport(self, report):
        name = report.nodeid.split("[", 1)[1][:-1]
        if report.failed:
            self.found[name] = "failed"
        elif report.skipped and self.found.get(name) != "failed":
            self.found[name] = "skipped"
        elif report.when == "call":
            self.found.setdefault(name, "passed")


class NoFinalCollection:
    """pytest collects the garbage at the end of a session, to find exceptions raised in finalizers; in this
    process, which holds a whole run's objects, that takes seconds per run (pytester turns it off for its
    in-process runs too)."""

    @staticmethod
    def pytest_configure(config):
        try:
            from _pytest.unraisableexception import gc_collect_iterations_key
        except ImportError:  # a pytest without it collects nothing there
            return
        config.stash[gc_collect_iterations_key] = 0


@dataclasses.dataclass
class Finished:
    returncode: int
    output: str  # what the run printed, stdout and stderr


def run_in_process(*args: str, plugins=(), environ=None, bindings_path: bool = False) -> Finished:
    """``pytest args`` run in this process, rooted at the project, with ``environ`` set for the run and the
    bindings modules of tests/plugins/ importable where ``bindings_path``."""
    output = io.StringIO()
    saved = {name: os.environ.get(name) for name in environ or {}}
    os.environ.update(environ or {})
    if bindings_path:
        sys.path.insert(0, str(PLUGINS))
    try:
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
            code = pytest.main(["-o", "addopts=", "-p", "no:cacheprovider", "-p", "no:xdist", f"--rootdir={ROOT}",
                                *args], plugins=[*plugins, NoFinalCollection()])
    finally:
        if bindings_path:
            sys.path.remove(str(PLUGINS))
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return Finished(int(code), output.getvalue())


def outcomes_with_bindings(module: str, selection: str, directory: Path, test_files, case_files) -> dict[str, str]:
    """{check id: 'passed' | 'failed' | 'skipped'} of the items ``-k selection`` picks on ``case_files``."""
    cases = small_cases_dir(directory, *case_files, divergences=False)
    outcomes = _Outcomes()
    run = run_in_process("-q", "--bindings", module, "-k", selection, f"--cases-dir={cases}",
                         f"--reports-dir={directory}", *(str(ROOT / name) for name in test_files),
                         plugins=[outcomes], bindings_path=True)
    assert run.returncode in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED) and outcomes.found, run.output[-3000:]
    return outcomes.found


def small_cases_dir(directory: Path, *files: str, divergences: bool = True) -> Path:
    """``directory``/cases holding a few of the shipped case files (and the divergences), so that a run of
    the suite, in this process or a child, collects hundreds of items instead of the whole suite."""
    cases = directory / "cases"
    cases.mkdir(parents=True)
    for name in (*files, *(("divergences.yaml",) if divergences else ())):
        shutil.copy(ROOT / "cases" / name, cases / name)
    return cases
