"""Part 1: the suite's wall time against its floor, measured in the same run.

A run's floor is what it could cost at best:

* the import time of the frameworks the run imported (seen by
  :mod:`benchmarks.importwatch`), in a fresh interpreter after NumPy, and
  of each worker process the run started (PaddlePaddle, Keras 3 on another
  backend: its adapter module and the frameworks its bindings require, in
  the worker's environment, each in a fresh interpreter);
* an empty pytest run with as many items, through the same plugins
  (``conformance.plugin``, pytest-html, JUnit XML, the parity reports) and,
  for ``-n 2``, the same two workers: pytest's start-up and its cost per item;
* the framework calls the run's checks make (``binding.call`` and
  ``binding.gradient``), timed alone outside pytest by :mod:`benchmarks.probe`,
  with the compilers' caches warm (the plain run's); with ``-n 2`` half of
  their sum (two workers, perfectly balanced);
* for a run with cold caches, the ``torch.compile`` graphs the cases need at
  least (one per loss, dtype, rank and reduction: :func:`benchmarks.probe.graph_key`)
  times what one graph costs inductor to build, forward and backward, in a
  fresh process with an empty cache (``inductor_graph``).

Each run names its caches: ``cold`` runs get an empty inductor cache
(``TORCHINDUCTOR_CACHE_DIR``) and an empty JAX compilation cache
(``JAX_COMPILATION_CACHE_DIR``) of their own, as a fresh clone on a fresh
machine has; the ``warm`` run reuses those the plain run just filled. The
entries a run leaves in them are what it compiled: inductor's FX graphs
(forward and backward apart) and XLA's executables.

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

from benchmarks import pages
from benchmarks.measure import (ROOT, Figure, probe, pytest_command, ratio_text, spread_text, subprocess_env, table,
                                timed_run)

TARGET = 1.5
COLD, WARM = "cold", "warm"
# (label, pytest's arguments, caches); the warm run reuses the caches of the first, plain, run
RUNS = (
    ("pytest", [], COLD),
    ("pytest, caches warm", [], WARM),
    ("pytest -n 2", ["-n", "2"], COLD),
    ("pytest -k torch", ["-k", "torch"], COLD),
    ("pytest -k tensorflow", ["-k", "tensorflow"], COLD),
    ("pytest -k tf_keras", ["-k", "tf_keras"], COLD),
    ("pytest -k jax", ["-k", "jax"], COLD),
    ("pytest -k paddle", ["-k", "paddle"], COLD),
    ("pytest -k keras_torch", ["-k", "keras_torch"], COLD),
)
LABELS = tuple(label for label, _, _ in RUNS)
# --quick: the same runs on the seeded cases only
QUICK_MARKER = "seed"
QUICK_SELECTION = ["-m", QUICK_MARKER]
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
            record = json.loads(line)
            if isinstance(record, list):
                seen.update(record)
    return [name for name in IMPORT_ORDER if name in seen]


def _workers(path: Path) -> list[list]:
    """[module, environment] of each worker process the run started (conformance.isolation), once each."""
    found = []
    if path.exists():
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if isinstance(record, dict) and [record["worker"], record["environment"]] not in found:
                found.append([record["worker"], record["environment"]])
    return sorted(found, key=json.dumps)


def _import_key(measured: dict) -> str:
    return json.dumps([measured["imported"], measured["workers"]])


def _slug(label: str) -> str:
    return "".join(character if character.isalnum() else "_" for character in label)


def cache_dirs(root: Path) -> dict[str, Path]:
    """The compilers' on-disk caches of one run, by the variables that point the frameworks at them."""
    return {"TORCHINDUCTOR_CACHE_DIR": root / "inductor", "JAX_COMPILATION_CACHE_DIR": root / "jax"}


def cache_env(caches: dict[str, Path]) -> dict[str, str]:
    return {name: str(path) for name, path in caches.items()}


