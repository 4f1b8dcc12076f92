"""The ``xent-conformance`` command (also ``python -m conformance``).

* ``xent-conformance describe BINDING``: every fact the suite holds about one API, from one command: what it
  is and which convention the reference holds it to, its cases (and the file of each), its skips with their
  reasons, its known divergences with their reasons and sources, its behaviour cells, and its outcomes in the
  shipped baseline. ``BINDING`` is a binding id or a pattern (``torch:nn.functional.cross_entropy``,
  ``'*BCELoss*'``); several matches list their ids.
* ``xent-conformance [PYTEST OPTIONS]``: the suite itself, run by pytest on the project's own tests (``-k``,
  ``-n``, ``--parity-baseline`` ...), with the reports written under ``./reports`` of the current directory:
  from a clone's tests, or, installed from a wheel, the copy of them the wheel installed
  (:mod:`conformance.locations`), from any directory.
"""

from __future__ import annotations

import argparse
import collections
import fnmatch
import functools
import inspect
import sys
import textwrap
from pathlib import Path

from conformance.locations import BASELINE, ROOT
WIDTH = 110


def _wrap(text: str, indent: str = "    ") -> str:
    return textwrap.fill(" ".join(str(text).split()), WIDTH, initial_indent=indent, subsequent_indent=indent)


def _first_paragraph(text: str) -> str:
    return " ".join((inspect.cleandoc(text or "").split("\n\n") or [""])[0].split())


def _convention_text(function) -> str:
    """A convention function's first paragraph; a partial one's, with what it fixes."""
    if isinstance(function, functools.partial):
        inner = inspect.unwrap(function.func)
        fixed = ", ".join(f"{key}={value!r}" for key, value in function.keywords.items())
        return f"{inner.__module__}.{inner.__qualname__} with {fixed}: {_first_paragraph(inner.__doc__)}"
    return _first_paragraph(inspect.unwrap(function).__doc__)


def _values(spec) -> str:
    if spec is None:
        return "any value"
    if isinstance(spec, (set, frozenset, list, tuple)):
        return " | ".join(sorted(map(repr, spec)))
    return str(spec)


def _matching(bindings: dict, pattern: str) -> list[str]:
    if pattern in bindings:
        return [pattern]
    return sorted(binding_id for binding_id in bindings if fnmatch.fnmatchcase(binding_id, pattern))


