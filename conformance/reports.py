"""Session reports built from the test reports alone (so they work under xdist).

Every check item carries its identity in ``user_properties`` from collection
on (framework, binding, case, dtype), and its measurements once it has run.
The controller process gathers the reports and, at session end (also after
Ctrl-C), writes the parity report (:mod:`conformance.parity`), the accuracy
report and the behaviour matrix into the reports directory.
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

import pytest

from conformance import parity
from conformance.parity import plain as _plain
from conformance.suite import Check

# the harness's own packages; the frameworks' come from the bindings that ran (``versions_of``)
HARNESS_PACKAGES = ("numpy", "ml-dtypes", "mpmath", "onnx", "pytest", "hypothesis")


def environment(records=()) -> dict[str, Any]:
    """Python, platform, CPU, and the versions of the harness's packages and of
    every distribution behind the modules the records' bindings name."""
    from conformance.bindings import distributions

    modules = sorted({module for record in records for module in str(record.get("versions_of", "")).split(",")
                      if module})
    providers = {module: distributions(module) for module in modules}
    names = list(HARNESS_PACKAGES) + [name for module in modules for name in providers[module]]
    versions = {}
    for package in dict.fromkeys(names):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": cpu_name(),
        "simd": _simd_extensions(),
        "cores": os.cpu_count(),
        "packages": versions,
        "distributions": providers,
    }


