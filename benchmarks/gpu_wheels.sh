#!/usr/bin/env bash
# The wheels the GPU machine lacks, for benchmarks/gpu_check.sh: that machine has Python 3.12, torch, JAX, optax,
# pytest, pytest-xdist, hypothesis, mpmath and PyYAML, and no network. Run here (with PyPI at hand); the folder
# travels with the tree (the device tool's `carry: [".gpu-wheels"]`; it is git-ignored).
# Usage: bash benchmarks/gpu_wheels.sh [FOLDER]   (default .gpu-wheels)
set -euo pipefail
folder="${1:-.gpu-wheels}"
mkdir -p "$folder"
python3 -m pip download --quiet --dest "$folder" --only-binary=:all: --python-version 3.12 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 \
    --implementation cp --abi cp312 \
    "jsonschema>=4.20" "pytest-html>=4.1" "ml-dtypes>=0.4" "packaging>=23.0" -c constraints.txt
ls "$folder"
