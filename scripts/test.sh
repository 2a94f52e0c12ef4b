#!/usr/bin/env bash
# The whole test suite: Rust (every crate, every ISA tier this machine has) and the Python exporter.
# Usage: scripts/test.sh        (from anywhere; installs the Python test dependencies in .venv)
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== Rust: cargo test --workspace --release"
cargo test --workspace --release --locked

echo "== Python exporter: pytest (framework-free tests)"
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -r python/requirements-ci.txt
.venv/bin/pip install --quiet --disable-pip-version-check --no-deps ./python
.venv/bin/python -m pytest -q python/tests -m "not framework"
echo "== all tests passed"
