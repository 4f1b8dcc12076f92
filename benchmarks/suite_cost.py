"""Part 1: the suite's wall time against its floor, measured in the same run.

A run's floor is what it could cost at best:

* the import time of the frameworks the run imported (seen by
  :mod:`benchmarks.importwatch`), in a fresh interpreter after NumPy;
* an empty pytest run with as many items, through the same plugins
  (``conformance.plugin``, pytest-html, JUnit XML, the parity reports) and,
  for ``-n 2``, the same two workers: pytest's start-up and its cost per item;
* the framework calls the run's checks make (``binding.call`` and
  ``binding.gradient``), timed alone outside pytest by :mod:`benchmarks.probe`;
  with ``-n 2`` half of their sum (two workers, perfectly balanced).

Above the floor, the same probe times the rest of each check item (the
reference and the harness: problem, tolerance verdict, report properties), and
the JUnit XML gives the time of the items that are not checks (self-tests,
property tests, cross-checks); what is left is collection and session work.
"""

from __future__ import annotations

import json
import tempfile
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from benchmarks.measure import (ROOT, Figure, probe, pytest_command, ratio_text, spread_text, subprocess_env, table,
                                timed_run)

TARGET = 1.5
RUNS = (
    ("pytest", []),
    ("pytest -n 2", ["-n", "2"]),
    ("pytest -k torch", ["-k", "torch"]),
    ("pytest -k tensorflow", ["-k", "tensorflow"]),
)
# --quick: the same four runs on the seeded cases only
QUICK_SELECTION = ["-m", "seed"]
OTHER_FILES_SHOWN = 5
IMPORT_ORDER = ("torch", "tensorflow", "keras", "jax", "optax", "onnx")
CHECK_TESTS = {"test_conformance": "value", "test_gradient": "gradient", "test_behaviour": "behaviour"}
EMPTY_TEST = '''import pytest


@pytest.mark.parametrize("index", range({count}))
def test_empty(index):
    pass
'''


def _read_junit(path: Path) -> dict:
    """Items, outcomes, and per item: node name and duration."""
    items = []
    outcomes = {"passed": 0, "failed": 0, "error": 0, "skipped": 0}
    for case in ElementTree.parse(path).getroot().iter("testcase"):
        children = {child.tag: child for child in case}
        outcome = ("failed" if "failure" in children else "error" if "error" in children
                   else "skipped" if "skipped" in children else "passed")
        outcomes[outcome] += 1
        problem = children.get("failure", children.get("error"))
        items.append({"name": case.get("name", ""), "file": case.get("classname", ""),
                      "seconds": float(case.get("time", 0.0)), "outcome": outcome,
                      "message": (problem.text or problem.get("message", ""))[-1500:] if problem is not None else ""})
    return {"items": items, "outcomes": outcomes}


def _check_of(item: dict) -> str | None:
    """The check id of a check item, None for the other tests."""
    name = item["name"]
    function, _, rest = name.partition("[")
    if function in CHECK_TESTS and rest.endswith("]"):
        return rest[:-1]
    return None


def _imports(path: Path) -> list[str]:
    seen = set()
    if path.exists():
        for line in path.read_text().splitlines():
            seen.update(json.loads(line))
    return [name for name in IMPORT_ORDER if name in seen]


def measure_run(label: str, args: list[str], repeat: int, work: Path, log) -> dict:
    wall = Figure()
    out = work / label.replace(" ", "_")
    for attempt in range(repeat):
        out.mkdir(parents=True, exist_ok=True)
        imports_file = out / "imports.jsonl"
        imports_file.unlink(missing_ok=True)
        log(f"  {' '.join(['pytest', *args])} ({attempt + 1}/{repeat})")
        seconds, completed = timed_run(pytest_command(args, out), env=subprocess_env(XENT_BENCH_IMPORTS=str(imports_file)))
        wall.add(seconds)
    junit = _read_junit(out / "junit.xml")
    summary = completed.stdout.strip().splitlines()[-1].strip("= ") if completed.stdout.strip() else ""
    return {"command": label, "args": args, "wall": wall, "exit_code": completed.returncode, "summary": summary,
            "junit": junit, "imported": _imports(imports_file)}


def measure_empty(count: int, parallel: bool, repeat: int, work: Path, log) -> Figure:
    """An empty run of ``count`` items through the suite's plugins and reports,
    on an empty case directory (so the suite's own cases are not loaded)."""
    folder = work / f"empty_{count}{'_n2' if parallel else ''}"
    (folder / "no_cases").mkdir(parents=True, exist_ok=True)
    test_file = folder / "test_empty.py"
    test_file.write_text(EMPTY_TEST.format(count=count))
    args = ["-c", str(ROOT / "pyproject.toml"), "--rootdir", str(ROOT), "-p", "conformance.plugin",
            f"--cases-dir={folder / 'no_cases'}", str(test_file)] + (["-n", "2"] if parallel else [])
    figure = Figure()
    for attempt in range(repeat):
        log(f"  empty run, {count} items{' -n 2' if parallel else ''} ({attempt + 1}/{repeat})")
        seconds, completed = timed_run(pytest_command(args, folder))
        if completed.returncode != 0:
            raise RuntimeError(f"the empty run failed:\n{completed.stdout[-2000:]}{completed.stderr[-2000:]}")
        figure.add(seconds)
    return figure


def measure_checks(repeat: int, work: Path, log) -> dict[str, list[float]]:
    """Per check id: framework call, reference and item seconds (medians)."""
    runs = []
    for attempt in range(repeat):
        log(f"  the checks' framework calls, outside pytest ({attempt + 1}/{repeat})")
        out = work / f"checks_{attempt}.json"
        probe("checks", out=str(out))
        runs.append(json.loads(out.read_text()))
    return {check: [Figure([run[check][k] for run in runs]).median for k in range(3)] for check in runs[0]}


