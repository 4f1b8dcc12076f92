"""``python -m benchmarks``: measure, print the tables, write reports/benchmarks.json.

    python -m benchmarks                      # every part
    python -m benchmarks --part reference     # one part (repeatable)
    python -m benchmarks --quick              # small shapes and the seeded cases: a smoke test
    python -m benchmarks --repeat 5 --suite-repeat 2
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from benchmarks import growth, pages, scale, suite_cost
from benchmarks.measure import REPORT_PATH, machine, write_report

PARTS = {
    "suite": ("Suite cost against its floor", suite_cost),
    "reference": ("The reference at language-model shapes", scale),
    "collection": ("Collection and growth", growth),
    "reports": ("The reports in a browser", pages),
}


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--part", action="append", choices=list(PARTS),
                        help="run only this part (repeatable; default: all of them)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="measurements per micro-benchmark figure: imports, empty runs, reference calls, "
                             "collection (default 3)")
    parser.add_argument("--suite-repeat", type=int, default=1,
                        help="runs of each whole-suite pytest command and of the checks' framework calls; "
                             "each plain pytest run takes minutes (default 1)")
    parser.add_argument("--run", action="append", dest="runs", metavar="LABEL", choices=list(suite_cost.LABELS),
                        help="the suite part measures only this whole-suite run (repeatable; default: all of "
                             f"them): {', '.join(map(repr, suite_cost.LABELS))}")
    parser.add_argument("--quick", action="store_true",
                        help="small shapes, the seeded cases only, 1x and 4x growth: a smoke test of the benchmark")
    parser.add_argument("--reports-dir", type=Path, default=pages.REPORTS_DIR,
                        help="the reports the reports part opens in a browser (default: reports/, the last run's)")
    parser.add_argument("--output", type=Path, default=REPORT_PATH, help=f"the JSON report (default {REPORT_PATH})")
    return parser.parse_args(argv)


def other_pytest_processes() -> list[str]:
    """pytest processes already running on this machine: they would distort every figure."""
    found = []
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else []:
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if "pytest" in command and "benchmarks" not in command:
            found.append(f"{entry.name}: {command[:120]}")
    return found


def note_concurrent_pytest(document: dict, part: str) -> None:
    """Warns, and records in the report, any pytest running beside the benchmark."""
    busy = other_pytest_processes()
    if busy:
        document["concurrent_pytest"].append({"before": part, "processes": busy})
        print(f"WARNING: other pytest processes are running (before the {part} part); the figures are distorted:\n  "
              + "\n  ".join(busy))


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    options = parse(sys.argv[1:] if argv is None else argv)
    parts = options.part or list(PARTS)
    about = machine()
    document = {"machine": about, "options": {"parts": parts, "repeat": options.repeat,
                                              "suite_repeat": options.suite_repeat, "quick": options.quick},
                "parts": {}}
    print(f"# Benchmarks: {about['cpu']}, {about['cores']} cores, {about['memory_gib']} GiB, Python "
          f"{about['python']}, {about['date']}")
    print(f"Whole-suite runs: {options.suite_repeat} each (--suite-repeat); other figures: median of "
          f"{options.repeat} (--repeat), range in brackets.{' QUICK: small shapes, seeded cases only.' if options.quick else ''}")
    document["concurrent_pytest"] = []
    for name in parts:
        note_concurrent_pytest(document, name)
        title, module = PARTS[name]
        log(f"{title}:")
        started = time.perf_counter()
        if name == "suite":
            part = module.run(options.repeat, options.suite_repeat, options.quick, log, options.runs)
        elif name == "reports":
            part = module.measure(options.reports_dir, options.repeat, log)
        else:
            part = module.run(options.repeat, options.quick, log)
        part["seconds"] = time.perf_counter() - started
        document["parts"][name] = part
        print(f"\n## {title}\n\n{module.render(part)}\n", flush=True)
        write_report(document, options.output)
    print(f"Written: {options.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
