"""Shared measuring tools: samples and their spread, subprocesses, the machine, tables."""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from conformance.reports import cpu_name

ROOT = Path(__file__).resolve().parent.parent
REPORT_PATH = ROOT / "reports" / "benchmarks.json"
# the line of a probe's stdout that holds its JSON answer starts with this
ANSWER = "probe-answer: "
PACKAGES = ("numpy", "torch", "tensorflow-cpu", "tensorflow", "keras", "jax", "optax", "onnx", "pytest",
            "pytest-xdist", "pytest-html", "hypothesis", "mpmath")


@dataclass
class Figure:
    """Repeated measurements of one quantity: the median and the spread."""

    samples: list[float] = field(default_factory=list)

    def add(self, value: float) -> None:
        self.samples.append(float(value))

    @property
    def median(self) -> float:
        return statistics.median(self.samples) if self.samples else float("nan")

    @property
    def low(self) -> float:
        return min(self.samples) if self.samples else float("nan")

    @property
    def high(self) -> float:
        return max(self.samples) if self.samples else float("nan")

    def as_dict(self) -> dict:
        return {"median": self.median, "min": self.low, "max": self.high, "samples": self.samples}

    def text(self, unit: str = "s", digits: int = 2) -> str:
        return spread_text(self.as_dict(), unit, digits)


def spread_text(figure: dict, unit: str = "s", digits: int = 2) -> str:
    """'1.23 s (1.20-1.31)': the median and, for several samples, the range."""
    if not figure["samples"]:
        return "-"
    median = f"{figure['median']:.{digits}f} {unit}".rstrip()
    if len(figure["samples"]) == 1:
        return median
    return f"{median} ({figure['min']:.{digits}f}-{figure['max']:.{digits}f})"


def ratio_text(measured: float, floor: float) -> str:
    return f"{measured / floor:.2f}x" if floor > 0 else "-"


def subprocess_env(**extra: str) -> dict:
    """The caller's environment, with the repository importable (also in
    pytest-xdist workers) and TensorFlow's start-up chatter off."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in [env.get("PYTHONPATH")] if p])
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.update(extra)
    return env


def timed_run(command: list[str], *, env: dict | None = None, timeout: float = 3600,
              cwd: Path = ROOT) -> tuple[float, subprocess.CompletedProcess]:
    """Runs a command to its end; wall seconds and the completed process."""
    start = time.perf_counter()
    completed = subprocess.run(command, cwd=cwd, env=env or subprocess_env(), capture_output=True, text=True,
                               timeout=timeout)
    return time.perf_counter() - start, completed


def pytest_command(args: list[str], out: Path) -> list[str]:
    """pytest as a user runs it, with the reports sent to ``out`` (so that the
    repository's reports/ is left alone) and the import watch added."""
    return [sys.executable, "-m", "pytest", *args, f"--junitxml={out / 'junit.xml'}",
            f"--html={out / 'report.html'}", f"--reports-dir={out}", "-p", "benchmarks.importwatch"]


def probe(task: str, env: dict[str, str] | None = None, **params) -> dict:
    """One measurement in a fresh interpreter (:mod:`benchmarks.probe`), with ``env`` added to its
    environment: its JSON answer, or an error naming the task and the interpreter's last words."""
    command = [sys.executable, "-m", "benchmarks.probe", json.dumps({"task": task, **params})]
    _, completed = timed_run(command, env=subprocess_env(**(env or {})))
    # a framework may print to stdout too (Paddle's worker at exit): the answer is the line marked as such
    answers = [line.removeprefix(ANSWER) for line in completed.stdout.splitlines() if line.startswith(ANSWER)]
    if completed.returncode != 0 or not answers:
        raise RuntimeError(f"probe {task} {params} failed ({completed.returncode}):\n{completed.stdout[-2000:]}"
                           f"\n{completed.stderr[-3000:]}")
    return json.loads(answers[-1])


def machine() -> dict:
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": cpu_name(),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gib": _memory_gib(),
        "packages": versions,
    }


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2 ** 20, 1)
    except OSError:
        pass
    return None


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A Markdown table, columns padded for the terminal."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]

    def line(cells):
        return "| " + " | ".join(str(cell).ljust(width) for cell, width in zip(cells, widths)) + " |"

    return "\n".join([line(headers), "|" + "|".join("-" * (width + 2) for width in widths) + "|"]
                     + [line(row) for row in rows])


def write_report(document: dict, path: Path = REPORT_PATH) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    return path