def compiled_entries(caches: dict[str, Path]) -> dict[str, int]:
    """What the caches hold: inductor's FX graphs (a forward and a backward graph are two) and XLA's
    executables."""
    graphs = caches["TORCHINDUCTOR_CACHE_DIR"] / "fxgraph"
    executables = caches["JAX_COMPILATION_CACHE_DIR"]
    return {
        "inductor_graphs": sum(1 for entry in graphs.glob("*/*") if entry.is_dir()) if graphs.is_dir() else 0,
        "xla_executables": sum(1 for entry in executables.iterdir() if entry.name.endswith("-cache"))
        if executables.is_dir() else 0,
    }


def cold_caches(work: Path, label: str, attempt: int) -> dict[str, Path]:
    """The empty caches of one attempt of a cold run (the warm run reuses the plain run's last)."""
    return cache_dirs(work / "caches" / f"{_slug(label)}_{attempt}")


def measure_run(label: str, args: list[str], warm: dict[str, Path] | None, repeat: int, work: Path, log) -> dict:
    """``repeat`` runs of one pytest command, each with empty caches of its own, or all with ``warm``."""
    wall = Figure()
    out = work / _slug(label)
    compiled: list[dict[str, int]] = []
    for attempt in range(repeat):
        out.mkdir(parents=True, exist_ok=True)
        caches = warm or cold_caches(work, label, attempt)
        before = compiled_entries(caches)
        imports_file = out / "imports.jsonl"
        imports_file.unlink(missing_ok=True)
        log(f"  {' '.join(['pytest', *args])}, caches {'warm' if warm else 'empty'} "
            f"({attempt + 1}/{repeat})")
        seconds, completed = timed_run(pytest_command(args, out), env=subprocess_env(
            XENT_BENCH_IMPORTS=str(imports_file), **cache_env(caches)))
        wall.add(seconds)
        compiled.append({name: count - before[name] for name, count in compiled_entries(caches).items()})
    junit = _read_junit(out / "junit.xml")
    summary = completed.stdout.strip().splitlines()[-1].strip("= ") if completed.stdout.strip() else ""
    return {"command": label, "args": args, "caches": WARM if warm else COLD, "wall": wall,
            "exit_code": completed.returncode, "summary": summary, "junit": junit,
            "imported": _imports(imports_file), "workers": _workers(imports_file), "compiled": compiled[-1]}


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


def measure_checks(repeat: int, work: Path, caches: dict[str, Path], marker: str | None, log,
                   only: set[str] | None = None) -> dict[str, list]:
    """Per check id (of the checks with ``marker``, where one is given, and of ``only``, where given):
    framework call, reference and item seconds (medians), with the given (warm) caches, and the
    torch.compile graph the check needs at least (None for the other bindings)."""
    runs = []
    only_file = None
    if only is not None:
        only_file = work / "checks_only.json"
        only_file.write_text(json.dumps(sorted(only)))
    for attempt in range(repeat):
        log(f"  the checks' framework calls, outside pytest, caches warm ({attempt + 1}/{repeat})")
        out = work / f"checks_{attempt}.json"
        probe("checks", out=str(out), marker=marker, only=str(only_file) if only_file else None,
              env=cache_env(caches))
        runs.append(json.loads(out.read_text()))
    return {check: [Figure([run[check][k] for run in runs]).median for k in range(3)] + [runs[0][check][3]]
            for check in runs[0]}


def measure_graph(repeat: int, work: Path, log) -> Figure:
    """What one torch.compile graph costs inductor to build, forward and backward, with an empty cache."""
    figure = Figure()
    for attempt in range(repeat):
        log(f"  one torch.compile graph, empty cache ({attempt + 1}/{repeat})")
        answer = probe("inductor_graph", cache_dir=str(work / "caches" / f"one_graph_{attempt}"))
        if answer.get("skipped"):
            return Figure()
        figure.add(answer["seconds"])
    return figure


def chosen_runs(labels=None) -> tuple:
    """The RUNS named by ``labels`` (all where None), in RUNS' order. The warm run reuses the plain run's
    caches, so it needs the plain run."""
    if not labels:
        return RUNS
    unknown = sorted(set(labels) - set(LABELS))
    if unknown:
        raise SystemExit(f"unknown run {', '.join(map(repr, unknown))}; the runs are: {', '.join(map(repr, LABELS))}")
    if any(caches == WARM for label, _, caches in RUNS if label in labels) and RUNS[0][0] not in labels:
        raise SystemExit(f"the warm run reuses the caches of {RUNS[0][0]!r}: name that run too")
    return tuple(run for run in RUNS if run[0] in labels)


