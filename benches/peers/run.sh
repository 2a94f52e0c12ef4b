#!/usr/bin/env bash
# Side-by-side benchmark of flashc against scikinC, ONNX Runtime, SOFIE and PyTorch on the same
# models, weights, inputs and noise, on one core. See docs/performance.md ("Peers").
#
#   benches/peers/run.sh                 # everything: venv, builds, agreement checks, timings, table
#   REPS=15 MIN_SECONDS=0.2 benches/peers/run.sh
#
# Needs: python3 (3.10-3.12, with venv), gcc/g++, cargo (stable >= 1.85), network access to PyPI and
# crates.io, and OpenBLAS (installed with apt-get when missing and running as root).
# Writes: benches/peers/.venv/ and benches/peers/build/ (both ignored by git), and the results in
# benches/peers/results/ (peers-DATE.md/.json/.csv and latest.md).
# Environment: FLASHC=path to an existing flashc binary (skips the cargo build), CARGO_TARGET_DIR,
# PYTHON (default python3), REPS (default 11), MIN_SECONDS per repetition (default 0.2).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
START=$(date +%s)
REPS="${REPS:-11}"
MIN_SECONDS="${MIN_SECONDS:-0.2}"
PYTHON="${PYTHON:-python3}"
VENV="$HERE/.venv"
BUILD="$HERE/build"

step() { printf '\n== %s (%ds)\n' "$1" "$(( $(date +%s) - START ))"; }

for tool in "$PYTHON" gcc g++; do
  command -v "$tool" >/dev/null || { echo "run.sh: '$tool' is needed but not found on PATH" >&2; exit 1; }
done

step "Python environment ($VENV)"
HOW="reused the virtual environment"
if [ ! -x "$VENV/bin/python" ]; then "$PYTHON" -m venv "$VENV"; HOW="created the virtual environment"; fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$HERE/requirements.txt"

step "OpenBLAS (for SOFIE's generated code)"
if ! ldconfig -p 2>/dev/null | grep -q 'libopenblas\.so '; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq libopenblas-dev >/dev/null
  else
    echo "run.sh: OpenBLAS is missing: install libopenblas-dev (Debian/Ubuntu) or openblas-devel" >&2
    exit 1
  fi
fi

step "flashc"
if [ -z "${FLASHC:-}" ]; then
  command -v cargo >/dev/null || { echo "run.sh: cargo is needed to build flashc (or set FLASHC)" >&2; exit 1; }
  (cd "$ROOT" && cargo build --release --quiet --bin flashc)
  FLASHC="${CARGO_TARGET_DIR:-$ROOT/target}/release/flashc"
fi
[ -x "$FLASHC" ] || { echo "run.sh: no flashc binary at $FLASHC" >&2; exit 1; }

step "models and peer artefacts from one set of weights (Keras, scikinC, ONNX, flashc specs)"
rm -rf "$BUILD"
"$VENV/bin/python" "$HERE/make_models.py" "$BUILD"

step "build: flashc compile, gcc (scikinC), SOFIE code generation + g++"
"$VENV/bin/python" "$HERE/peers.py" build "$BUILD" "$FLASHC"

step "agreement: every peer's outputs against flashc's, same inputs and noise"
"$VENV/bin/python" "$HERE/peers.py" check "$BUILD"

step "timings (one core, $REPS repetitions of >= ${MIN_SECONDS}s per cell)"
"$VENV/bin/python" "$HERE/peers.py" time "$BUILD" "$REPS" "$MIN_SECONDS"

ELAPSED=$(( $(date +%s) - START ))
step "report"
"$VENV/bin/python" "$HERE/peers.py" report "$BUILD" "$HERE/results" "$((ELAPSED / 60)) min $((ELAPSED % 60)) s ($HOW)"
echo "run.sh: done in $(( $(date +%s) - START )) s"
