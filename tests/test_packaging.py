"""Self-test: the wheel ships every file the installed ``xent-conformance`` runs the suite from.

The installed tool (``conformance.locations``) runs the tests, cases and baseline that a wheel installs
under ``<prefix>/share/xent-conformance`` (pyproject.toml's ``[tool.setuptools.data-files]``). A file added
beside them, a new case file or a test helper, and left out of those lists would be missing there only,
so every file of those directories must be listed. ``tox -e installed`` (run by ``.ci/run``) builds the wheel,
installs it into a fresh environment and runs ``xent-conformance -k torch`` from an empty directory.
"""

import fnmatch
import importlib.metadata
import sysconfig
import tomllib
from pathlib import Path

import pytest

from conformance import locations

pytestmark = pytest.mark.selftest

ROOT = Path(__file__).resolve().parent.parent
# what the installed suite runs from: every file in these directories ships
SHIPPED_DIRECTORIES = ("cases", "tests", "tests/plugins", "reports/baseline")
SHIPPED_FILES = ("pyproject.toml", "conftest.py", "README.md", "constraints.txt", "constraints-older.txt")


def _data_files() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["data-files"]


def _listed(relative: str) -> bool:
    target = f"{locations.DATA_DIRECTORY}/{relative}".rsplit("/", 1)[0]
    return any(fnmatch.fnmatch(relative, pattern) for pattern in _data_files().get(target, ()))


def _suite_files() -> list[str]:
    files = [name for name in SHIPPED_FILES]
    for directory in SHIPPED_DIRECTORIES:
        files += [path.relative_to(ROOT).as_posix() for path in sorted((ROOT / directory).iterdir())
                  if path.is_file() and path.suffix != ".pyc"]
    return files


def test_the_wheel_lists_every_file_the_installed_suite_needs():
    missing = [name for name in _suite_files() if not _listed(name)]
    assert not missing, f"pyproject.toml's [tool.setuptools.data-files] leaves out {missing}"


def test_the_data_files_keep_the_clone_layout():
    assert all(target == locations.DATA_DIRECTORY or target.startswith(f"{locations.DATA_DIRECTORY}/")
               for target in _data_files())
    assert _listed(locations.MARKER)


def test_the_suite_runs_from_the_root_that_locations_finds():
    """A clone's own files in a clone, the wheel's copy where a wheel installed the suite."""
    assert locations.ROOT == ROOT
    assert (ROOT == locations.BESIDE_PACKAGE) == (locations.BESIDE_PACKAGE / locations.MARKER).is_file()


def test_an_installed_suite_is_found_under_the_data_prefix(tmp_path, monkeypatch):
    installed = tmp_path / locations.DATA_DIRECTORY
    (installed / "cases").mkdir(parents=True)
    (installed / locations.MARKER).write_text("{}")
    monkeypatch.setattr(locations, "BESIDE_PACKAGE", tmp_path / "site-packages")
    monkeypatch.setattr(importlib.metadata, "files", lambda name: [])
    monkeypatch.setattr(sysconfig, "get_path", lambda name: str(tmp_path))
    assert locations.suite_root() == installed
    (installed / locations.MARKER).unlink()
    assert locations.installed_root() is None
