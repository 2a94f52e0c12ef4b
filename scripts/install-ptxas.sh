#!/usr/bin/env bash
# Installs ptxas (the NVIDIA PTX assembler) from the PyPI wheel `nvidia-cuda-nvcc-cu12` into the
# project's virtual environment (.venv at the repository root, created when missing), and prints
# the path of the ptxas binary on the last line of its output.
#
#   scripts/install-ptxas.sh            # install (or reuse) and print the path
#   FLASHC_PTXAS=$(scripts/install-ptxas.sh | tail -n1) cargo test --test ptx_assemble
#
# No GPU and no CUDA driver are needed: ptxas only assembles PTX into SASS.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
find_ptxas() {
    "$venv/bin/python" - <<'PY'
import glob, os, sys
import sysconfig
site = sysconfig.get_paths()["purelib"]
hits = sorted(glob.glob(os.path.join(site, "nvidia", "cuda_nvcc", "bin", "ptxas")))
print(hits[0] if hits else "")
PY
}
ptxas="$(find_ptxas)"
if [ -z "$ptxas" ] || [ ! -x "$ptxas" ]; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check 'nvidia-cuda-nvcc-cu12==12.9.86' >&2
    ptxas="$(find_ptxas)"
fi
if [ -z "$ptxas" ] || [ ! -x "$ptxas" ]; then
    echo "install-ptxas.sh: nvidia-cuda-nvcc-cu12 installed but no ptxas found under $venv" >&2
    exit 1
fi
"$ptxas" --version | tail -n1 >&2
echo "$ptxas"