def run(repeat: int, suite_repeat: int, quick: bool, log, labels=None) -> dict:
    selection = QUICK_SELECTION if quick else []
    chosen = chosen_runs(labels)
    with tempfile.TemporaryDirectory(prefix="xent-bench-") as temporary:
        work = Path(temporary)
        # the plain run's last caches, filled by it: the warm run's and the framework calls'
        warm = cold_caches(work, RUNS[0][0], suite_repeat - 1)
        runs = [measure_run(label, selection + args, warm if caches == WARM else None, suite_repeat, work, log)
                for label, args, caches in chosen]
        # the plain run's reports as a reviewer opens them (its folder is its own: the other runs write elsewhere)
        reports = pages.measure(work / _slug(RUNS[0][0]), repeat, log) if chosen[0] == RUNS[0] else None
        # the checks the chosen runs ran, timed outside pytest (every check where the plain run is chosen)
        ran = None if chosen[0] == RUNS[0] else {check for measured in runs for item in measured["junit"]["items"]
                                                 if (check := _check_of(item)) is not None}
        checks = measure_checks(suite_repeat, work, warm, QUICK_MARKER if quick else None, log, only=ran)
        graph = measure_graph(repeat, work, log)
        import_figures: dict[str, Figure] = {}
        empty_figures: dict[tuple, Figure] = {}
        for measured in runs:
            modules, workers = measured["imported"], measured["workers"]
            if _import_key(measured) not in import_figures:
                figure = Figure()
                for attempt in range(repeat):
                    log(f"  import {', '.join(modules) or '(none)'}"
                        f"{''.join(f'; worker {module} {environment}' for module, environment in workers)} "
                        f"({attempt + 1}/{repeat})")
                    seconds = probe("import", modules=list(modules))["seconds"] if modules else 0.0
                    for module, environment in workers:  # each in a fresh interpreter, as the worker starts
                        seconds += probe("worker_import", module=module, environment=environment)["seconds"]
                    figure.add(seconds)
                import_figures[_import_key(measured)] = figure
            key = (len(measured["junit"]["items"]), "-n" in measured["args"])
            if key not in empty_figures:
                empty_figures[key] = measure_empty(*key, repeat, work, log)
    results = [_floor(measured, checks, graph, import_figures[_import_key(measured)],
                      empty_figures[(len(measured["junit"]["items"]), "-n" in measured["args"])])
               for measured in runs]
    return {"target": TARGET, "quick_selection": selection, "suite_repeat": suite_repeat, "repeat": repeat,
            "inductor_graph": graph.as_dict(), "runs": results, **({"pages": reports} if reports else {})}


def _floor(measured: dict, checks: dict, graph: Figure, imports: Figure, empty: Figure) -> dict:
    workers = 2 if "-n" in measured["args"] else 1
    items = measured["junit"]["items"]
    call = reference = harness = other_items = 0.0
    needed_graphs: set = set()
    other_by_file: dict[str, float] = {}
    for item in items:
        check = _check_of(item)
        if check is None:
            other_items += item["seconds"]
            other_by_file[item["file"]] = other_by_file.get(item["file"], 0.0) + item["seconds"]
        elif check in checks and item["outcome"] != "skipped":
            call_seconds, reference_seconds, item_seconds, graph_key = checks[check]
            call += call_seconds
            reference += reference_seconds
            harness += max(0.0, item_seconds - call_seconds - reference_seconds)
            if graph_key is not None:
                needed_graphs.add(tuple(graph_key))
    cold = measured["caches"] == COLD
    compile_floor = len(needed_graphs) * graph.median if cold and needed_graphs else 0.0
    floor = imports.median + empty.median + (call + compile_floor) / workers
    wall = measured["wall"].median
    excess = {"reference": reference / workers, "harness": harness / workers,
              "other_items": other_items / workers}
    excess["rest"] = wall - floor - sum(excess.values())
    return {
        "caches": measured["caches"], "compiled": measured["compiled"],
        "graphs_needed": len(needed_graphs), "compile_floor": compile_floor / workers,
        "command": measured["command"], "args": measured["args"], "exit_code": measured["exit_code"],
        "summary": measured["summary"], "items": len(items), "outcomes": measured["junit"]["outcomes"],
        "frameworks_imported": measured["imported"], "worker_processes": measured["workers"],
        "wall": measured["wall"].as_dict(),
        "floor": {"imports": imports.as_dict(), "empty_run": empty.as_dict(),
                  "empty_item_seconds": empty.median / max(1, len(items)), "framework_calls": call / workers,
                  "compile": compile_floor / workers, "total": floor},
        "ratio": wall / floor if floor else None, "target": TARGET, "met": floor > 0 and wall / floor <= TARGET,
        "excess": excess, "workers": workers,
        "other_items_by_file": dict(sorted(other_by_file.items(), key=lambda entry: -entry[1])),
        "not_passed": [f"{item['file']}::{item['name']} ({item['outcome']})" for item in items
                       if item["outcome"] in ("failed", "error")],
        "not_passed_messages": {f"{item['file']}::{item['name']}": item["message"] for item in items
                                if item["outcome"] in ("failed", "error")},
    }


