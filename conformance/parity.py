"""The parity report: framework x API x dtype, for reviewers and for CI.

``parity.json`` is the machine-readable record of a run: the environment, the
totals, one matrix cell per (framework, binding, dtype) with its counts and
worst error, and every check with its outcome, measured errors, xfail reason
and the version of the framework that ran it. ``parity.md`` is short enough
for a CI job summary; ``parity.html`` is one self-contained page (no network:
inline CSS, no scripts) whose cells open, with ``<details>``, onto their checks.
All three are built from the test reports alone, so they work under xdist.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from html import escape
from pathlib import Path
from typing import Any

OUTCOMES = ("passed", "failed", "xfailed", "xpassed", "skipped", "error", "crashed")
DTYPE_ORDER = ("float16", "bfloat16", "float32", "float64")
def framework_version(record: dict[str, Any], environment: dict[str, Any]) -> str:
    """'torch 2.13.0', 'tensorflow-cpu 2.21.0, keras 3.15.1', ...: the versions of
    the distributions behind the modules the check's binding names."""
    packages = environment.get("packages", {})
    providers = environment.get("distributions", {})
    names = [name for module in str(record.get("versions_of", "")).split(",") if module
             for name in providers.get(module, [module])]
    return ", ".join(f"{name} {packages[name]}" for name in dict.fromkeys(names) if name in packages) or "unknown"


def _number(value) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number


def plain(value):
    """JSON has no inf or NaN: such floats are written as strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


# An API lags its peers where its error is LAG_RATIO times the best error any API reaches on the same case,
# dtype and quantity, and more than LAG_ULP ULPs: inside its contract or not, a reviewer must see it. The best
# error counts as at least half an ULP (a correctly rounded result), so a ratio needs a real gap.
LAG_RATIO = 100.0
LAG_ULP = 4.0
MEASURED = ("passed", "failed", "xfailed", "xpassed")


def peer_comparison(checks) -> dict[str, dict[str, Any]]:
    """For every measured check, by check id: the best max error (ULPs) any API
    reaches on the same case, dtype and quantity (loss, gradient), the API that
    reaches it, this check's ratio to it, and whether it lags."""
    groups: dict[tuple, list] = defaultdict(list)
    for record in checks:
        ulp = _number(record.get("max_ulp"))
        if record.get("kind") in ("value", "gradient") and record.get("outcome") in MEASURED and ulp is not None:
            groups[(record["case"], record["dtype"], record["kind"])].append((ulp, record))
    found = {}
    for group in groups.values():
        if len({record["binding"] for _, record in group}) < 2:
            continue
        best_ulp, best = min(group, key=lambda pair: pair[0])
        for ulp, record in group:
            ratio = ulp / max(best_ulp, 0.5) if math.isfinite(ulp) else math.inf
            found[record["check"]] = {
                "best_peer_ulp": plain(best_ulp), "best_peer": best["binding"], "peer_ratio": plain(ratio),
                "lags_peers": bool(ratio >= LAG_RATIO and ulp > LAG_ULP),
            }
    return found


# the framework labels whose ``keras.`` bindings are Keras 3 on one backend (Keras 2, tf_keras, is another library)
KERAS3_BACKENDS = {"tensorflow": "TensorFlow", "keras_torch": "torch", "keras_jax": "JAX"}
_ENTRY = re.compile(r"^\[(\w+)\]")


def _keras3_form(binding: str) -> tuple[str, str] | None:
    """(backend label, the binding id without it) for a Keras 3 binding, else None."""
    label, _, rest = binding.partition(":")
    return (label, rest) if label in KERAS3_BACKENDS and rest.startswith("keras.") else None


def _verdict(record: dict[str, Any]) -> str:
    """passed, failed, or the known divergence's id that absorbed the check."""
    if record["outcome"] in ("xfailed", "xpassed"):
        match = _ENTRY.match(record.get("reason") or "")
        return match.group(1) if match else record["outcome"]
    return record["outcome"]


