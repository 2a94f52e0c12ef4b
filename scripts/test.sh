#!/usr/bin/env bash
# The whole test suite: Rust (every crate, every ISA tier this machine has) and the Python exporter.
# Usage: scripts/test.sh        (from anywhere; installs the Python test dependencies in .venv)
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== ptxas (PyPI nvidia-cuda-nvcc-cu12), to assemble every model's PTX in the tests"
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
FLASHC_PTXAS="$(scripts/install-ptxas.sh | tail -n1)"
export FLASHC_PTXAS

echo "== Python test dependencies in .venv (the exporter's tests, the read-back tests of the outputs, Pythia8 for tests/pythia.rs, the HTCondor submit file's test)"
.venv/bin/pip install --quiet --disable-pip-version-check -r python/requirements-ci.txt
.venv/bin/pip install --quiet --disable-pip-version-check --no-deps ./python
FLASHC_PYTHON="$PWD/.venv/bin/python"
export FLASHC_PYTHON

echo "== Rust: cargo test --workspace --release"
cargo test --workspace --release --locked

echo "== Rust: the CUDA backend's host side (no GPU needed: no-driver error, CPU fallback)"
cargo test --release --locked -p flashc-runtime --features cuda --lib cuda

echo "== Python exporter: pytest (framework-free tests)"
.venv/bin/python -m pytest -q python/tests -m "not framework"
echo "== all tests passed"