def describe(pattern: str, cases_dir: Path | None = None, baseline_path: Path = BASELINE) -> str:
    """The text ``xent-conformance describe`` prints for ``pattern``."""
    from conformance.baseline import BaselineError, load
    from conformance.cases import CASES_DIR
    from conformance import versions as measured_on
    from conformance.bindings import convention_function
    from conformance.suite import behaviour_for, build

    suite = build(cases_dir or CASES_DIR)
    found = _matching(suite.bindings, pattern)
    if not found:
        framework = pattern.split(":")[0] + ":" if ":" in pattern else ""
        near = sorted((b for b in suite.bindings if pattern.split(":")[-1].lower() in b.lower()),
                      key=lambda b: (not b.startswith(framework), b))[:12]
        hint = ("; did you mean one of: " + ", ".join(near)) if near else ""
        raise SystemExit(f"xent-conformance describe: no binding matches {pattern!r}{hint}")
    if len(found) > 1:
        return f"{len(found)} bindings match {pattern!r}; describe one of them:\n" + "\n".join(
            f"    {binding_id}" for binding_id in found)
    binding = suite.bindings[found[0]]
    distributions = measured_on.binding_distributions(binding)
    checks = [check for check in suite.checks if check.binding is binding]
    try:
        baseline = load(baseline_path)
    except BaselineError:
        baseline = {}

    lines = [f"{binding.id}", f"  API: {binding.api}", f"  framework: {binding.framework}; family: {binding.family}"]
    if binding.doc:
        lines.append(_wrap(f"documented at: {binding.doc}" if binding.doc.startswith("http") else binding.doc, "  "))
    missing = binding.missing_requirement()
    lines.append(f"  installed: {'no: ' + missing if missing else 'yes'}")
    lines.append(f"  convention: {' then '.join(binding.convention)}")
    for name in binding.convention:
        lines.append(_wrap(f"{name.rpartition('.')[2]}: {_convention_text(convention_function(name))}"))
    lines.append(f"  dtypes: {', '.join(sorted(binding.dtypes))}")
    lines.append(f"  devices: {', '.join(binding.devices)} (pytest --device)")
    left_out = sorted(dtype for dtype in binding.dtypes if binding.left_out(dtype))
    if left_out:
        lines.append(_wrap(f"left out of this run: {', '.join(left_out)}: {binding.left_out_reason}", "  "))
    for label, value in (("compute dtype", binding.compute_dtype), ("result dtype", binding.result_dtype)):
        if value:
            lines.append(f"  {label}: {value}")
    if binding.options:
        lines.append("  options: " + "; ".join(f"{name}: {_values(spec)}" for name, spec in binding.options.items()))
    if binding.defaults:
        lines.append("  defaults: " + ", ".join(f"{name}={value!r}" for name, value in binding.defaults.items()))
    lines.append(f"  markers (-m, -k): {', '.join(binding.markers) or '(none)'}")
    for topic, note in binding.notes.items():
        lines.append(_wrap(f"note on {topic}: {note}", "  "))

    by_case = collections.OrderedDict()  # grid points of one written case together
    for check in checks:
        by_case.setdefault(check.case.base_id, []).append(check)
    lines.append(f"\n  cases ({len(by_case)}, {len(checks)} checks; outcomes as in the shipped baseline):")
    for base_id, case_checks in by_case.items():
        case = case_checks[0].case
        points = len({check.case.id for check in case_checks})
        kinds = collections.Counter(check.kind for check in case_checks)
        outcomes = collections.Counter(baseline.get(check.id, {}).get("outcome", "not in the baseline")
                                       for check in case_checks)
        grid = f", {points} grid points" if points > 1 else ""
        lines.append(f"    {base_id} [{case.file}{grid}] {', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))}: "
                     f"{', '.join(f'{n} {o}' for o, n in sorted(outcomes.items()))}")

    skips = collections.Counter(check.skip for check in checks if check.skip)
    if skips:
        lines.append(f"\n  skips ({sum(skips.values())} checks):")
        for reason, count in skips.most_common():
            lines.append(_wrap(f"{count} x {reason}"))

    entries = collections.OrderedDict()
    for check in checks:
        if check.divergence is not None:
            entries.setdefault(check.divergence.id, (check.divergence, []))[1].append(check.id)
    region_entries = [entry for entry in suite.divergences
                      if entry.id not in entries and entry.region_applies(binding.id)]
    lines.append(f"\n  known divergences ({len(entries)}):" if entries else "\n  known divergences: none")
    for entry, ids in entries.values():
        lines.append(f"    {entry.id} ({entry.kind}, {len(ids)} checks, e.g. {ids[0]})")
        lines.append(_wrap(entry.reason, "      "))
        lines.append(f"      source: {entry.source}")
        lines.append(f"      measured on: {_versions_text(entry.versions)}"
                     + (f" (unverified here: {entry.unverified(distributions)})"
                        if entry.unverified(distributions) else ""))
    for entry in region_entries:
        lines.append(f"    {entry.id} (its region '{entry.region}' applies to this binding's property tests)")

    behaviour = [check for check in checks if check.kind == "behaviour"]
    if behaviour:
        lines.append(f"\n  behaviour cells ({len(behaviour)}):")
        seen = set()
        for check in behaviour:
            if check.case.id in seen:
                continue
            seen.add(check.case.id)
            expected = behaviour_for(check.case, binding)
            text = ", ".join(f"{key}: {value}" for key, value in expected.items() if key != "versions"
                             ) if expected else "the reference"
            lines.append(f"    {check.case.id}: {text}" + (f" (unverified here: {check.unverified})"
                                                             if check.unverified else ""))
        lines.append("    measured on: " + _versions_text(
            [pair for pair in behaviour[0].case.versions if pair[0] in distributions]))
    return "\n".join(lines)


def _versions_text(pairs) -> str:
    return ", ".join(f"{distribution}{specifier}" for distribution, specifier in pairs) or "not stated"


def run_suite(arguments: list[str]) -> int:
    import pytest

    tests = ROOT / "tests"
    if not tests.is_dir() or not (ROOT / "pyproject.toml").is_file():
        print(f"xent-conformance: the suite's tests are neither beside the package nor installed with it ({ROOT}); "
              "install it from a wheel, or run it from a clone (pip install -e .)", file=sys.stderr)
        return 4
    if not any(argument.startswith("--reports-dir") for argument in arguments):
        arguments = [f"--reports-dir={Path.cwd() / 'reports'}", *arguments]  # beside junit.xml and report.html
    # pytest's cache in the current directory too, not in an installed tree that may be read-only
    settings = ["-o", f"cache_dir={Path.cwd() / '.pytest_cache'}"]
    return int(pytest.main(["--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml"), *settings, str(tests),
                            *arguments]))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["describe"]:
        parser = argparse.ArgumentParser(prog="xent-conformance describe",
                                         description="Every fact the suite holds about one API.")
        parser.add_argument("binding", help="a binding id, or a pattern (quote it)")
        parser.add_argument("--cases-dir", type=Path, default=None, help="another case directory")
        parser.add_argument("--parity-baseline", type=Path, default=BASELINE, help="the baseline to read outcomes from")
        options = parser.parse_args(argv[1:])
        print(describe(options.binding, options.cases_dir, options.parity_baseline))
        return 0
    return run_suite(argv)


if __name__ == "__main__":
    sys.exit(main())
