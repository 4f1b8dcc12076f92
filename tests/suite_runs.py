"""Runs the suite in a subprocess with a bindings module from tests/plugins/
loaded by ``--bindings`` (the interface a third party uses), and reads each
item's outcome back from its JUnit XML. For the self-tests that prove the
suite fails an injected implementation."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLUGINS = ROOT / "tests" / "plugins"


def outcomes_with_bindings(module: str, selection: str, directory: Path, test_files) -> dict[str, str]:
    """{check id: 'passed' | 'failed' | 'skipped'} of the items ``-k selection`` picks."""
    junit = directory / "junit.xml"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PLUGINS), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-o", "addopts=", "-p", "no:cacheprovider", "-q", "--bindings", module,
         "-k", selection, f"--junitxml={junit}", f"--reports-dir={directory}", *test_files],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert junit.exists(), result.stdout[-3000:] + result.stderr[-3000:]
    outcomes = {}
    for case in ElementTree.parse(junit).getroot().iter("testcase"):
        name = case.get("name").split("[", 1)[1][:-1]
        failed = case.find("failure") is not None or case.find("error") is not None
        outcomes[name] = "failed" if failed else "skipped" if case.find("skipped") is not None else "passed"
    return outcomes


def small_cases_dir(directory: Path, *files: str, divergences: bool = True) -> Path:
    """``directory``/cases holding a few of the shipped case files (and the divergences), so that a child
    pytest collects hundreds of items instead of the whole suite."""
    cases = directory / "cases"
    cases.mkdir(parents=True)
    for name in (*files, *(("divergences.yaml",) if divergences else ())):
        shutil.copy(ROOT / "cases" / name, cases / name)
    return cases