def backend_agreement(checks) -> list[dict[str, Any]]:
    """Does a Keras 3 loss change when the backend changes? For each Keras 3 API measured on two or more
    backends, over the checks (case, dtype, value or gradient) measured on all of them: how many agree (every
    backend passes: each within the tolerance model's bound of the exact value, so within two bounds of each
    other) and how many differ (a backend fails or is a known divergence where another is not, or their
    divergences differ; the rest fail the same way on every backend), and the difference with the largest error
    gap, each backend's error in ULPs of the dtype and its verdict."""
    groups: dict[str, dict[tuple, dict[str, dict]]] = defaultdict(lambda: defaultdict(dict))
    for record in checks:
        form = _keras3_form(record.get("binding", ""))
        if form is None or record.get("kind") not in ("value", "gradient") or record["outcome"] not in MEASURED:
            continue
        groups[form[1]][(record["case"], record["dtype"], record["kind"])][form[0]] = record
    rows = []
    for api, by_check in sorted(groups.items()):
        backends = sorted({label for measured in by_check.values() for label in measured},
                          key=list(KERAS3_BACKENDS).index)
        if len(backends) < 2:
            continue
        compared, agree, differ, worst, worst_gap = 0, 0, 0, None, -1.0
        for (case, dtype, kind), measured in by_check.items():
            if len(measured) < len(backends):
                continue
            compared += 1
            verdicts = {label: _verdict(measured[label]) for label in backends}
            if all(verdict == "passed" for verdict in verdicts.values()):
                agree += 1
                continue
            if len(set(verdicts.values())) == 1:
                continue  # the same failure or divergence on every backend: they agree on it
            differ += 1
            errors = [_number(measured[label].get("max_ulp")) for label in backends]
            if None in errors:  # a failure with no error to measure (a dtype, a shape, a raise): shown, ranked last
                gap = -0.5
            else:
                finite = [error for error in errors if math.isfinite(error)]
                gap = max(finite) - min(finite) if len(finite) == len(errors) else math.inf
            if gap > worst_gap:
                worst_gap = gap
                worst = {"case": case, "dtype": dtype, "kind": kind,
                         "backends": {label: {"verdict": verdicts[label], "max_ulp": plain(errors[index]),
                                              "failure": measured[label].get("failure")}
                                      for index, label in enumerate(backends)}}
        rows.append({"api": api, "backends": backends, "compared": compared, "agree": agree, "differ": differ,
                     "worst": worst})
    return rows


def _agreement_worst_text(row: dict[str, Any]) -> str:
    worst = row["worst"]
    if worst is None:
        return ""
    parts = [f"{KERAS3_BACKENDS[label]} {_ulp_text(state['max_ulp']) or state.get('failure') or ''}".rstrip()
             + ("" if state["verdict"] == "passed" else f" ({state['verdict']})")
             for label, state in worst["backends"].items()]
    return f"{worst['case']}, {worst['dtype']} {worst['kind']}: " + "; ".join(parts)


def agreement_markdown(rows) -> list[str]:
    if not rows:
        return []
    lines = ["", "## Keras 3 across backends", "",
             "The same Keras 3 API on each backend it ran on, over the checks measured on all of them: *agree* "
             "counts the checks every backend passes (each within the bound of the exact value), *differ* those "
             "where one fails or is a known divergence where another is not (the rest fail alike on every backend); "
             "the widest difference is shown with each backend's error in ULPs of the dtype.", "",
             "| API | backends | compared | agree | differ | widest difference |",
             "| --- | --- | ---: | ---: | ---: | --- |"]
    for row in rows:
        lines.append(f"| `keras.{row['api'].removeprefix('keras.')}` | "
                     + ", ".join(KERAS3_BACKENDS[label] for label in row["backends"])
                     + f" | {row['compared']} | {row['agree']} | {row['differ']} | {_agreement_worst_text(row)} |")
    return lines


def agreement_html(rows) -> str:
    if not rows:
        return ""
    body = "".join(
        f"<tr><td><code>{escape(row['api'])}</code></td>"
        f"<td>{escape(', '.join(KERAS3_BACKENDS[label] for label in row['backends']))}</td>"
        f"<td>{row['compared']}</td><td>{row['agree']}</td><td>{row['differ']}</td>"
        f"<td>{escape(_agreement_worst_text(row))}</td></tr>" for row in rows)
    return ("<h2 id='backends'>Keras 3 across backends</h2><p class='legend'>The same Keras 3 API on each backend "
            "it ran on, over the checks measured on all of them: <b>agree</b> counts the checks every backend passes "
            "(each within the bound of the exact value), <b>differ</b> those where one fails or is a known "
            "divergence where another is not; the widest difference is shown with each backend's error in ULPs of "
            "the dtype.</p><table id='backend-agreement'><thead><tr><th>API</th><th>backends</th><th>compared</th>"
            f"<th>agree</th><th>differ</th><th>widest difference</th></tr></thead><tbody>{body}</tbody></table>")