def run(repeat: int, suite_repeat: int, quick: bool, log) -> dict:
    selection = QUICK_SELECTION if quick else []
    with tempfile.TemporaryDirectory(prefix="xent-bench-") as temporary:
        work = Path(temporary)
        runs = [measure_run(label, selection + args, suite_repeat, work, log) for label, args in RUNS]
        checks = measure_checks(suite_repeat, work, log)
        import_figures: dict[tuple, Figure] = {}
        empty_figures: dict[tuple, Figure] = {}
        for measured in runs:
            modules = tuple(measured["imported"])
            if modules not in import_figures:
                figure = Figure()
                for attempt in range(repeat):
                    log(f"  import {', '.join(modules) or '(none)'} ({attempt + 1}/{repeat})")
                    figure.add(probe("import", modules=list(modules))["seconds"] if modules else 0.0)
                import_figures[modules] = figure
            key = (len(measured["junit"]["items"]), "-n" in measured["args"])
            if key not in empty_figures:
                empty_figures[key] = measure_empty(*key, repeat, work, log)
    results = [_floor(measured, checks, import_figures[tuple(measured["imported"])],
                      empty_figures[(len(measured["junit"]["items"]), "-n" in measured["args"])])
               for measured in runs]
    return {"target": TARGET, "quick_selection": selection, "suite_repeat": suite_repeat, "repeat": repeat,
            "runs": results}


def _floor(measured: dict, checks: dict, imports: Figure, empty: Figure) -> dict:
    workers = 2 if "-n" in measured["args"] else 1
    items = measured["junit"]["items"]
    call = reference = harness = other_items = 0.0
    other_by_file: dict[str, float] = {}
    for item in items:
        check = _check_of(item)
        if check is None:
            other_items += item["seconds"]
            other_by_file[item["file"]] = other_by_file.get(item["file"], 0.0) + item["seconds"]
        elif check in checks and item["outcome"] != "skipped":
            call_seconds, reference_seconds, item_seconds = checks[check]
            call += call_seconds
            reference += reference_seconds
            harness += max(0.0, item_seconds - call_seconds - reference_seconds)
    floor = imports.median + empty.median + call / workers
    wall = measured["wall"].median
    excess = {"reference": reference / workers, "harness": harness / workers,
              "other_items": other_items / workers}
    excess["rest"] = wall - floor - sum(excess.values())
    return {
        "command": measured["command"], "args": measured["args"], "exit_code": measured["exit_code"],
        "summary": measured["summary"], "items": len(items), "outcomes": measured["junit"]["outcomes"],
        "frameworks_imported": measured["imported"], "wall": measured["wall"].as_dict(),
        "floor": {"imports": imports.as_dict(), "empty_run": empty.as_dict(),
                  "empty_item_seconds": empty.median / max(1, len(items)), "framework_calls": call / workers,
                  "total": floor},
        "ratio": wall / floor if floor else None, "target": TARGET, "met": floor > 0 and wall / floor <= TARGET,
        "excess": excess, "workers": workers,
        "other_items_by_file": dict(sorted(other_by_file.items(), key=lambda entry: -entry[1])),
        "not_passed": [f"{item['file']}::{item['name']} ({item['outcome']})" for item in items
                       if item["outcome"] in ("failed", "error")],
        "not_passed_messages": {f"{item['file']}::{item['name']}": item["message"] for item in items
                                if item["outcome"] in ("failed", "error")},
    }


def render(part: dict) -> str:
    rows, excess_rows = [], []
    for result in part["runs"]:
        floor = result["floor"]
        rows.append([f"`{result['command']}`", str(result["items"]), spread_text(result["wall"], digits=1),
                     spread_text(floor["imports"], digits=1), spread_text(floor["empty_run"], digits=1),
                     f"{floor['framework_calls']:.1f} s", f"{floor['total']:.1f} s",
                     ratio_text(result["wall"]["median"], floor["total"]),
                     f"<= {TARGET}x: {'met' if result['met'] else 'not met'}",
                     "yes" if "tensorflow" in result["frameworks_imported"] else "no"])
        excess = result["excess"]
        excess_rows.append([f"`{result['command']}`", f"{excess['reference']:.1f} s", f"{excess['harness']:.1f} s",
                            f"{excess['other_items']:.1f} s", f"{excess['rest']:.1f} s", result["summary"]])
    headers = ["run", "items", "wall", "imports", "empty run", "framework calls", "floor", "wall / floor",
               "target", "imports TF"]
    file_rows = [[f"`{result['command']}`", ", ".join(
        f"{name.removeprefix('tests.')} {seconds:.0f} s"
        for name, seconds in list(result["other_items_by_file"].items())[:OTHER_FILES_SHOWN])]
        for result in part["runs"]]
    failures = sorted({failure for result in part["runs"] for failure in result["not_passed"]})
    return "\n\n".join([
        table(headers, rows),
        "Above the floor (per worker for -n 2): the reference's exact values, the harness around each check "
        "(inputs, verdict, report properties), the items that are not checks (self-tests, properties, "
        "cross-checks), and the rest (collection, session start and reports):",
        table(["run", "reference", "harness", "other items", "rest", "pytest's summary"], excess_rows),
        "The items that are not checks, by file (item time as pytest measured it, all workers together):",
        table(["run", "slowest files"], file_rows),
    ] + ([f"Items that failed: {'; '.join(failures)}"] if failures else []))