def render(part: dict) -> str:
    rows, excess_rows, compile_rows = [], [], []
    for result in part["runs"]:
        floor = result["floor"]
        rows.append([f"`{result['command']}`", result["caches"], str(result["items"]),
                     spread_text(result["wall"], digits=1),
                     spread_text(floor["imports"], digits=1), spread_text(floor["empty_run"], digits=1),
                     f"{floor['framework_calls']:.1f} s", f"{floor['compile']:.1f} s", f"{floor['total']:.1f} s",
                     ratio_text(result["wall"]["median"], floor["total"]),
                     f"<= {TARGET}x: {'met' if result['met'] else 'not met'}",
                     "yes" if "tensorflow" in result["frameworks_imported"] else "no"])
        excess = result["excess"]
        excess_rows.append([f"`{result['command']}`", f"{excess['reference']:.1f} s", f"{excess['harness']:.1f} s",
                            f"{excess['other_items']:.1f} s", f"{excess['rest']:.1f} s", result["summary"]])
        compiled = result["compiled"]
        compile_rows.append([f"`{result['command']}`", result["caches"], str(compiled["inductor_graphs"]),
                             str(result["graphs_needed"]), str(compiled["xla_executables"])])
    headers = ["run", "caches", "items", "wall", "imports", "empty run", "framework calls", "compile",
               "floor", "wall / floor", "target", "imports TF"]
    graph = part.get("inductor_graph", {})
    graph_text = spread_text(graph, digits=2) if graph.get("samples") else "- (torch is not installed)"
    file_rows = [[f"`{result['command']}`", ", ".join(
        f"{name.removeprefix('tests.')} {seconds:.0f} s"
        for name, seconds in list(result["other_items_by_file"].items())[:OTHER_FILES_SHOWN])]
        for result in part["runs"]]
    failures = sorted({failure for result in part["runs"] for failure in result["not_passed"]})
    return "\n\n".join([
        table(headers, rows),
        f"Compiles: one torch.compile graph, forward and backward, costs inductor {graph_text} in an empty "
        "cache; a cold run's floor counts the graphs its checks need at least (one per loss, dtype, rank and "
        "reduction), the warm run's none. What each run left in its caches (inductor's FX graphs, forward and "
        "backward apart, from the run and its background process; XLA's executables):",
        table(["run", "caches", "inductor graphs built", "graphs needed at least", "XLA executables built"],
              compile_rows),
        "Above the floor (per worker for -n 2): the reference's exact values, the harness around each check "
        "(inputs, verdict, report properties), the items that are not checks (self-tests, properties, "
        "cross-checks), and the rest (collection, session start and reports):",
        table(["run", "reference", "harness", "other items", "rest", "pytest's summary"], excess_rows),
        "The items that are not checks, by file (item time as pytest measured it, all workers together):",
        table(["run", "slowest files"], file_rows),
        pages.render(part["pages"], "The plain `pytest` run's pages") if "pages" in part else "",
    ] + ([f"Items that failed: {'; '.join(failures)}"] if failures else []))