def _cpuinfo(field: str) -> str | None:
    """The first value of ``field`` in /proc/cpuinfo, or None where the system has no such file or field."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.split(":", 1)[0].strip() == field:
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_name() -> str:
    return _cpuinfo("model name") or platform.processor() or "unknown"


# the x86 vector extensions the frameworks choose kernels by (torch's cpu capability, oneDNN's and XLA's ISA)
SIMD_EXTENSIONS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
                   "avx512_fp16", "amx_tile", "amx_bf16")


def _simd_extensions() -> list[str] | None:
    """Which of SIMD_EXTENSIONS the CPU reports (/proc/cpuinfo's flags), or None where it does not say."""
    flags = _cpuinfo("flags")
    return None if flags is None else [name for name in SIMD_EXTENSIONS if name in set(flags.split())]


CRASH_PHASE = "???"  # the phase of the report pytest-xdist makes for an item whose worker died


def outcome_of(report) -> str | None:
    """The item's final outcome from one phase report, or None if undecided."""
    if report.when == CRASH_PHASE:
        return "crashed"
    if report.when == "call":
        if report.failed and str(report.longrepr).startswith("[XPASS(strict)]"):
            return "xpassed"  # a strict xfail that passed: pytest fails it, the reports name it
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
        from conformance.versions import LABEL

        crash = getattr(report.longrepr, "reprcrash", None)
        if str(report.wasxfail).startswith(LABEL) and crash is not None:
            return str(crash.message)  # what differs on this version; the record's 'unverified' says why
        return str(report.wasxfail)
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    if longrepr is None:
        return ""
    text = getattr(longrepr, "reprcrash", None)
    return str(text.message) if text is not None else str(longrepr)[:2000]


def _identity(check) -> list[tuple[str, Any]]:
    return [("check", check.id), ("kind", check.kind), ("framework", check.binding.framework),
            ("binding", check.binding.id), ("api", check.binding.api), ("family", check.case.family),
            ("case", check.case.id), ("dtype", check.dtype), ("device", check.device),
            ("versions_of", ",".join(check.binding.version_modules())),
            *([("unverified", check.unverified)] if check.unverified else [])]


def _exit_status(worker) -> str:
    """'SIGABRT', 'SIGSEGV', ... or 'exit code N' of a dead xdist worker process
    (execnet keeps the Popen object; 'unknown' where it is out of reach)."""
    import signal

    popen = getattr(getattr(getattr(worker, "gateway", None), "_io", None), "popen", None)
    if popen is None:
        return "unknown signal"
    try:
        code = popen.wait(timeout=10)
    except Exception:
        return "unknown signal"
    if code is not None and code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


class Recorder:
    """Gathers one record per item; writes the reports on the controller."""

    def __init__(self, config, baseline=None, generated_ids=()):
        self.config = config
        self.records: dict[str, dict[str, Any]] = {}
        # the --parity-baseline checks by id, and every check id the suite generates
        self.baseline = baseline
        self.generated_ids = generated_ids
        self.baseline_diff: dict[str, Any] | None = None
        # items left out of pytest-html's table, by outcome, and that report's data (None: not looked up yet)
        self.unlisted = {"passed": 0, "skipped": 0}
        self._html = None

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
            if not isinstance(check, Check):  # none, or pytest's NOTSET where a case directory has no check of a kind
                continue
            item.user_properties.extend(_identity(check))

    @pytest.hookimpl(optionalhook=True)
    def pytest_handlecrashitem(self, crashitem, report, sched):
        """pytest-xdist's hook for an item whose worker died: the report it is
        about to log gets the check's identity and the signal, so that every
        report shows the crash and the baseline guard counts it."""
        check = self._check_of(crashitem)
        died = _exit_status(getattr(report, "node", None))
        worker = getattr(getattr(getattr(report, "node", None), "gateway", None), "id", "?")
        properties = [] if check is None else _identity(check)
        running = check.id if check is not None else crashitem
        properties += [("crash_signal", died), ("crash_worker", worker), ("last_check", running)]
        report.user_properties = list(report.user_properties) + properties
        report.longrepr = (f"crashed: worker {worker} died ({died}) while running {running}; "
                           "pytest-xdist started a new worker and the run went on")

    def _check_of(self, nodeid: str):
        if "[" not in nodeid:
            return None
        from conformance.plugin import suite_built

        try:
            suite = suite_built(self.config)
        except Exception:  # a broken suite was reported at collection
            return None
        wanted = nodeid[nodeid.index("[") + 1:-1]
        return next((check for check in suite.checks if check.id == wanted), None)

    def pytest_runtest_logreport(self, report):
        outcome = outcome_of(report)
        if outcome is None:
            if report.nodeid in self.records:  # a passing teardown's properties (a property test's region tally)
                self.records[report.nodeid].update({name: value for name, value in report.user_properties})
            return
        record = self.records.setdefault(report.nodeid, {"nodeid": report.nodeid})
        record.update({name: value for name, value in report.user_properties})
        # a teardown error does not hide the call's verdict, it adds to it
        if record.get("outcome") in (None, "passed") or outcome in ("error", "failed", "crashed"):
            record["outcome"] = outcome
            record["reason"] = _reason(report)[:4000]
        record["duration"] = record.get("duration", 0.0) + report.duration

    def pytest_runtest_logfinish(self, nodeid, location):
        record = self.records.get(nodeid)
        if record is not None and "outcome" not in record:
            record["outcome"] = "passed"

    def directory(self) -> Path:
        directory = Path(self.config.getoption("reports_dir"))
        return directory if directory.is_absolute() else Path(self.config.rootpath) / directory

    def pytest_sessionfinish(self, session, exitstatus):
        if self.is_worker or self.config.option.collectonly:
            return  # --collect-only runs nothing: the last run's reports stay
        interrupted = bool(session.shouldstop) or exitstatus == 2
        records = list(self.records.values())
        if self.baseline is not None:
            from conformance import baseline

            checks = [r for r in records if "check" in r]
            path = self.config.getoption("parity_baseline")
            self.baseline_diff = baseline.compare(checks, self.baseline, self.generated_ids, str(path),
                                                  (environment(checks), baseline.load_environment(Path(path))))
            if self.baseline_diff["regressions"] and session.exitstatus == 0:
                session.exitstatus = 1  # pytest.ExitCode.TESTS_FAILED: a regression fails the run
        write_parity(self.directory(), records, interrupted=interrupted, baseline_diff=self.baseline_diff)
        write_accuracy(self.directory(), records, interrupted=interrupted)
        write_behaviour(self.directory(), records, interrupted=interrupted)
        write_properties(self.directory(), records, interrupted=interrupted)

    def pytest_html_results_summary(self, prefix, summary, postfix):
        """A section of the HTML report: the accuracy table's worst cells."""
        records = list(self.records.values())
        if self.unlisted:
            prefix.append(f"<p>The table lists the items a reviewer opens this report for: failures, errors, "
                          f"expected failures and unexpected passes, with their messages. The "
                          f"{self.unlisted['passed']} passed and {self.unlisted['skipped']} skipped items are "
                          f"counted above and listed, with every figure and skip reason, in junit.xml and "
                          f"parity.html (a row for each of this suite's tens of thousands of items would not open in a "
                          f"browser in seconds).</p>")
        prefix.append(accuracy_html(accuracy_rows(records)))
        prefix.append(behaviour_html(behaviour_tables(records)))

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_row(self, report, cells):
        """Passed and skipped items leave pytest-html's table but stay in its counts (see the summary)."""
        if hasattr(report, "wasxfail") or report.failed or not (report.skipped or report.when == "call"):
            return
        html_report = self._html_report()
        if html_report is None:
            return  # another pytest-html: keep every row rather than lose a count
        outcome = "skipped" if report.skipped else "passed"
        html_report.outcomes = outcome  # pytest-html's own counter (its setter adds one)
        self.unlisted[outcome] += 1
        del cells[:]

    def _html_report(self):
        """pytest-html 4's report data, whose outcome counts the summary prints (None if not found)."""
        if self._html is None:
            try:
                from pytest_html.basereport import BaseReport
            except ImportError:
                return None
            plugin = next((p for p in self.config.pluginmanager.get_plugins() if isinstance(p, BaseReport)), None)
            data = getattr(plugin, "_report", None)
            self._html = data if hasattr(type(data), "outcomes") else False
        return self._html or None


def write_parity(directory: Path, records, interrupted: bool = False, baseline_diff=None) -> None:
    checks = [r for r in records if "check" in r]
    parity.write(directory, parity.document(checks, environment(checks), interrupted, baseline_diff))


# --- accuracy ----------------------------------------------------------------------------------------------

MEASURED = ("passed", "failed", "xfailed", "xpassed")


def accuracy_rows(records) -> list[dict[str, Any]]:
    """One row per framework x API x dtype x quantity (loss, gradient): max and
    median ULP error against the exact value, the worst case, the contract, and
    the largest ratio to the best peer on the same check (parity.peer_comparison)."""
    peers = parity.peer_comparison([r for r in records if "check" in r])
    cells: dict[tuple, list] = defaultdict(list)
    for record in records:
        if record.get("kind") not in ("value", "gradient") or record.get("outcome") not in MEASURED:
            continue
        if not isinstance(record.get("max_ulp"), (int, float, str)) or "max_ulp" not in record:
            continue
        quantity = "gradient" if record["kind"] == "gradient" else "loss"
        cells[(record["framework"], record["binding"], parity.device_of(record), record["dtype"], quantity)].append(
            record)
    rows = []
    for (framework, binding, device, dtype, quantity), group in sorted(
            cells.items(), key=lambda item: (item[0][:2], item[0][2] != "cpu", item[0][2:])):
        worst = max(group, key=lambda r: _number(r.get("max_ulp")))
        medians = sorted((_number(r.get("median_ulp")), int(r.get("n_elements", 1) or 1)) for r in group)
        rows.append({
            "framework": framework, "binding": binding, "api": group[0].get("api", ""), "device": device,
            "dtype": dtype,
            "quantity": quantity, "checks": len(group),
            "max_ulp": _number(worst.get("max_ulp")),
            "median_ulp": _weighted_median(medians),
            "worst_case": worst["case"],
            "worst_bound_use": max(_number(r.get("bound_ratio")) for r in group),
            "contract_held": all(r["outcome"] == "passed" for r in group),
            "known_divergences": sum(1 for r in group if r["outcome"] in ("xfailed", "xpassed")),
            "failed": sum(1 for r in group if r["outcome"] == "failed"),
            "worst_peer_ratio": max((_number(peers[r["check"]]["peer_ratio"]) for r in group if r["check"] in peers),
                                    default=1.0),
            "behind_peers": sum(1 for r in group if peers.get(r["check"], {}).get("lags_peers")),
        })
    return rows


def _number(value) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.inf


def _weighted_median(pairs) -> float:
    total = sum(weight for _, weight in pairs)
    running = 0
    for value, weight in pairs:
        running += weight
        if running * 2 >= total:
            return value
    return 0.0


def _ulp_text(value: float) -> str:
    if not math.isfinite(value):
        return "inf"
    return f"{value:.2f}" if value < 100 else f"{value:.3g}"


def write_accuracy(directory: Path, records, interrupted: bool = False) -> None:
    rows = accuracy_rows(records)
    directory.mkdir(parents=True, exist_ok=True)
    document = {"environment": environment(records), "interrupted": interrupted,
                "rows": [{k: _plain(v) for k, v in row.items()} for row in rows]}
    (directory / "accuracy.json").write_text(json.dumps(document, indent=1, default=str) + "\n")
    (directory / "accuracy.md").write_text(accuracy_markdown(rows, interrupted))


def accuracy_markdown(rows, interrupted: bool = False) -> str:
    lines = [
        "# Accuracy against the exact value",
        "",
        "Error in ULPs of the output dtype against the reference's exact value on the inputs rounded to the",
        "dtype, over every element of every check of the cell: max, and the median (per check, weighted by",
        "elements). *Bound use* is the largest |error| / bound of the tolerance model (over 1 fails).",
        "*Contract* is yes when every check of the cell passed; known divergences (strict xfails) say no.",
        "*× best peer* is the largest ratio of a check's max error to the best any API reaches on the same case,",
        f"dtype and quantity (at least half an ULP); ⚑ counts checks {parity.LAG_RATIO:g} times behind and over "
        f"{parity.LAG_ULP:g} ULP.",
        "" if not interrupted else "\n**The run was interrupted: these figures are partial.**\n",
        "| framework | API | device | dtype | quantity | checks | max ULP | median ULP | bound use | × best peer | "
        "worst case | contract |",
        "| --- | --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for row in rows:
        contract = "yes" if row["contract_held"] else (
            f"no ({row['known_divergences']} known divergence{'s' if row['known_divergences'] != 1 else ''}"
            + (f", {row['failed']} failed" if row["failed"] else "") + ")")
        lines.append(f"| {row['framework']} | `{row['binding'].split(':', 1)[1]}` | {row.get('device', 'cpu')} | "
                     f"{row['dtype']} | {row['quantity']} | "
                     f"{row['checks']} | {_ulp_text(row['max_ulp'])} | {_ulp_text(row['median_ulp'])} | "
                     f"{row['worst_bound_use']:.2g} | {_peer_cell(row)} | {row['worst_case']} | {contract} |")
    return "\n".join(lines) + "\n"


def _peer_cell(row) -> str:
    text = _ulp_text(row["worst_peer_ratio"])
    return f"{text} ⚑{row['behind_peers']}" if row["behind_peers"] else text


def accuracy_html(rows) -> str:
    """A compact table for the pytest-html report (framework x dtype x quantity)."""
    from html import escape

    summary: dict[tuple, dict] = {}
    for row in rows:
        key = (row["framework"], row["dtype"], row["quantity"])
        cell = summary.setdefault(key, {"max": 0.0, "case": "", "binding": "", "held": True, "checks": 0})
        cell["checks"] += row["checks"]
        cell["held"] = cell["held"] and row["contract_held"]
        if row["max_ulp"] >= cell["max"]:
            elsewhere = "" if row.get("device", "cpu") == "cpu" else f" on {row['device']}"
            cell.update(max=row["max_ulp"], case=row["worst_case"], binding=row["binding"] + elsewhere)
    body = "".join(
        f"<tr><td>{escape(f)}</td><td>{escape(d)}</td><td>{escape(q)}</td><td>{c['checks']}</td>"
        f"<td>{_ulp_text(c['max'])}</td><td>{escape(c['binding'])} on {escape(c['case'])}</td>"
        f"<td>{'yes' if c['held'] else 'no'}</td></tr>"
        for (f, d, q), c in sorted(summary.items()))
    return ("<h2>Accuracy against the exact value</h2><p>Worst ULP error per framework, dtype and quantity "
            "(reports/accuracy.md has every API).</p><table class='accuracy'><tr><th>framework</th><th>dtype</th>"
            "<th>quantity</th><th>checks</th><th>max ULP</th><th>worst</th><th>contract held</th></tr>"
            f"{body}</table>")


# --- behaviour matrix ----------------------------------------------------------------------------------------

def behaviour_tables(records) -> dict[str, dict[str, Any]]:
    """Per family: the special inputs (rows) x APIs (columns), cells the outcome."""
    tables: dict[str, dict[str, Any]] = {}
    for record in records:
        if record.get("kind") != "behaviour" or "binding" not in record:
            continue
        table = tables.setdefault(record["family"], {"columns": set(), "rows": {}})
        # one column per API, and per device beside the CPU's
        column = record["binding"] + ("" if parity.device_of(record) == "cpu" else f" on {parity.device_of(record)}")
        table["columns"].add(column)
        row = table["rows"].setdefault(record["case"], {})
        if record["outcome"] == "skipped":
            cell = "—"
        else:
            cell = record.get("cell", "?")
            if record["outcome"] == "crashed":
                cell = f"crashed ({record.get('crash_signal', 'unknown signal')})"
            elif record["outcome"] in ("failed", "error"):
                cell += " (changed!)"
            elif record["outcome"] == "xfailed":
                cell += " (known divergence)"
            elif record.get("unrecorded"):
                cell = f"unrecorded: {cell}"
        row[column] = cell
    for table in tables.values():
        table["columns"] = sorted(table["columns"])
    return tables


def _differs(cells: dict[str, str]) -> bool:
    """Frameworks disagree when their sets of outcomes differ."""
    by_framework: dict[str, set] = defaultdict(set)
    for binding, cell in cells.items():
        if cell != "—":
            by_framework[binding.split(":", 1)[0]].add(cell.split(" (")[0])
    outcomes = [frozenset(v) for v in by_framework.values()]
    return len(set(outcomes)) > 1


def _short(binding: str) -> str:
    framework, api = binding.split(":", 1)
    return f"{'tf' if framework == 'tensorflow' else framework}:{api.replace('(from_logits=True)', '(logits)')}"


def behaviour_markdown(tables, interrupted: bool = False) -> str:
    lines = ["# Behaviour on bad and special inputs", "",
             "What each API does with inputs outside the value domain (cases/behaviour.yaml). A row marked **≠** is",
             "one where the frameworks differ. `= reference` means the value the reference gives; `(changed!)`",
             "marks a cell whose behaviour no longer matches the recorded one.", ""]
    if interrupted:
        lines += ["**The run was interrupted: the matrix is partial.**", ""]
    for family in sorted(tables):
        table = tables[family]
        columns = table["columns"]
        lines += [f"## {family}", "", "| input | " + " | ".join(f"`{_short(c)}`" for c in columns) + " |",
                  "| --- |" + " --- |" * len(columns)]
        for case in sorted(table["rows"]):
            cells = table["rows"][case]
            mark = "**≠** " if _differs(cells) else ""
            lines.append(f"| {mark}{case} | " + " | ".join(cells.get(c, "") for c in columns) + " |")
        lines.append("")
    return "\n".join(lines)


def unrecorded_markdown(records) -> str:
    """The behaviour entries that new APIs lack, as YAML to paste under each case's ``expect``."""
    by_case: dict[str, set] = defaultdict(set)
    for record in records:
        if record.get("kind") == "behaviour" and record.get("unrecorded"):
            by_case[record["case"].split("@")[0]].add(record["unrecorded"])
    if not by_case:
        return ""
    lines = ["## Unrecorded", "",
             "APIs a behaviour case applies to but names no behaviour for: what each did, to paste under the",
             "case's `expect:` in cases/behaviour.yaml (add `documented:` and a `note`). They pass until then.", ""]
    for case in sorted(by_case):
        lines += [f"### {case}", "", "```yaml", "    expect:"]
        lines += [f"      {entry}" for entry in sorted(by_case[case])]
        lines += ["```", ""]
    return "\n".join(lines)


def write_behaviour(directory: Path, records, interrupted: bool = False) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    text = behaviour_markdown(behaviour_tables(records), interrupted)
    extra = unrecorded_markdown(records)
    (directory / "behaviour.md").write_text(text + ("\n" + extra if extra else ""))


def property_regions(records) -> dict:
    """{property: {"examples": n, "items": n, divergence id: {"weakly bound": n, "left out": n}}} summed over
    the property tests' items (their ``region_tally``, conformance.properties.TALLY)."""
    found: dict = {}
    for record in records:
        tally = record.get("region_tally")
        if not isinstance(tally, dict):
            continue
        name = record["nodeid"].split("::")[-1].split("[")[0]
        summary = found.setdefault(name, {"examples": 0, "items": 0})
        summary["items"] += 1
        for key, count in tally.items():
            if key == "examples":
                summary["examples"] += count
                continue
            entry, treatment = key.rsplit(": ", 1)
            summary.setdefault(entry, {"weakly bound": 0, "left out": 0})[treatment] += count
    return found


def properties_markdown(regions: dict, interrupted: bool = False) -> str:
    lines = ["# Property tests: what the known divergences' regions did", ""]
    if interrupted:
        lines += ["**The run was interrupted: the counts cover the items that ran.**", ""]
    lines += ["Per property, the examples drawn and, for each known divergence whose region some of them met, "
              "how many examples it held to the weaker algorithm's bound (the divergence is that algorithm's "
              "rounding: the invariant still had to hold within its error) and how many it left out "
              "(elements where no bound describes the framework: a clip, another function, NaN or an "
              "overflow). An example counts once per divergence and treatment, however many of its "
              "elements met the region. See conformance/regions.py.", "",
              "| property | items | examples | divergence | weakly bound | left out |",
              "| --- | ---: | ---: | --- | ---: | ---: |"]
    if not regions:
        lines.append("| (no property test ran) | | | | | |")
    for name in sorted(regions):
        summary = regions[name]
        entries = sorted(key for key in summary if key not in ("examples", "items"))
        if not entries:
            lines.append(f"| {name} | {summary['items']} | {summary['examples']} | (none met) | | |")
        for entry in entries:
            counts = summary[entry]
            lines.append(f"| {name} | {summary['items']} | {summary['examples']} | {entry} | "
                         f"{counts['weakly bound']} | {counts['left out']} |")
    return "\n".join(lines) + "\n"


def write_properties(directory: Path, records, interrupted: bool = False) -> None:
    """reports/properties.md and properties.json (empty where the run had no property test)."""
    regions = property_regions(records)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "properties.md").write_text(properties_markdown(regions, interrupted))
    (directory / "properties.json").write_text(json.dumps({"interrupted": interrupted, "properties": regions},
                                                          indent=1, sort_keys=True))


def behaviour_html(tables) -> str:
    from html import escape

    parts = ["<h2>Behaviour on bad and special inputs</h2><p>Rows where frameworks differ are marked ≠ "
             "(reports/behaviour.md has the same matrix).</p>"]
    for family in sorted(tables):
        table = tables[family]
        head = "".join(f"<th>{escape(_short(c))}</th>" for c in table["columns"])
        rows = []
        for case in sorted(table["rows"]):
            cells = table["rows"][case]
            mark = "≠ " if _differs(cells) else ""
            rows.append(f"<tr><td>{mark}{escape(case)}</td>"
                        + "".join(f"<td>{escape(cells.get(c, ''))}</td>" for c in table["columns"]) + "</tr>")
        parts.append(f"<h3>{escape(family)}</h3><table class='behaviour'><tr><th>input</th>{head}</tr>"
                     + "".join(rows) + "</table>")
    return "".join(parts)
