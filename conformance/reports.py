"""Session reports built from the test reports alone (so they work under xdist).

Every check item carries its identity in ``user_properties`` from collection
on (framework, binding, case, dtype), and its measurements once it has run.
The controller process gathers the reports and, at session end (also after
Ctrl-C), writes ``parity.json`` and ``parity.md`` into the reports directory.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import os
import platform
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

OUTCOMES = ("passed", "failed", "xfailed", "xpassed", "skipped", "error")
FRAMEWORK_PACKAGES = ("numpy", "torch", "tensorflow-cpu", "tensorflow", "keras", "jax", "optax", "onnx",
                      "ml-dtypes", "mpmath", "pytest", "hypothesis")


def environment() -> dict[str, Any]:
    versions = {}
    for package in FRAMEWORK_PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": _cpu_name(),
        "cores": os.cpu_count(),
        "packages": versions,
    }


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def outcome_of(report) -> str | None:
    """The item's final outcome from one phase report, or None if undecided."""
    if report.when == "call":
        if hasattr(report, "wasxfail"):
            return "xfailed" if report.skipped else "xpassed"
        return report.outcome
    if report.when == "setup":
        if report.skipped:
            return "xfailed" if hasattr(report, "wasxfail") else "skipped"
        if report.failed:
            return "error"
    if report.when == "teardown" and report.failed:
        return "error"
    return None


def _reason(report) -> str:
    if hasattr(report, "wasxfail"):
        return str(report.wasxfail)
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    if longrepr is None:
        return ""
    text = getattr(longrepr, "reprcrash", None)
    return str(text.message) if text is not None else str(longrepr)[:2000]


class Recorder:
    """Gathers one record per item; writes the reports on the controller."""

    def __init__(self, config):
        self.config = config
        self.records: dict[str, dict[str, Any]] = {}

    @property
    def is_worker(self) -> bool:
        return hasattr(self.config, "workerinput")

    def pytest_collection_modifyitems(self, session, config, items):
        for item in items:
            callspec = getattr(item, "callspec", None)
            if callspec is None:
                continue
            check = (callspec.params.get("value_check") or callspec.params.get("behaviour_check")
                     or callspec.params.get("gradient_check"))
            if check is None:
                continue
            item.user_properties.extend([
                ("check", check.id), ("kind", check.kind), ("framework", check.binding.framework),
                ("binding", check.binding.id), ("api", check.binding.api), ("family", check.case.family),
                ("case", check.case.id), ("dtype", check.dtype),
            ])

    def pytest_runtest_logreport(self, report):
        outcome = outcome_of(report)
        if outcome is None:
            return
        record = self.records.setdefault(report.nodeid, {"nodeid": report.nodeid})
        record.update({name: value for name, value in report.user_properties})
        # a teardown error does not hide the call's verdict, it adds to it
        if record.get("outcome") in (None, "passed") or outcome in ("error", "failed"):
            record["outcome"] = outcome
            record["reason"] = _reason(report)[:4000]
        record["duration"] = record.get("duration", 0.0) + report.duration

    def pytest_runtest_logfinish(self, nodeid, location):
        record = self.records.get(nodeid)
        if record is not None and "outcome" not in record:
            record["outcome"] = "passed"

    def pytest_sessionfinish(self, session, exitstatus):
        if self.is_worker:
            return
        directory = Path(self.config.getoption("reports_dir"))
        if not directory.is_absolute():
            directory = Path(self.config.rootpath) / directory
        write_parity(directory, list(self.records.values()), interrupted=bool(session.shouldstop or
                                                                                 exitstatus == 2))


def _cell_key(record) -> tuple[str, str, str]:
    return record["framework"], record["binding"], record["dtype"]


def parity_matrix(records) -> list[dict[str, Any]]:
    """One cell per (framework, binding, dtype): counts, worst error, worst case."""
    cells: dict[tuple, dict[str, Any]] = {}
    for record in records:
        if "binding" not in record:
            continue
        cell = cells.setdefault(_cell_key(record), {
            "framework": record["framework"], "binding": record["binding"], "api": record.get("api", ""),
            "dtype": record["dtype"], "counts": defaultdict(int), "worst_ulp": None, "worst_case": None,
            "worst_bound_ratio": None, "checks": [],
        })
        cell["counts"][record["outcome"]] += 1
        cell["checks"].append(record["check"])
        ulp = record.get("max_ulp")
        if isinstance(ulp, (int, float)) and (cell["worst_ulp"] is None or ulp > cell["worst_ulp"]):
            cell["worst_ulp"], cell["worst_case"] = ulp, record["case"]
            cell["worst_bound_ratio"] = record.get("bound_ratio")
    ordered = []
    for key in sorted(cells):
        cell = cells[key]
        cell["counts"] = {name: cell["counts"].get(name, 0) for name in OUTCOMES}
        ordered.append(cell)
    return ordered


def _plain(value):
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def write_parity(directory: Path, records, interrupted: bool = False) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    checks = sorted((r for r in records if "check" in r), key=lambda r: r["check"])
    document = {
        "environment": environment(),
        "interrupted": interrupted,
        "totals": {name: sum(1 for r in checks if r["outcome"] == name) for name in OUTCOMES},
        "matrix": parity_matrix(checks),
        "checks": [{k: _plain(v) for k, v in r.items()} for r in checks],
    }
    (directory / "parity.json").write_text(json.dumps(document, indent=1, default=str) + "\n")
    (directory / "parity.md").write_text(parity_markdown(document))


def parity_markdown(document) -> str:
    env = document["environment"]
    versions = ", ".join(f"{k} {v}" for k, v in env["packages"].items())
    totals = ", ".join(f"{v} {k}" for k, v in document["totals"].items() if v)
    lines = [
        "# Cross-entropy parity",
        "",
        f"Python {env['python']} on {env['cpu']} ({env['cores']} cores); {versions}.",
        "",
        f"Checks: {totals or 'none'}" + (" (run interrupted: partial)" if document["interrupted"] else ""),
        "",
        "| framework | API | dtype | pass | fail | xfail | xpass | skip | worst ULP | worst case |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for cell in document["matrix"]:
        c = cell["counts"]
        worst = "" if cell["worst_ulp"] is None else f"{cell['worst_ulp']:.3g}"
        lines.append(f"| {cell['framework']} | `{cell['api']}` | {cell['dtype']} | {c['passed']} | "
                     f"{c['failed'] + c['error']} | {c['xfailed']} | {c['xpassed']} | {c['skipped']} | {worst} | "
                     f"{cell['worst_case'] or ''} |")
    return "\n".join(lines) + "\n"