def device_of(record: dict[str, Any]) -> str:
    """The device a check ran on (a report from before devices: cpu)."""
    return record.get("device") or "cpu"


def matrix(checks) -> list[dict[str, Any]]:
    """One cell per (framework, binding, device, dtype): counts, worst error, worst case."""
    cells: dict[tuple, dict[str, Any]] = {}
    for record in checks:
        key = (record["framework"], record["binding"], device_of(record), record["dtype"])
        cell = cells.setdefault(key, {
            "framework": record["framework"], "binding": record["binding"], "api": record.get("api", ""),
            "device": device_of(record), "dtype": record["dtype"], "counts": defaultdict(int), "worst_ulp": None, "worst_case": None,
            "worst_check": None, "worst_bound_ratio": None, "bound_use": None, "checks": [], "lagging": 0,
        })
        # an unverified check (conformance.versions) that passes here is a pass in the matrix, and listed
        # with the unverified ones below it, not a failure
        outcome = "passed" if record.get("unverified") and record["outcome"] == "xpassed" else record["outcome"]
        cell["counts"][outcome] += 1
        cell["lagging"] += bool(record.get("lags_peers"))
        cell["checks"].append(record["check"])
        ulp = _number(record.get("max_ulp"))
        if ulp is not None and (cell["worst_ulp"] is None or ulp > cell["worst_ulp"]):
            cell["worst_ulp"], cell["worst_case"], cell["worst_check"] = ulp, record["case"], record["check"]
            cell["worst_bound_ratio"] = record.get("bound_ratio")
        use = _number(record.get("bound_ratio"))
        if use is not None and (cell["bound_use"] is None or use > cell["bound_use"]):
            cell["bound_use"] = use
    ordered = []
    for key in sorted(cells, key=lambda k: (k[0], k[1], k[2] != "cpu", k[2], _dtype_rank(k[3]))):
        cell = cells[key]
        cell["counts"] = {name: cell["counts"].get(name, 0) for name in OUTCOMES}
        cell["worst_ulp"] = plain(cell["worst_ulp"])
        cell["bound_use"] = plain(cell["bound_use"])
        ordered.append(cell)
    return ordered


def _dtype_rank(dtype: str) -> int:
    return DTYPE_ORDER.index(dtype) if dtype in DTYPE_ORDER else len(DTYPE_ORDER)


def document(checks, environment: dict[str, Any], interrupted: bool, baseline_diff=None) -> dict[str, Any]:
    peers = peer_comparison(checks)
    checks = sorted(({**record, **peers.get(record["check"], {})} for record in checks), key=lambda r: r["check"])
    rows = []
    for record in checks:
        row = {k: plain(v) for k, v in record.items()}
        row["framework_version"] = framework_version(record, environment)
        rows.append(row)
    result = {
        "environment": environment,
        "interrupted": interrupted,
        "totals": {name: sum(1 for r in checks if r["outcome"] == name) for name in OUTCOMES},
        "matrix": matrix(checks),
        "checks": rows,
    }
    if baseline_diff is not None:
        result["baseline"] = baseline_diff
    result["unverified"] = unverified_entries(checks)
    result["backends"] = backend_agreement(checks)
    return result


def unverified_entries(checks) -> list[dict[str, Any]]:
    """The checks that ran outside the versions their known divergence or behaviour entry was measured on,
    grouped by why: how many still fail as recorded or otherwise (xfailed) and how many pass here (xpassed)."""
    groups: dict[str, dict[str, Any]] = {}
    for record in checks:
        why = record.get("unverified")
        if not why or record["outcome"] == "skipped":
            continue
        group = groups.setdefault(why, {"why": why, "checks": 0, "xfailed": 0, "xpassed": 0, "examples": []})
        group["checks"] += 1
        if record["outcome"] in ("xfailed", "xpassed"):
            group[record["outcome"]] += 1
        if len(group["examples"]) < 3:
            group["examples"].append(record["check"])
    return sorted(groups.values(), key=lambda group: group["why"])


