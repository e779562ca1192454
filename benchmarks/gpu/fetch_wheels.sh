#!/usr/bin/env bash
# Everything the GPU host lacks, as Python 3.12 x86-64 wheels in .whl/ (carried by the device tool):
# Keras 3.15.1 and its two small dependencies (../shared/gpu/wheels.sh), plus pytest and hypothesis
# for the parity step (the host has numpy, jax, torch, rich and matplotlib, but no test runner).
# Usage, from the project's root:  bash benchmarks/gpu/fetch_wheels.sh   (about 3 MB more than Keras)
set -euo pipefail
cd "$(dirname "$0")/../.."
../shared/gpu/wheels.sh
python3 -m pip download -q --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -c constraints.txt -d .whl \
  pytest hypothesis
ls -la .whl
