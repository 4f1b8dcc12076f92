"""Where the suite's own files are: its cases and schema, its tests, the shipped baseline, and the pytest
configuration (``pyproject.toml``, ``conftest.py``) that runs them.

In a clone, or an editable install of one, they sit beside the package. A wheel (``pip install
xent-conformance``) installs them as data files under ``<prefix>/share/xent-conformance``, in the same
layout (pyproject.toml's ``[tool.setuptools.data-files]``), so that the installed ``xent-conformance``
runs the same tests against the installed frameworks from any directory. The wheel's own file list
(``importlib.metadata``) says where that prefix is, which also holds for a ``--user`` or ``--prefix``
install.
"""

from __future__ import annotations

import importlib.metadata
import sysconfig
from pathlib import Path

DISTRIBUTION = "xent-conformance"
DATA_DIRECTORY = "share/xent-conformance"
# one file that only the suite's root holds
MARKER = "cases/schema.json"
BESIDE_PACKAGE = Path(__file__).resolve().parent.parent


def installed_root() -> Path | None:
    """The suite's root as a wheel installed it, or None."""
    try:
        files = importlib.metadata.files(DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for file in files:
        if file.as_posix().endswith(f"{DATA_DIRECTORY}/{MARKER}"):
            return Path(file.locate()).resolve().parent.parent
    candidate = Path(sysconfig.get_path("data")) / DATA_DIRECTORY
    return candidate if (candidate / MARKER).is_file() else None


def suite_root() -> Path:
    """Beside the package where the suite's files are there (a clone), else where a wheel installed them."""
    if (BESIDE_PACKAGE / MARKER).is_file():
        return BESIDE_PACKAGE
    return installed_root() or BESIDE_PACKAGE


ROOT = suite_root()
BASELINE = ROOT / "reports" / "baseline" / "parity.json"
