"""The baseline guard: this run against a stored ``parity.json``.

``pytest --parity-baseline PATH`` compares every check that ran with the same
check in the baseline and sorts the differences:

* new failures: a check that fails (or errors) now and did not in the baseline,
  or a new check that fails;
* grown errors: a check whose max error in ULPs grew beyond ``GROWTH_FACTOR``
  times and ``GROWTH_SLACK_ULP`` ULPs more than the baseline's, although it may
  still be within its tolerance;
* fixed: a check that is a known divergence (xfail) in the baseline and passes
  now (the strict xfail fails the run too: remove the divergence entry);
* improved: a check that failed in the baseline and passes now, or whose error
  shrank by the same factor;
* new and removed checks: ids collected now that the baseline lacks, and
  baseline ids the suite no longer generates (whatever -k / -m selected).

New failures and grown errors are regressions: they fail the run. Checks the
baseline has but this run skipped or deselected are counted, not judged.

Why these thresholds: on the baseline's own machine a libm update moves a
check by a few tenths of an ULP up to about 2×; a regression in an algorithm (a
cancellation, a lost guard) moves it by orders of magnitude. Another CPU moves
more: the frameworks dispatch other SIMD kernels (exp, log, reductions of
other widths and orders), and a full run on a 2-core AMD EPYC (AVX2) against
the baseline of an Intel Xeon (AVX-512) grew 53 checks' errors past 2x and 1
ULP (Keras' focal loss's float16 gradient 1.58 -> 17.6 ULP, torch's autocast
float16 cross-entropy 41 -> 86 ULP, optax's float16 gradient 4.63 -> 22.7 ULP)
and shrank 65, every one within its tolerance. So a failure or a grown error on
another CPU than the baseline's (``environment.cpu`` and ``simd``), like one on
other framework versions, is listed with both and not counted as a regression;
the tolerance model still fails any check beyond its bound, on any machine.

``python -m conformance.baseline [SOURCE] [TARGET]`` writes a trimmed copy of a
run's parity.json (default reports/parity.json -> reports/baseline/parity.json)
to commit as the new baseline.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

GROWTH_FACTOR = 2.0
GROWTH_SLACK_ULP = 1.0
FAILING = ("failed", "error", "crashed")  # a check whose worker died is a failure too
# what the comparison reads; the check id names the family, case, binding and dtype
KEPT_FIELDS = ("check", "outcome", "max_ulp", "failure")  # failure: conformance.signatures


class BaselineError(Exception):
    pass


def load(path: Path) -> dict[str, dict[str, Any]]:
    """The baseline's checks by id; a clear error for a missing or malformed file."""
    try:
        document = json.loads(Path(path).read_text())
    except FileNotFoundError as error:
        raise BaselineError(f"parity baseline {path}: no such file") from error
    except (OSError, json.JSONDecodeError) as error:
        raise BaselineError(f"parity baseline {path}: not readable JSON ({error})") from error
    checks = document.get("checks") if isinstance(document, dict) else None
    if not isinstance(checks, list) or not all(isinstance(c, dict) and "check" in c and "outcome" in c
                                               for c in checks):
        raise BaselineError(f"parity baseline {path}: expected a parity.json with a 'checks' list "
                            "of objects with 'check' and 'outcome'")
    return {check["check"]: check for check in checks}


def ulp_figure(value) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def grew(before: float, now: float) -> bool:
    return now > max(before * GROWTH_FACTOR, before + GROWTH_SLACK_ULP)


def load_environment(path: Path) -> dict[str, Any]:
    """The environment a baseline was measured in (its package versions); empty where it has none."""
    try:
        document = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return document.get("environment", {}) if isinstance(document, dict) else {}


def _other_cpu(environments) -> str | None:
    """'another CPU: AMD EPYC (the baseline: Intel(R) Xeon(R) Processor)' where the run's CPU, or the vector
    extensions it reports, are not the baseline's; None where they are, or where either file lacks them."""
    if not environments:
        return None
    now, then = environments
    if not now.get("cpu") or not then.get("cpu"):
        return None
    if now["cpu"] != then["cpu"]:
        return f"another CPU: {now['cpu']} (the baseline: {then['cpu']})"
    if now.get("simd") is not None and then.get("simd") is not None and now["simd"] != then["simd"]:
        return (f"another CPU: {now['cpu']} with {' '.join(now['simd']) or 'no vector extensions'} "
                f"(the baseline: {' '.join(then['simd']) or 'none'})")
    return None


def _other_versions(record, environments) -> str | None:
    """'torch 2.12.0 (the baseline: torch 2.13.0)' where the check's framework versions are not the
    baseline's, else None."""
    if not environments:
        return None
    from conformance.parity import framework_version

    now, then = (framework_version(record, environment) for environment in environments)
    if now == then or "unknown" in (now, then):
        return None
    return f"{now} (the baseline: {then})"


