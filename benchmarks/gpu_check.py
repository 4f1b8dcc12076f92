"""The prepared GPU check's pytest run: ``python -m benchmarks.gpu_check OUT [WORKERS]``, started by
``benchmarks/gpu_check.sh`` (which installs what the GPU machine lacks and stops the run in time).

Torch's (eager and compiled) and JAX's value, gradient and behaviour checks on ``cuda``, and those of torch
eager and JAX on the same machine's ``cpu`` beside them; every report in OUT. The arguments live here, not in
the shell script, so that a self-test (tests/test_devices.py) collects exactly this selection on every run and
the script still runs the day a GPU machine is lent.
"""

from __future__ import annotations

import sys

DEVICES = ("cuda", "cpu")
# the project is not installed on the GPU machine, so its entry points are not there: these come by --bindings
BINDINGS = ("conformance.frameworks.jax", "conformance.frameworks.torch_compile")
# torch and JAX, not Keras on either; the compiled forms on cuda only (on the CPU they need g++ and minutes)
SELECTION = "(torch or jax) and not keras and (cuda or not compile)"
TEST_FILES = ("tests/test_conformance.py", "tests/test_gradients.py", "tests/test_behaviour.py")


def pytest_arguments(out: str, workers: int | None = None) -> list[str]:
    """The run's pytest arguments, its reports in ``out``; ``workers`` xdist workers (None: no xdist)."""
    arguments = ["-p", "no:cacheprovider", "-o", "addopts=", "-q", "-rfE"]
    for device in DEVICES:
        arguments += ["--device", device]
    for module in BINDINGS:
        arguments += ["--bindings", module]
    arguments += ["-k", SELECTION]
    if workers:
        arguments += ["-n", str(workers)]
    arguments += [f"--junitxml={out}/junit.xml", f"--html={out}/report.html", "--self-contained-html",
                  f"--reports-dir={out}", *TEST_FILES]
    return arguments


def main(argv: list[str]) -> int:
    import pytest

    out = argv[0]
    workers = int(argv[1]) if len(argv) > 1 else None
    return int(pytest.main(pytest_arguments(out, workers)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
