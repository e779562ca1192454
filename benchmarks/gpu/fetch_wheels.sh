#!/usr/bin/env bash
# Everything the GPU host lacks, as Python 3.12 x86-64 wheels in .whl/ at the project's root (carried by the
# device tool; /.whl/ is git-ignored): Keras 3.15.1 and its two small dependencies the host does not have
# (namex, optree), plus pytest and hypothesis for the parity step. The host has jax and torch with CUDA,
# numpy, h5py, rich, absl-py, ml-dtypes and matplotlib; it has no TensorFlow and cannot get one, and no network.
# Usage, from anywhere:  bash benchmarks/gpu/fetch_wheels.sh   (about 3 MB on top of Keras)
# benchmarks/gpu/run_gpu.sh installs them on the host.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .whl
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
  platforms+=(--platform "$p")
done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${platforms[@]}" -d .whl keras==3.15.1 namex optree
python3 -m pip download -q --only-binary=:all: --python-version 3.12 --implementation cp \
  "${platforms[@]}" -c constraints.txt -d .whl pytest hypothesis
ls -la .whl