def compare(current, baseline: dict[str, dict[str, Any]], generated_ids, label: str,
            environments: tuple[dict, dict] | None = None) -> dict[str, Any]:
    """The differences between the checks that ran (``current`` records) and the
    baseline; ``generated_ids`` are every check id the suite generates now. Given the two environments (the
    run's and the baseline's), a failure or a grown error of a check whose framework versions are not the
    baseline's, or that ran on another CPU, is compared and labelled (``other_environments``), not counted as a
    regression of the pinned set on the baseline's machine."""
    diff: dict[str, Any] = {"baseline": label, "growth_factor": GROWTH_FACTOR, "growth_slack_ulp": GROWTH_SLACK_ULP,
                            "new_failures": [], "grown": [], "other_environments": [], "fixed": [], "improved": [],
                            "new_checks": [], "removed_checks": [], "not_run": 0}
    ran = set()
    other_cpu = _other_cpu(environments)
    for record in sorted(current, key=lambda r: r["check"]):
        check, outcome = record["check"], record["outcome"]
        if outcome == "skipped":
            continue
        ran.add(check)
        before = baseline.get(check)
        was = before["outcome"] if before else None
        other = _other_versions(record, environments) or other_cpu
        if outcome in FAILING and was not in FAILING:
            entry = {"check": check, "was": was, "now": outcome, "what": f"{was or 'new'} -> {outcome}"}
            if other:
                entry["what"] += f" on {other}"
                diff["other_environments"].append(entry)
            else:
                diff["new_failures"].append(entry)
            continue
        if outcome == "xpassed" or (outcome == "passed" and was == "xfailed"):
            diff["fixed"].append({"check": check, "was": was, "now": outcome, "what": f"{was} -> {outcome}"})
            continue
        if outcome == "passed" and was in FAILING:
            diff["improved"].append({"check": check, "was": was, "now": outcome, "what": f"{was} -> passed"})
            continue
        now_ulp, was_ulp = ulp_figure(record.get("max_ulp")), ulp_figure(before.get("max_ulp")) if before else None
        if now_ulp is None or was_ulp is None or outcome in FAILING:
            continue
        if grew(was_ulp, now_ulp):
            entry = {"check": check, "was_ulp": was_ulp, "now_ulp": now_ulp,
                     "what": f"max error {was_ulp:.3g} -> {now_ulp:.3g} ULP"}
            if other:
                entry["what"] += f" on {other}"
            diff["other_environments" if other else "grown"].append(entry)
        elif grew(now_ulp, was_ulp):
            diff["improved"].append({"check": check, "was_ulp": was_ulp, "now_ulp": now_ulp,
                                     "what": f"max error {was_ulp:.3g} -> {now_ulp:.3g} ULP"})
    generated = set(generated_ids)
    collected = {record["check"] for record in current}
    diff["new_checks"] = [{"check": c, "what": "not in the baseline"} for c in sorted(collected - set(baseline))]
    diff["removed_checks"] = [{"check": c, "what": "no longer generated"} for c in sorted(set(baseline) - generated)]
    diff["not_run"] = len((set(baseline) & generated) - ran)
    diff["regressions"] = len(diff["new_failures"]) + len(diff["grown"])
    return diff


def terminal_lines(diff: dict[str, Any], limit: int = 15) -> list[str]:
    verdict = "REGRESSION" if diff["regressions"] else "no regression"
    lines = [f"against {diff['baseline']}: {verdict} ({len(diff['new_failures'])} new failures, "
             f"{len(diff['grown'])} grown errors, "
             f"{len(diff.get('other_environments', []))} failures or grown errors on other framework versions or "
             "another CPU, "
             f"{len(diff['fixed'])} fixed, {len(diff['improved'])} improved, "
             f"{len(diff['new_checks'])} new and {len(diff['removed_checks'])} removed checks, "
             f"{diff['not_run']} baseline checks not run)"]
    for name, label in (("new_failures", "new failure"), ("grown", "grown error"),
                        ("other_environments", "elsewhere"), ("fixed", "now passes"),
                        ("improved", "improved"), ("new_checks", "new check"), ("removed_checks", "removed check")):
        entries = diff.get(name, [])
        for entry in entries[:limit]:
            lines.append(f"  {label}: {entry['check']}  {entry.get('what', '')}")
        if len(entries) > limit:
            lines.append(f"  ... and {len(entries) - limit} more (reports/parity.json, 'baseline', {name!r})")
    return lines


def trim(document: dict[str, Any]) -> dict[str, Any]:
    """What a baseline needs: the environment and, per check, outcome and error."""
    return {
        "environment": document.get("environment", {}),
        "totals": document.get("totals", {}),
        "checks": [{k: check[k] for k in KEPT_FIELDS if k in check} for check in document["checks"]],
    }


def main(argv: list[str]) -> int:
    source = Path(argv[0]) if argv else Path("reports/parity.json")
    target = Path(argv[1]) if len(argv) > 1 else Path("reports/baseline/parity.json")
    document = json.loads(source.read_text())
    if document.get("interrupted"):
        print(f"{source} comes from an interrupted run; refusing to make it the baseline", file=sys.stderr)
        return 2
    target.parent.mkdir(parents=True, exist_ok=True)
    trimmed = trim(document)
    # one check a line, so that a new baseline reviews as a readable diff
    head = json.dumps({k: v for k, v in trimmed.items() if k != "checks"}, sort_keys=True)[:-1]
    lines = [json.dumps(check, sort_keys=True) for check in trimmed["checks"]]
    target.write_text(head + ', "checks": [\n' + ",\n".join(lines) + "\n]}\n")
    print(f"wrote {target}: {len(document['checks'])} checks")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