UNVERIFIED_TEXT = ("Known divergences and behaviour entries state the versions they were measured on "
                   "(`versions:` in the case files); these checks ran on other versions, as non-strict xfails that "
                   "fail no run. *Still differ*: the check failed here (the divergence, or another behaviour, is "
                   "there; its failure is in the check's reason). *Pass here*: the API now meets the reference, "
                   "or behaves as recorded, on the installed version.")


def unverified_markdown(groups) -> list[str]:
    if not groups:
        return []
    total = sum(group["checks"] for group in groups)
    lines = ["", f"## Unverified on the installed versions ({total} checks)", "", UNVERIFIED_TEXT, "",
             "| why | checks | still differ | pass here | for example |", "| --- | ---: | ---: | ---: | --- |"]
    for group in groups:
        lines.append(f"| {group['why']} | {group['checks']} | {group['xfailed']} | {group['xpassed']} | "
                     + ", ".join(f"`{check}`" for check in group["examples"]) + " |")
    return lines


def unverified_html(groups) -> str:
    if not groups:
        return ""
    rows = "".join(f"<tr><td>{escape(group['why'])}</td><td>{group['checks']}</td><td>{group['xfailed']}</td>"
                   f"<td>{group['xpassed']}</td><td>" + ", ".join(f"<code>{escape(check)}</code>"
                                                            for check in group["examples"]) + "</td></tr>"
                   for group in groups)
    text = escape(UNVERIFIED_TEXT).replace("`", "")
    return (f"<h2>Unverified on the installed versions</h2><p>{text}</p><table id='unverified'><thead><tr>"
            f"<th>why</th><th>checks</th><th>still differ</th><th>pass here</th><th>for example</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>")


