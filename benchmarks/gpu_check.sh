#!/usr/bin/env bash
# The prepared GPU check (issue 16): torch's and JAX's checks on CUDA, beside the same checks on that machine's
# CPU, in one run, with every report written to OUT.
#
# Made for the device machine this project is sometimes lent (one NVIDIA GPU, 16 cores, Python 3.12, torch and
# JAX with CUDA, optax, pytest, pytest-xdist, hypothesis, mpmath and PyYAML, no network): it installs what that
# machine lacks from the wheels that travel with the tree (bash benchmarks/gpu_wheels.sh, here, first), loads the
# JAX and compiled-torch bindings by --bindings (the project itself is not installed there, so its entry points
# are not), and runs the value, gradient and behaviour checks of torch (eager and compiled) and JAX on `cuda`,
# and those of torch eager and JAX on `cpu` (the compiled CPU forms would need g++ and minutes of builds; the
# pytest arguments are in benchmarks/gpu_check.py, which a self-test collects on every run), so that
# parity.md shows a cpu row and a cuda row per API from the same framework versions. Its versions are not the
# pinned ones: the known divergences and behaviour entries are unverified there (reported, not applied strictly;
# conformance/versions.py), and every entry is unverified on cuda, where nothing was measured before
# (conformance/devices.py). The run stops itself (SIGINT, so that the reports are still written) after
# XENT_GPU_CHECK_SECONDS (default 360).
#
# Usage: bash benchmarks/gpu_check.sh OUT   (wheels from XENT_GPU_WHEELS, default .gpu-wheels)
set -uo pipefail
mkdir -p "${1:?usage: bash benchmarks/gpu_check.sh OUT}"
out=$(cd "$1" && pwd)
cd "$(dirname "$0")/.."  # the repository root: benchmarks/ and tests/ are read from there
wheels="${XENT_GPU_WHEELS:-.gpu-wheels}"
seconds="${XENT_GPU_CHECK_SECONDS:-360}"
python=python3
missing=$("$python" - <<'PY'
import importlib.util
needed = {"jsonschema": "jsonschema", "pytest_html": "pytest-html", "ml_dtypes": "ml-dtypes",
          "packaging": "packaging", "yaml": "PyYAML", "mpmath": "mpmath", "hypothesis": "hypothesis",
          "xdist": "pytest-xdist"}
print(" ".join(distribution for module, distribution in needed.items() if importlib.util.find_spec(module) is None))
PY
)
if [ -n "$missing" ]; then
    echo "installing from $wheels: $missing"
    "$python" -m pip install --quiet --no-index --find-links "$wheels" $missing || exit 3
fi
{
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1
    "$python" - <<'PY'
import jax, torch
print("torch", torch.__version__, "CUDA", torch.version.cuda, "available:", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
print("jax", jax.__version__, jax.devices())
PY
} > "$out/machine.txt" 2>&1
cat "$out/machine.txt"
workers=$(( $(nproc) > 8 ? 8 : $(nproc) ))
# each xdist worker is a JAX process: by default each would take 75% of the GPU's memory at its first call
export XLA_PYTHON_CLIENT_PREALLOCATE=false
timeout -s INT -k 30 "$seconds" "$python" -m benchmarks.gpu_check "$out" "$workers" 2>&1 \
    | tee "$out/pytest.log" | tail -40
status=${PIPESTATUS[0]}
echo "pytest exit status: $status (124 or 130: stopped at ${seconds} s, reports partial)" | tee -a "$out/pytest.log"
exit 0