def write(directory: Path, doc: dict[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "parity.json").write_text(json.dumps(doc, indent=1, default=str) + "\n")
    (directory / "parity.md").write_text(markdown(doc))
    (directory / "parity.html").write_text(html_page(doc))


# --- the cell's state and its short text, shared by the Markdown and HTML forms ------------------------------

def cell_state(counts: dict[str, int]) -> str:
    """fail (a failure, an error or an unexpected pass), xfail (known divergences only), pass, skip."""
    if counts["failed"] or counts["error"] or counts["xpassed"] or counts["crashed"]:
        return "fail"
    if counts["xfailed"]:
        return "xfail"
    if counts["passed"]:
        return "pass"
    return "skip"


def _ulp_text(value) -> str:
    number = _number(value)
    if number is None:
        return ""
    if not math.isfinite(number):
        return "inf ULP"
    return f"{number:.2g} ULP" if number < 100 else f"{number:.3g} ULP"


def _use_text(value) -> str:
    """A cell's bound use: the largest error / bound of its checks, how close it came to failing (above 1: it
    failed). A tiny value judged by the absolute term can be 1e15 ULPs off and far inside its bound."""
    number = _number(value)
    if number is None:
        return ""
    return "bound use inf" if not math.isfinite(number) else f"bound use {number:.2g}"


def cell_text(cell: dict[str, Any]) -> str:
    c = cell["counts"]
    parts = [f"{c['passed']}✓"] if c["passed"] else []
    if c["failed"] or c["error"]:
        parts.append(f"{c['failed'] + c['error']}✗")
    if c["crashed"]:
        parts.append(f"{c['crashed']} crashed")
    if c["xpassed"]:
        parts.append(f"{c['xpassed']} xpass")
    if c["xfailed"]:
        parts.append(f"{c['xfailed']} xfail")
    if c["skipped"] and not parts:
        parts.append(f"{c['skipped']} skip")
    return " ".join(parts)


def _grid(doc) -> tuple[list[str], list[tuple[str, str, str, str, list]]]:
    """The dtype columns present, and one row per API and device: (framework, binding, api, device,
    [(dtype, cell or None) for each column]), each API's cpu row first."""
    by_key = {(cell["binding"], device_of(cell), cell["dtype"]): cell for cell in doc["matrix"]}
    apis = sorted({(cell["framework"], cell["binding"], cell["api"], device_of(cell)) for cell in doc["matrix"]},
                  key=lambda row: (row[0], row[1], row[2], row[3] != "cpu", row[3]))
    dtypes = sorted({cell["dtype"] for cell in doc["matrix"]}, key=_dtype_rank)
    return dtypes, [(framework, binding, api, device,
                     [(dtype, by_key.get((binding, device, dtype))) for dtype in dtypes])
                    for framework, binding, api, device in apis]


def _versions(env: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in env.get("packages", {}).items())


# --- Markdown: a CI job summary ------------------------------------------------------------------------------

def markdown(doc: dict[str, Any]) -> str:
    env = doc["environment"]
    totals = ", ".join(f"{v} {k}" for k, v in doc["totals"].items() if v)
    dtypes, rows = _grid(doc)
    lines = [
        "# Cross-entropy parity",
        "",
        f"Python {env['python']} on {env['cpu']} ({env['cores']} cores); {_versions(env)}.",
        "",
        f"**Checks:** {totals or 'none'}" + (" — **run interrupted: partial**" if doc["interrupted"] else ""),
        "",
    ]
    if env.get("sources"):
        lines += ["**Merged from:** " + "; ".join(_source_text(source) for source in env["sources"]), ""]
    if "baseline" in doc:
        lines += baseline_markdown(doc["baseline"]) + [""]
    lines += crashed_markdown(doc["checks"])
    lines += [
        "Each cell: checks passed ✓, failed ✗, known divergences (xfail), and its bound use: the largest "
        "error / bound of its checks (the tolerance model's bound), how close the API came to failing; at most 1 "
        "passes. 🟥 a failure, 🟧 known divergences only, 🟩 all passed, ⬜ skipped. `reports/parity.html` "
        "opens each cell onto its checks, with the worst error in ULPs of the dtype.",
        "",
        "| API | device | " + " | ".join(dtypes) + " |",
        "| --- | --- |" + " --- |" * len(dtypes),
    ]
    marks = {"fail": "🟥", "xfail": "🟧", "pass": "🟩", "skip": "⬜"}
    for framework, binding, api, device, row in rows:
        cells = [f"{marks[cell_state(cell['counts'])]} {cell_text(cell)}"
                 + (f", {_use_text(cell['bound_use'])}" if _use_text(cell["bound_use"]) else "")
                 if cell else "" for dtype, cell in row]
        lines.append(f"| `{binding}` | {device} | " + " | ".join(cells) + " |")
    lines += unverified_markdown(doc.get("unverified") or [])
    lines += agreement_markdown(doc.get("backends") or [])
    lines += lagging_markdown(doc["checks"])
    return "\n".join(lines) + "\n"


def crashed_markdown(checks) -> list[str]:
    """The checks whose worker process died (pytest-xdist restarts it and goes on)."""
    crashed = [record for record in checks if record["outcome"] == "crashed"]
    if not crashed:
        return []
    lines = ["## Crashed", "", "The process running these checks died; each counts as a failure.", "",
             "| check | signal | worker |", "| --- | --- | --- |"]
    for record in crashed:
        lines.append(f"| `{record['check']}` | {record.get('crash_signal', '?')} | {record.get('crash_worker', '?')} |")
    return lines + [""]


def lagging_markdown(checks, limit: int = 40) -> list[str]:
    """The checks where an API is LAG_RATIO times worse than its best peer."""
    lagging = sorted((r for r in checks if r.get("lags_peers")), key=lambda r: -(_number(r.get("peer_ratio")) or 0))
    if not lagging:
        return ["", f"No API is {LAG_RATIO:g} times behind its best peer (and over {LAG_ULP:g} ULP) on any check."]
    lines = ["", f"## Behind the best peer ({len(lagging)} checks)", "",
             f"Checks where an API's error is {LAG_RATIO:g} times the best any API reaches on the same case, dtype "
             f"and quantity, and over {LAG_ULP:g} ULP, inside its contract or not.", "",
             "| check | outcome | max ULP | best peer | its max ULP | ratio |", "| --- | --- | ---: | --- | ---: | ---: |"]
    for record in lagging[:limit]:
        lines.append(f"| `{record['check']}` | {record['outcome']} | {_ulp_text(record.get('max_ulp'))} | "
                     f"`{record['best_peer']}` | {_ulp_text(record.get('best_peer_ulp'))} | "
                     f"{_number(record.get('peer_ratio')):.3g} |")
    if len(lagging) > limit:
        lines.append(f"| … {len(lagging) - limit} more in parity.json (`lags_peers`) | | | | | |")
    return lines


def baseline_markdown(diff: dict[str, Any]) -> list[str]:
    verdict = "**regression**" if diff["regressions"] else "no regression"
    lines = [f"**Against the baseline** (`{diff['baseline']}`): {verdict}. " + "; ".join(
        f"{len(diff[name])} {label}" for name, label in BASELINE_SECTIONS if diff.get(name)) + "."]
    for name, label in BASELINE_SECTIONS:
        if diff.get(name) and name in ("new_failures", "grown", "other_environments", "fixed"):
            lines.append(f"- {label}: " + ", ".join(f"`{entry['check']}`" for entry in diff[name][:10])
                         + (" ..." if len(diff[name]) > 10 else ""))
    return lines


BASELINE_SECTIONS = (
    ("new_failures", "new failures"),
    ("grown", "errors grown beyond the threshold"),
    ("other_environments", "failures or grown errors on other framework versions or another CPU than the baseline's "
                           "(not regressions)"),
    ("fixed", "known divergences that now pass"),
    ("improved", "improvements"),
    ("new_checks", "new checks"),
    ("removed_checks", "removed checks"),
)


# --- HTML: one self-contained page ---------------------------------------------------------------------------

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1b1b1b; }
h1 { font-size: 1.5em; margin: 0 0 .3em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
table { border-collapse: collapse; } th, td { border: 1px solid #ccc; padding: 4px 6px; vertical-align: top; }
th { background: #f1f1f1; text-align: left; }
table.env td:first-child { font-weight: 600; }
td.cell { min-width: 9em; } td.api code { font-size: .92em; }
td.pass { background: #e3f4e1; } td.xfail { background: #fde9c8; } td.fail { background: #f9d0cd; }
td.skip { background: #f3f3f3; color: #666; }
details > summary { cursor: pointer; } details[open] > summary { font-weight: 600; }
table.checks { margin-top: .4em; font-size: .88em; background: #fff; }
table.checks td.o-failed, table.checks td.o-error, table.checks td.o-xpassed, table.checks td.o-crashed { color: #a30d00; font-weight: 600; }
table.checks td.o-xfailed { color: #8a5200; } .reason { max-width: 60em; white-space: pre-wrap; }
.legend span { display: inline-block; padding: 1px 8px; margin-right: 6px; border: 1px solid #ccc; }
.verdict-bad { color: #a30d00; font-weight: 600; } .verdict-good { color: #176b12; font-weight: 600; }
"""


def _source_text(source: dict[str, Any]) -> str:
    counts = ", ".join(f"{v} {k}" for k, v in (source.get("totals") or {}).items() if v)
    return f"{source['source']} ({counts or 'no checks'})"


def html_page(doc: dict[str, Any]) -> str:
    env = doc["environment"]
    dtypes, rows = _grid(doc)
    checks_by_cell: dict[tuple, list] = defaultdict(list)
    for record in doc["checks"]:
        checks_by_cell[(record["binding"], device_of(record), record["dtype"])].append(record)
    totals = ", ".join(f"{v} {k}" for k, v in doc["totals"].items() if v) or "none"
    env_rows = [("Python", env.get("python", "")), ("Platform", env.get("platform", "")),
                ("CPU", f"{env.get('cpu', '')} ({env.get('cores', '?')} cores)"),
                ("Packages", _versions(env)), ("Checks", totals)]
    if env.get("sources"):
        env_rows.append(("Merged from", "; ".join(_source_text(source) for source in env["sources"])))
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<title>Cross-entropy parity</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>Cross-entropy parity</h1>",
    ]
    if doc["interrupted"]:
        parts.append("<p class='verdict-bad' id='interrupted'>The run was interrupted: the matrix is partial.</p>")
    parts.append("<table class='env' id='environment'>" + "".join(
        f"<tr><td>{escape(name)}</td><td>{escape(str(value))}</td></tr>" for name, value in env_rows) + "</table>")
    if "baseline" in doc:
        parts.append(baseline_html(doc["baseline"]))
    parts.append(
        "<h2>Matrix</h2><p class='legend'>Each cell counts the checks of one API in one dtype and gives its "
        "<b>bound use</b>: the largest error / bound of its checks under the tolerance model, how close the API "
        "came to failing (at most 1 passes; a known divergence's is above 1). Click it to see its checks, the "
        "worst error in ULPs of that dtype, and each check's error and bound use: a tiny value judged by the "
        "absolute term can be many ULPs off and far inside its bound. <span class='pass' style='background:#e3f4e1'>"
        "all passed</span><span style='background:#fde9c8'>known divergences (strict xfail)</span>"
        "<span style='background:#f9d0cd'>failed or unexpectedly passed</span>"
        "<span style='background:#f3f3f3'>skipped</span></p>")
    head = "".join(f"<th>{escape(dtype)}</th>" for dtype in dtypes)
    body = []
    for framework, binding, api, device, row in rows:
        cells = []
        for dtype, cell in row:
            if cell is None:
                cells.append("<td class='cell empty'></td>")
                continue
            state = cell_state(cell["counts"])
            use, worst = _use_text(cell["bound_use"]), _ulp_text(cell["worst_ulp"])
            summary = escape(cell_text(cell)) + (f"<br><small>{escape(use)}</small>" if use else "")
            detail = (f"<p class='worst'>worst error {escape(worst)} ({escape(str(cell['worst_case']))})</p>"
                      if worst else "")
            if cell.get("lagging"):
                summary += f"<br><small class='lags'>⚑ {cell['lagging']} behind the best peer</small>"
            cells.append(f"<td class='cell {state}' data-binding='{escape(binding, quote=True)}' "
                         f"data-device='{escape(device, quote=True)}' "
                         f"data-dtype='{dtype}'><details><summary>{summary}</summary>{detail}"
                         f"{_checks_table(checks_by_cell[(binding, device, dtype)])}</details></td>")
        body.append(f"<tr><td>{escape(framework)}</td><td class='api'><code>{escape(api)}</code></td>"
                    f"<td class='device'>{escape(device)}</td>" + "".join(cells) + "</tr>")
    parts.append(f"<table id='matrix'><thead><tr><th>framework</th><th>API</th><th>device</th>{head}</tr></thead>"
                 f"<tbody>{''.join(body)}</tbody></table>")
    parts.append(unverified_html(doc.get("unverified") or []))
    parts.append(agreement_html(doc.get("backends") or []))
    parts.append("</body></html>\n")
    return "".join(parts)


def _checks_table(records) -> str:
    rows = []
    order = {"crashed": 0, "failed": 0, "error": 0, "xpassed": 1, "xfailed": 2, "passed": 3, "skipped": 4}
    for record in sorted(records, key=lambda r: (order.get(r["outcome"], 5), r["check"])):
        reason = record.get("reason", "") if record["outcome"] != "passed" else ""
        rows.append(
            f"<tr><td>{escape(record['case'])}</td><td>{escape(record.get('kind', ''))}</td>"
            f"<td class='o-{escape(record['outcome'])}'>{escape(record['outcome'])}</td>"
            f"<td>{escape(_ulp_text(record.get('max_ulp')))}</td>"
            f"<td>{escape(_use_text(record.get('bound_ratio')).removeprefix('bound use '))}</td>"
            f"<td>{escape(_peer_text(record))}</td>"
            f"<td class='reason'>{escape(str(reason)[:600])}</td></tr>")
    return ("<table class='checks'><tr><th>case</th><th>check</th><th>outcome</th><th>max error</th><th>bound use</th>"
            "<th>best peer</th><th>reason</th></tr>" + "".join(rows) + "</table>")


def _peer_text(record) -> str:
    if record.get("best_peer") is None:
        return ""
    ratio = _number(record.get("peer_ratio"))
    text = f"{_ulp_text(record.get('best_peer_ulp'))} ({record['best_peer'].split(':', 1)[1]}), ×{ratio:.3g}"
    return ("⚑ " + text) if record.get("lags_peers") else text


def baseline_html(diff: dict[str, Any]) -> str:
    verdict = ("<span class='verdict-bad'>regression</span>" if diff["regressions"]
               else "<span class='verdict-good'>no regression</span>")
    parts = [f"<h2>Against the baseline</h2><p id='baseline-verdict'>{escape(diff['baseline'])}: {verdict} "
             f"(an error counts as grown beyond {diff['growth_factor']:g}× and {diff['growth_slack_ulp']:g} ULP "
             "of the baseline's)</p>"]
    for name, label in BASELINE_SECTIONS:
        entries = diff.get(name, [])
        if not entries:
            continue
        items = "".join(f"<li><code>{escape(entry['check'])}</code> {escape(entry.get('what', ''))}</li>"
                        for entry in entries[:200])
        more = f"<li>… and {len(entries) - 200} more</li>" if len(entries) > 200 else ""
        parts.append(f"<details><summary>{len(entries)} {escape(label)}</summary><ul>{items}{more}</ul></details>")
    return "".join(parts)


# --- several runs (the CI jobs' reports) as one -------------------------------------------------------------

# when two runs hold the same check: one that ran beats a skip, and of two that ran the worse outcome is kept
SEVERITY = {"skipped": 0, "passed": 1, "xfailed": 2, "xpassed": 3, "error": 4, "failed": 4, "crashed": 5}


def merge(documents: list[dict[str, Any]], labels: list[str] | None = None) -> dict[str, Any]:
    """One parity document from several runs' ``parity.json``: every check once,
    the environments' package versions together, each run listed as a source."""
    labels = labels or [f"run {index + 1}" for index in range(len(documents))]
    chosen: dict[str, dict[str, Any]] = {}
    packages: dict[str, str] = {}
    providers: dict[str, list[str]] = {}
    sources = []
    for label, doc in zip(labels, documents):
        env = doc.get("environment", {})
        packages.update(env.get("packages", {}))
        providers.update(env.get("distributions", {}))
        sources.append({"source": label, "python": env.get("python"), "platform": env.get("platform"),
                        "totals": doc.get("totals", {}), "interrupted": doc.get("interrupted", False)})
        for row in doc.get("checks", []):
            held = chosen.get(row["check"])
            if held is None or SEVERITY.get(row["outcome"], 0) > SEVERITY.get(held["outcome"], 0):
                chosen[row["check"]] = {**row, "source": label}
    first = documents[0].get("environment", {}) if documents else {}
    environment = {**first, "packages": packages, "distributions": providers, "sources": sources}
    interrupted = any(doc.get("interrupted", False) for doc in documents)
    return document(list(chosen.values()), environment, interrupted)


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m conformance.parity",
                                     description="Merge several runs' parity.json into one report.")
    commands = parser.add_subparsers(dest="command", required=True)
    merging = commands.add_parser("merge", help="one matrix from several parity.json (e.g. one per CI job)")
    merging.add_argument("inputs", nargs="+", type=Path, help="parity.json files")
    merging.add_argument("--out", type=Path, default=Path("reports/merged"),
                         help="directory for the merged parity.json, .md and .html (default: reports/merged)")
    merging.add_argument("--parity-baseline", type=Path, default=None,
                         help="judge the merged run against a stored parity.json, as pytest's option does")
    args = parser.parse_args(argv)
    documents = []
    for path in args.inputs:
        try:
            documents.append(json.loads(path.read_text()))
        except (OSError, ValueError) as error:
            parser.error(f"{path}: not a readable parity.json ({error})")
    merged = merge(documents, [str(path) for path in args.inputs])
    regressions = 0
    if args.parity_baseline is not None:
        from conformance import baseline

        try:
            stored = baseline.load(args.parity_baseline)
        except baseline.BaselineError as error:
            parser.error(str(error))
        ids = [row["check"] for row in merged["checks"]]
        merged["baseline"] = baseline.compare(merged["checks"], stored, ids, str(args.parity_baseline),
                                              (merged["environment"], baseline.load_environment(args.parity_baseline)))
        regressions = merged["baseline"]["regressions"]
        for line in baseline.terminal_lines(merged["baseline"]):
            print(line)
    write(args.out, merged)
    totals = ", ".join(f"{count} {name}" for name, count in merged["totals"].items() if count)
    print(f"merged {len(documents)} runs into {args.out}/parity.{{json,md,html}}: {totals}")
    return 1 if regressions else 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
